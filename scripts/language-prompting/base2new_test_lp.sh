#!/bin/bash
# Language prompting (IVLP, text prompts only), evaluating the base-trained model on the new classes (SUB=base: base
# classes; MODEL_DIR: other weights), then the Base/New/HM table:
#   bash scripts/language-prompting/base2new_test_lp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_4ctx_language_only] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_test IVLP vit_b16_c2_ep5_batch4_4ctx_language_only "$@"
