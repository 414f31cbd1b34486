#!/bin/bash
# CoCoOp evaluation of the source-trained model (SOURCE=imagenet) on another dataset:
#   bash scripts/cocoop/xd_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=CoCoOp
SOURCE=${SOURCE:-imagenet}
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_c4_ep10_batch1_ctxv1}
SHOTS=${4:-16}
LOADEP=${5:-$(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
shift $(( $# < 5 ? $# : 5 ))

run_or_skip output/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --model-dir output/${SOURCE}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} --load-epoch ${LOADEP} --eval-only "$@"
