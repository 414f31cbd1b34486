#!/bin/bash
# InstancePrompt cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/instance_prompt/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_ep50] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train InstancePrompt vit_b16_ep50 "$@"
