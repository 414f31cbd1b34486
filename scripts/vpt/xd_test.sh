#!/bin/bash
# VPT evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/vpt/xd_test.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test VPT vit_b16_c2_ep5_batch4_4 "$@"
