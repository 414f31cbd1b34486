#!/bin/bash
# CoOp cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/coop/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_ep50_ctxv1] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train CoOp vit_b16_ep50_ctxv1 "$@"
