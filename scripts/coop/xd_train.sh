#!/bin/bash
# CoOp cross-dataset / domain generalisation, training on all classes of the source (SOURCE=imagenet):
#   bash scripts/coop/xd_train.sh SEED [CFG] [SHOTS] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=CoOp
DATASET=${SOURCE:-imagenet}
SEED=$1
CFG=${2:-vit_b16_ep50_ctxv1}
SHOTS=${3:-16}
shift $(( $# < 3 ? $# : 3 ))

run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    DATASET.NUM_SHOTS ${SHOTS} "$@"
