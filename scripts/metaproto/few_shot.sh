#!/bin/bash
# MetaProto few-shot on all classes (the published few-shot protocol), seeds SEEDS (default 1 2 3), then the accuracy table:
#   bash scripts/metaproto/few_shot.sh DATASET SHOTS [CFG=vit_b16_ep100_n5_k2] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). Folders: output/<DATASET>/MetaProto/<CFG>_<SHOTS>shots/seed<SEED>.
# CFG vit_b16_ep100_n10_k2 / vit_b16_ep100_n20_k2: 10- / 20-way episodes.
source "$(dirname "$0")/../common.sh"
few_shot MetaProto vit_b16_ep100_n5_k2 "$@"
