#!/bin/bash
# The published name of base2new_test.sh (VPT evaluation on the new classes, SUB=base: base; then the table):
#   bash scripts/vpt/base2new_test_vpt.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/base2new_test.sh"
