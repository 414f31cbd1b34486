#!/bin/bash
# CoOp cross-dataset evaluation of the ImageNet-trained prompts on another dataset:
#   bash scripts/coop/xd_test.sh DATASET SEED [CFG] [SHOTS] [LOADEP]
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=CoOp
SOURCE=${SOURCE:-imagenet}
DATASET=$1
SEED=$2
CFG=${3:-vit_b16_ep50_ctxv1}
SHOTS=${4:-16}
LOADEP=${5:-$(python -c "import yaml; print(yaml.safe_load(open('configs/trainers/CoOp/${CFG}.yaml'))['OPTIM']['MAX_EPOCH'])")}
shift $(( $# < 5 ? $# : 5 ))

DIR=output/evaluation/${TRAINER}/${CFG}_${SHOTS}shots/${DATASET}/seed${SEED}
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
    --model-dir output/${SOURCE}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
    --load-epoch ${LOADEP} \
    --eval-only "$@"
fi
