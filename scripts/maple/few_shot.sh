#!/bin/bash
# MaPLe few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/maple/few_shot.sh DATASET SHOTS [CFG=vit_b16_c2_ep5_batch4_2ctx] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/MaPLe/<CFG>_<SHOTS>shots/seed<SEED>.
source "$(dirname "$0")/../common.sh"
few_shot MaPLe vit_b16_c2_ep5_batch4_2ctx "$@"
