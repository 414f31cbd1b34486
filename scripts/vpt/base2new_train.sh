#!/bin/bash
# VPT base-to-new, training on the base classes:
#   bash scripts/vpt/base2new_train.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train VPT vit_b16_c2_ep5_batch4_4 "$@"
