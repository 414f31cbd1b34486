#!/bin/bash
# CoOp cross-dataset / domain generalisation: train on ImageNet (all classes):
#   bash scripts/coop/xd_train.sh SEED [CFG] [SHOTS]   (SOURCE=imagenet by default)
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=CoOp
DATASET=${SOURCE:-imagenet}
SEED=$1
CFG=${2:-vit_b16_ep50_ctxv1}
SHOTS=${3:-16}
shift $(( $# < 3 ? $# : 3 ))

DIR=output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED}
if [ -d "$DIR" ] && grep -q "^\* accuracy" "$DIR/log.txt" 2>/dev/null; then
    echo "Oops! The results exist at ${DIR} (so skip this job)"
else
    python train.py \
    --root ${DATA} \
    --seed ${SEED} \
    --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --output-dir ${DIR} \
    DATASET.NUM_SHOTS ${SHOTS} "$@"
fi
