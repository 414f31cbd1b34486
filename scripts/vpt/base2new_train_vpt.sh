#!/bin/bash
# The published name of base2new_train.sh (VPT base-to-new, training on the base classes):
#   bash scripts/vpt/base2new_train_vpt.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_train.sh"
