#!/bin/bash
# Language prompting (IVLP, text prompts only): the SOURCE-trained model (default imagenet) evaluated on DATASET:
#   bash scripts/language-prompting/xd_test_lp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4ctx_language_only] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_test IVLP vit_b16_c2_ep5_batch4_4ctx_language_only "$@"
