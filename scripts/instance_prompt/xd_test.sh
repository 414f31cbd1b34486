#!/bin/bash
# InstancePrompt evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/instance_prompt/xd_test.sh DATASET SEED [CFG=vit_b16_ep50] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test InstancePrompt vit_b16_ep50 "$@"
