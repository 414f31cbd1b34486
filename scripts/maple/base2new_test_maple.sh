#!/bin/bash
# The published name of base2new_test.sh (MaPLe evaluation on the new classes, SUB=base: base; then the table):
#   bash scripts/maple/base2new_test_maple.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2ctx] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_test.sh"
