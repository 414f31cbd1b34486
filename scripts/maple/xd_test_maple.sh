#!/bin/bash
# The published name of xd_test.sh (the ImageNet-trained MaPLe evaluated on DATASET):
#   bash scripts/maple/xd_test_maple.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_test.sh"
