#!/bin/bash
# MetaProto base-to-new, evaluating on the new classes (prompts only, as CoOp):
#   bash scripts/metaproto/base2new_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=MetaProto
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_ep100_n5_k2}
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
