#!/bin/bash
# MetaProto evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/metaproto/xd_test.sh DATASET SEED [CFG=vit_b16_ep100_n5_k2] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test MetaProto vit_b16_ep100_n5_k2 "$@"
