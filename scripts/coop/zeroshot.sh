#!/bin/bash
# Zero-shot CLIP with the dataset's hand-written template: bash scripts/coop/zeroshot.sh DATASET CFG
#   CFG: rn50, rn101, vit_b32 or vit_b16 (the CoOp configs, as published); TRAINER=ZeroshotCLIP2 for the ensemble
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=${TRAINER:-ZeroshotCLIP}
DATASET=$1
CFG=$2
shift $(( $# < 2 ? $# : 2 ))

python train.py \
--root ${DATA} \
--trainer ${TRAINER} \
--dataset-config-file configs/datasets/${DATASET}.yaml \
--config-file configs/trainers/CoOp/${CFG}.yaml \
--output-dir output/${TRAINER}/${CFG}/${DATASET} \
--eval-only "$@"
