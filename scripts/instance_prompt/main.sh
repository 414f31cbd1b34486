#!/bin/bash
# InstancePrompt, few-shot protocol on all classes (the paper's setting: RN50, 4 shots):
#   bash scripts/instance_prompt/main.sh DATASET SEED [CFG=rn50_ep100] [SHOTS=4] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=InstancePrompt
DATASET=$1
SEED=$2
CFG=${3:-rn50_ep100}
SHOTS=${4:-4}
shift $(( $# < 4 ? $# : 4 ))

run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
    --seed ${SEED} --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    DATASET.NUM_SHOTS ${SHOTS} "$@"
