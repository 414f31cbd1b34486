#!/bin/bash
# MetaProto cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/metaproto/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_ep100_n5_k2] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train MetaProto vit_b16_ep100_n5_k2 "$@"
