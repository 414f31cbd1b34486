#!/bin/bash
# The published name of base2new_test.sh (IVLP evaluation on the new classes, SUB=base: base; then the table):
#   bash scripts/ivlp/base2new_test_ivlp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_test.sh"
