#!/bin/bash
# The published name of base2new_train.sh (IVLP base-to-new, training on the base classes):
#   bash scripts/ivlp/base2new_train_ivlp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_train.sh"
