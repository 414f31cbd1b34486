#!/bin/bash
# InstancePrompt base-to-new, evaluating on the new classes (every learned instance context with the new names):
#   bash scripts/instance_prompt/base2new_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=InstancePrompt
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_ep50}
SHOTS=${4:-16}
LOADEP=${5:-$(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
shift $(( $# < 5 ? $# : 5 ))
SUB=new

COMMON_DIR=${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
run_or_skip output/base2new/test_${SUB}/${COMMON_DIR} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --model-dir output/base2new/train_base/${COMMON_DIR} --load-epoch ${LOADEP} --eval-only \
    DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES ${SUB} "$@"
