#!/bin/bash
# CoOp evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/coop/xd_test.sh DATASET SEED [CFG=vit_b16_ep50_ctxv1] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test CoOp vit_b16_ep50_ctxv1 "$@"
