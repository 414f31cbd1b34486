#!/bin/bash
# CoOp few-shot on all classes, seeds 1-3 (SEEDS="1" to change), published arguments:
#   bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=CoOp
DATASET=$1
CFG=$2     # config file name, e.g. rn50_ep50
CTP=$3     # class token position (end, middle or front)
NCTX=$4    # number of context tokens
SHOTS=$5   # number of shots (1, 2, 4, 8, 16)
CSC=$6     # class-specific context (False or True)
shift $(( $# < 6 ? $# : 6 ))

for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        TRAINER.COOP.N_CTX ${NCTX} TRAINER.COOP.CSC ${CSC} TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} \
        DATASET.NUM_SHOTS ${SHOTS} "$@"
done
