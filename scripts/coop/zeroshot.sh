#!/bin/bash
# Zero-shot CLIP with the dataset's hand-written template: bash scripts/coop/zeroshot.sh DATASET CFG [KEY VALUE ...]
#   CFG: rn50, rn101, vit_b32 or vit_b16 (the CoOp configs, as published); TRAINER=ZeroshotCLIP2 for the ensemble
source "$(dirname "$0")/../common.sh"
TRAINER=${TRAINER:-ZeroshotCLIP}
DATASET=$1
CFG=$2
shift $(( $# < 2 ? $# : 2 ))

run_or_skip output/${TRAINER}/${CFG}/${DATASET} \
    --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/CoOp/${CFG}.yaml \
    --eval-only "$@"
