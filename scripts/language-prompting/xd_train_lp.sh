#!/bin/bash
# Language prompting (IVLP, text prompts only) on all classes of SOURCE (published: SOURCE SEED, e.g. imagenet 1):
#   bash scripts/language-prompting/xd_train_lp.sh [SOURCE=imagenet] SEED [CFG=vit_b16_c2_ep5_batch4_4ctx_language_only] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train IVLP vit_b16_c2_ep5_batch4_4ctx_language_only "$@"
