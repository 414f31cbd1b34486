#!/bin/bash
# IVLP cross-dataset evaluation of the source-trained prompts (SOURCE=imagenet) on another dataset:
#   bash scripts/ivlp/xd_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=IVLP
SOURCE=${SOURCE:-imagenet}
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_c2_ep5_batch4_2+2ctx}
SHOTS=${4:-16}
LOADEP=${5:-$(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
shift $(( $# < 5 ? $# : 5 ))

run_or_skip output/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --model-dir output/${SOURCE}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} --load-epoch ${LOADEP} --eval-only "$@"
