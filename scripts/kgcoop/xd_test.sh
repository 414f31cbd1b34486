#!/bin/bash
# KgCoOp evaluation of the SOURCE-trained model (default imagenet, 4 shots) on another dataset or an ImageNet variant:
#   bash scripts/kgcoop/xd_test.sh DATASET SEED [CFG=vit_b16_ep100_ctxv1] [SHOTS=4] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
DEFAULT_SHOTS=4
xd_test KgCoOp vit_b16_ep100_ctxv1 "$@"
