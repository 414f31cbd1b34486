#!/bin/bash
# MaPLe evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/maple/xd_test.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test MaPLe vit_b16_c2_ep5_batch4_2ctx_cross_datasets "$@"
