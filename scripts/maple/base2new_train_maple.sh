#!/bin/bash
# The published name of base2new_train.sh (MaPLe base-to-new, training on the base classes):
#   bash scripts/maple/base2new_train_maple.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_train.sh"
