#!/bin/bash
# KgCoOp on all classes of SOURCE (default imagenet) with 4 shots, as the published xd_train.sh (which runs this for
# every dataset: `xd_train.sh dtd 1` etc. give its other runs), the source of cross-dataset / domain generalisation:
#   bash scripts/kgcoop/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_ep100_ctxv1] [SHOTS=4] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
DEFAULT_SHOTS=4
xd_train KgCoOp vit_b16_ep100_ctxv1 "$@"
