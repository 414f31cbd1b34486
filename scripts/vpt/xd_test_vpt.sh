#!/bin/bash
# The published name of xd_test.sh (the ImageNet-trained VPT evaluated on DATASET):
#   bash scripts/vpt/xd_test_vpt.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_test.sh"
