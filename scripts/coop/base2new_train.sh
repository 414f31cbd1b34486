#!/bin/bash
# CoOp base-to-new, training on the base classes: bash scripts/coop/base2new_train.sh DATASET SEED [CFG] [SHOTS]
# DATA: dataset root (env var, default /path/to/datasets as in the published scripts).
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=CoOp
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_ep50_ctxv1}
SHOTS=${4:-16}
shift $(( $# < 4 ? $# : 4 ))  # anything after is passed to train.py as KEY VALUE overrides

DIR=output/base2new/train_base/${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
if [ -d "$DIR" ] && ls "$DIR"/prompt_learner/model.pth.tar-* >/dev/null 2>&1 && grep -q "^\* accuracy" "$DIR/log.txt" 2>/dev/null; then
    echo "Oops! The results exist at ${DIR} (so skip this job)"
else
    python train.py \
    --root ${DATA} \
    --seed ${SEED} \
    --trainer ${TRAINER} \
    --dataset-config-file configs/datasets/${DATASET}.yaml \
    --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
    --output-dir ${DIR} \
    DATASET.NUM_SHOTS ${SHOTS} \
    DATASET.SUBSAMPLE_CLASSES base "$@"
fi
