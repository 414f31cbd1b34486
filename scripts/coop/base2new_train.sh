#!/bin/bash
# CoOp base-to-new, training on the base classes:
#   bash scripts/coop/base2new_train.sh DATASET SEED [CFG=vit_b16_ep50_ctxv1] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train CoOp vit_b16_ep50_ctxv1 "$@"
