#!/bin/bash
# The published name and arguments of xd_train.sh (VPT on all classes of SOURCE, e.g. imagenet):
#   bash scripts/vpt/xd_train_vpt.sh SOURCE SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_train.sh"
