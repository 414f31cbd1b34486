#!/bin/bash
# InstancePrompt base-to-new, training on the base classes:
#   bash scripts/instance_prompt/base2new_train.sh DATASET SEED [CFG=vit_b16_ep50] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train InstancePrompt vit_b16_ep50 "$@"
