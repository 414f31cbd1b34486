#!/bin/bash
# VPT cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/vpt/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train VPT vit_b16_c2_ep5_batch4_4 "$@"
