#!/bin/bash
# IVLP base-to-new, training on the base classes: bash scripts/ivlp/base2new_train.sh DATASET SEED [CFG] [SHOTS] [KEY VALUE ...]
# DATA: dataset root (environment variable, default /path/to/datasets as in the published scripts).
source "$(dirname "$0")/../common.sh"
TRAINER=IVLP
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_c2_ep5_batch4_2+2ctx}
SHOTS=${4:-16}
shift $(( $# < 4 ? $# : 4 ))

run_or_skip output/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    DATASET.NUM_SHOTS ${SHOTS} DATASET.SUBSAMPLE_CLASSES base "$@"
