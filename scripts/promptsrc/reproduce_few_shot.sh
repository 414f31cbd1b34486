#!/bin/bash
# Evaluate released PromptSRC few-shot weights (WEIGHTSPATH/<SHOTS>shot/seed<SEED>), seeds 1-3, published arguments:
#   bash scripts/promptsrc/reproduce_few_shot.sh DATASET SHOTS WEIGHTSPATH [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=PromptSRC
CFG=vit_b16_c2_ep50_batch4_4+4ctx_few_shot
DATASET=$1
SHOTS=$2
WEIGHTSPATH=$3
shift $(( $# < 3 ? $# : 3 ))
for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/few_shot/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        --model-dir ${WEIGHTSPATH}/${SHOTS}shot/seed${SEED} --load-epoch $(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml) --eval-only \
        DATASET.NUM_SHOTS ${SHOTS} "$@"
done
