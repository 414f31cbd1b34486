#!/bin/bash
# Linear-probe CLIP few-shot on all classes, seeds 1-3 (SEEDS="1" to change; the published --num_run 3):
#   bash scripts/linear_probe/main.sh DATASET [CFG=rn50] [SHOTS=16] [KEY VALUE ...]
# e.g. the published lpclip picks from the full splits: ... dtd rn50 -1 TRAINER.LINEARPROBE.SAMPLE_SHOTS 16
source "$(dirname "$0")/../common.sh"
TRAINER=LinearProbeCLIP
DATASET=$1
CFG=${2:-rn50}
SHOTS=${3:-16}
shift $(( $# < 3 ? $# : 3 ))

for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        DATASET.NUM_SHOTS ${SHOTS} "$@"
done
