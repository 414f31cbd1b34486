#!/bin/bash
# VPT base-to-new, evaluating the base-trained model on the new classes (SUB=base: base classes; MODEL_DIR: other weights):
#   bash scripts/vpt/base2new_test.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
# then prints the Base/New/HM table of DATASET and CFG over the seeds run so far
source "$(dirname "$0")/../common.sh"
base2new_test VPT vit_b16_c2_ep5_batch4_4 "$@"
