#!/bin/bash
# CoOp base-to-new, evaluating the base-trained model on the new classes (SUB=base: base classes; MODEL_DIR: other weights):
#   bash scripts/coop/base2new_test.sh DATASET SEED [CFG=vit_b16_ep50_ctxv1] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
# then prints the Base/New/HM table of DATASET and CFG over the seeds run so far
source "$(dirname "$0")/../common.sh"
base2new_test CoOp vit_b16_ep50_ctxv1 "$@"
