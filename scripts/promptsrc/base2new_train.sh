#!/bin/bash
# PromptSRC base-to-new, training on the base classes:
#   bash scripts/promptsrc/base2new_train.sh DATASET SEED [CFG=vit_b16_c2_ep20_batch4_4+4ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train PromptSRC vit_b16_c2_ep20_batch4_4+4ctx "$@"
