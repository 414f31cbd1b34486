#!/bin/bash
# Linear-probe CLIP fitted on the base classes (and tested on them):
#   bash scripts/linear_probe/base2new_train.sh DATASET SEED [CFG=vit_b16] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train LinearProbeCLIP vit_b16 "$@"
