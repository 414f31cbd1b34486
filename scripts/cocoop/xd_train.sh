#!/bin/bash
# CoCoOp cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/cocoop/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_c4_ep10_batch1_ctxv1] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
