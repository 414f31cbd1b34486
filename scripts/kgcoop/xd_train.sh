#!/bin/bash
# KgCoOp on all classes of SOURCE (default imagenet) with 4 shots, as the published xd_train.sh (which runs this for
# every dataset: SOURCE=dtd ... gives its other runs), the source of cross-dataset / domain generalisation:
#   bash scripts/kgcoop/xd_train.sh SEED [CFG=vit_b16_ep100_ctxv1] [SHOTS=4] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train KgCoOp vit_b16_ep100_ctxv1 "$1" "${2:-vit_b16_ep100_ctxv1}" "${3:-4}" "${@:4}"
