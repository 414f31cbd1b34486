#!/bin/bash
# KgCoOp evaluation of the SOURCE-trained model (default imagenet, 4 shots) on another dataset or an ImageNet variant:
#   bash scripts/kgcoop/xd_test.sh DATASET SEED [CFG=vit_b16_ep100_ctxv1] [SHOTS=4] [LOADEP=MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test KgCoOp vit_b16_ep100_ctxv1 "$1" "$2" "${3:-vit_b16_ep100_ctxv1}" "${4:-4}" "${@:5}"
