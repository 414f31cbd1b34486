#!/bin/bash
# The published name and arguments of xd_train.sh (MaPLe on all classes of SOURCE, e.g. imagenet):
#   bash scripts/maple/xd_train_maple.sh SOURCE SEED [CFG=vit_b16_c2_ep5_batch4_2ctx_cross_datasets] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_train.sh"
