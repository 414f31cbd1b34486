#!/bin/bash
# CoCoOp base-to-new, training on the base classes:
#   bash scripts/cocoop/base2new_train.sh DATASET SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
