#!/bin/bash
# CoOp base-to-new, evaluating the base-trained prompts on the new classes:
#   bash scripts/coop/base2new_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP]
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=CoOp
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_ep50_ctxv1}
SHOTS=${4:-16}
LOADEP=${5:-$(python -c "import yaml,sys; print(yaml.safe_load(open('configs/trainers/CoOp/${CFG}.yaml'))['OPTIM']['MAX_EPOCH'])")}
shift $(( $# < 5 ? $# : 5 ))
SUB=new

COMMON_DIR=${DATASET}/shots_${SHOTS}/${TRAINER}/${CFG}/seed${SEED}
MODEL_DIR=output/base2new/train_base/${COMMON_DIR}
DIR=output/base2new/test_${SUB}/${COMMON_DIR}
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
    --model-dir ${MODEL_DIR} \
    --load-epoch ${LOADEP} \
    --eval-only \
    DATASET.NUM_SHOTS ${SHOTS} \
    DATASET.SUBSAMPLE_CLASSES ${SUB} "$@"
fi
