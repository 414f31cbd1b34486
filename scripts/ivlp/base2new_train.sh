#!/bin/bash
# IVLP base-to-new, training on the base classes:
#   bash scripts/ivlp/base2new_train.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
