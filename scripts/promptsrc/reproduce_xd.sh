#!/bin/bash
# Evaluate released PromptSRC ImageNet weights (WEIGHTSPATH/seed<SEED>) on another dataset, published arguments:
#   bash scripts/promptsrc/reproduce_xd.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=PromptSRC
CFG=vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets
DATASET=$1
SEED=$2
WEIGHTSPATH=$3
shift $(( $# < 3 ? $# : 3 ))
run_or_skip output/evaluation/${TRAINER}/${CFG}_16shots/${DATASET}/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --model-dir ${WEIGHTSPATH}/seed${SEED} --load-epoch $(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml) --eval-only \
    DATASET.NUM_SHOTS 16 "$@"
