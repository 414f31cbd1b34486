#!/bin/bash
# MaPLe base-to-new, evaluating the base-trained prompts on the new classes (SUB=base: on the base classes):
#   bash scripts/maple/base2new_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]
# MODEL_DIR: the run folder to load (default: the matching base2new_train.sh output, e.g. released weights instead).
source "$(dirname "$0")/../common.sh"
TRAINER=MaPLe
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_c2_ep5_batch4_2ctx}
SHOTS=${4:-16}
LOADEP=${5:-$(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
shift $(( $# < 5 ? $# : 5 ))
SUB=${SUB:-new}

COMMON_DIR=${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
run_or_skip output/base2new/test_${SUB}/${COMMON_DIR} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --model-dir ${MODEL_DIR:-output/base2new/train_base/${COMMON_DIR}} --load-epoch ${LOADEP} --eval-only \
    DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES ${SUB} "$@"
