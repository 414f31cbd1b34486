#!/bin/bash
# MetaProto base-to-new, training on the base classes:
#   bash scripts/metaproto/base2new_train.sh DATASET SEED [CFG=vit_b16_ep100_n5_k2] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train MetaProto vit_b16_ep100_n5_k2 "$@"
