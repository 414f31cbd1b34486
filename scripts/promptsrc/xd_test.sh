#!/bin/bash
# PromptSRC evaluation of the SOURCE-trained model (default imagenet) on another dataset or an ImageNet variant:
#   bash scripts/promptsrc/xd_test.sh DATASET SEED [CFG=vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test PromptSRC vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets "$@"
