#!/bin/bash
# CoCoOp few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/cocoop/few_shot.sh DATASET SHOTS [CFG=vit_b16_c4_ep10_batch1_ctxv1] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/CoCoOp/<CFG>_<SHOTS>shots/seed<SEED>.
source "$(dirname "$0")/../common.sh"
few_shot CoCoOp vit_b16_c4_ep10_batch1_ctxv1 "$@"
