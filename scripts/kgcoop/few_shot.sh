#!/bin/bash
# KgCoOp few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/kgcoop/few_shot.sh DATASET SHOTS [CFG=vit_b16_ep100_ctxv1] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/KgCoOp/<CFG>_<SHOTS>shots/seed<SEED>.
source "$(dirname "$0")/../common.sh"
few_shot KgCoOp vit_b16_ep100_ctxv1 "$@"
