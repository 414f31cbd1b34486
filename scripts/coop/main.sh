#!/bin/bash
# CoOp few-shot on all classes, seeds SEEDS (default 1 2 3), published arguments, then the accuracy table:
#   bash scripts/coop/main.sh DATASET CFG CTP NCTX SHOTS CSC [KEY VALUE ...]
# CFG: config file name (e.g. rn50_ep50); CTP: class token position (end, middle or front); NCTX: number of context
# tokens; SHOTS: 1, 2, 4, 8 or 16; CSC: class-specific context (False or True)
source "$(dirname "$0")/../common.sh"
TRAINER=CoOp
parse_args DATASET CFG CTP NCTX SHOTS CSC -- "$@"
check_dataset ${DATASET}; check_config ${TRAINER} ${CFG}; check_int NCTX ${NCTX}; check_int SHOTS ${SHOTS}
for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        TRAINER.COOP.N_CTX ${NCTX} TRAINER.COOP.CSC ${CSC} TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} \
        DATASET.NUM_SHOTS ${SHOTS} "${OPTS[@]}"
done
show_runs output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots
