#!/bin/bash
# Linear-probe CLIP few-shot on all classes, seeds SEEDS (default 1 2 3; the published --num_run 3), then the table:
#   bash scripts/linear_probe/main.sh DATASET [CFG=rn50] [SHOTS=16] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16; few_shot.sh DATASET SHOTS [CFG] is the same run).
# e.g. the published lpclip picks from the full splits: ... dtd rn50 -1 TRAINER.LINEARPROBE.SAMPLE_SHOTS 16
source "$(dirname "$0")/../common.sh"
parse_args DATASET CFG=rn50 SHOTS=16 -- "$@"
few_shot LinearProbeCLIP rn50 "${DATASET}" "${SHOTS}" "${CFG}" "${OPTS[@]}"
