#!/bin/bash
# Language prompting (IVLP with text prompts only, the published scripts/language-prompting/), base-to-new training:
#   bash scripts/language-prompting/base2new_train_lp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4ctx_language_only] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train IVLP vit_b16_c2_ep5_batch4_4ctx_language_only "$@"
