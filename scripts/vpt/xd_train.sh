#!/bin/bash
# VPT cross-dataset / domain generalisation, training on all classes of the source (SOURCE=imagenet):
#   bash scripts/vpt/xd_train.sh SEED [CFG] [SHOTS] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=VPT
DATASET=${SOURCE:-imagenet}
SEED=$1
CFG=${2:-vit_b16_c2_ep5_batch4_4}
SHOTS=${3:-16}
shift $(( $# < 3 ? $# : 3 ))

run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    DATASET.NUM_SHOTS ${SHOTS} "$@"
