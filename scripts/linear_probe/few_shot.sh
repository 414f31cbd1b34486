#!/bin/bash
# Linear-probe CLIP few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/linear_probe/few_shot.sh DATASET SHOTS [CFG=rn50] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/LinearProbeCLIP/<CFG>_<SHOTS>shots/seed<SEED>.
# main.sh DATASET [CFG] [SHOTS] is the same with the published argument order.
source "$(dirname "$0")/../common.sh"
few_shot LinearProbeCLIP rn50 "$@"
