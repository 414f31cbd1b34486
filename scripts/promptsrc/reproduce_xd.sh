#!/bin/bash
# Evaluate released PromptSRC ImageNet weights (WEIGHTSPATH/seed<SEED>) on DATASET, published arguments; the folder
# is that of xd_test.sh (output/evaluation/PromptSRC/<CFG>_16shots/<DATASET>/seed<SEED>):
#   bash scripts/promptsrc/reproduce_xd.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
reproduce_xd PromptSRC vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets "$@"
