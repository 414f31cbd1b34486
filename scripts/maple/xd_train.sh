#!/bin/bash
# MaPLe cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/maple/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train MaPLe vit_b16_c2_ep5_batch4_2ctx_cross_datasets "$@"
