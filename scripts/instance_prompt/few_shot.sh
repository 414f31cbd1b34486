#!/bin/bash
# InstancePrompt few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/instance_prompt/few_shot.sh DATASET SHOTS [CFG=rn50_ep100] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/InstancePrompt/<CFG>_<SHOTS>shots/seed<SEED>.
# The paper's setting: SHOTS 4 with rn50_ep100 (main.sh runs one seed of it).
source "$(dirname "$0")/../common.sh"
few_shot InstancePrompt rn50_ep100 "$@"
