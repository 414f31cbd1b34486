#!/bin/bash
# The ImageNet-trained CoOp (main.sh imagenet CFG end 16 16 False) evaluated on DATASET (an ImageNet variant:
# imagenetv2, imagenet_sketch, imagenet_a, imagenet_r; or another dataset), seeds SEEDS (1 2 3), published arguments:
#   bash scripts/coop/eval.sh DATASET CFG [KEY VALUE ...]
# Folders: output/evaluation/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/<DATASET>/seed<SEED>, the model from
# output/<SOURCE>/CoOp/<CFG>_<SHOTS>shots/nctx<NCTX>_csc<CSC>_ctp<CTP>/seed<SEED>. Env (published values):
# SOURCE=imagenet SHOTS=16 NCTX=16 CSC=False CTP=end; LOADEP: an OPTIM.MAX_EPOCH override, else the config's.
source "$(dirname "$0")/../common.sh"
TRAINER=CoOp
SOURCE=${SOURCE:-imagenet} SHOTS=${SHOTS:-16} NCTX=${NCTX:-16} CSC=${CSC:-False} CTP=${CTP:-end}
parse_args DATASET CFG -- "$@"
check_dataset ${DATASET}; check_config ${TRAINER} ${CFG}
LOADEP=${LOADEP:-$(load_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
RUN=${CFG}_${SHOTS}shots/nctx${NCTX}_csc${CSC}_ctp${CTP}
for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/evaluation/${TRAINER}/${RUN}/${DATASET}/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        --model-dir output/${SOURCE}/${TRAINER}/${RUN}/seed${SEED} --load-epoch ${LOADEP} --eval-only \
        TRAINER.COOP.N_CTX ${NCTX} TRAINER.COOP.CSC ${CSC} TRAINER.COOP.CLASS_TOKEN_POSITION ${CTP} "${OPTS[@]}"
done
show_runs output/evaluation/${TRAINER}/${RUN}/${DATASET}
