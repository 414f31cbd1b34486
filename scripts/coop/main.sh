#!/bin/bash
# CoOp few-shot on all classes, seeds 1-3 (published arguments):
#   bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC
set -e
cd "$(dirname "$0")/../.."

DATA=${DATA:-/path/to/datasets}
TRAINER=CoOp
DATASET=$1
CFG=$2     # config file name, e.g. rn50_ep50
CTP=$3     # class token position (end, middle or front)
NCTX=$4    # number of context tokens
SHOTS=$5   # number of shots (1, 2, 4, 8, 16)
CSC=$6     # class-specific context (False or True)
shift $(( $# < 6 ? $# : 6 ))

for SEED in ${SEEDS:-1 2 3}
do
    DIR=output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED}
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
        TRAINER.COOP.N_CTX ${NCTX} \
        TRAINER.COOP.CSC ${CSC} \
        TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} \
        DATASET.NUM_SHOTS ${SHOTS} "$@"
    fi
done
