#!/bin/bash
# CoCoOp evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/cocoop/xd_test.sh DATASET SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
