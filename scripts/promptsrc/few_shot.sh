#!/bin/bash
# PromptSRC few-shot on all classes, seeds 1-3 (SEEDS="1" to change), published arguments:
#   bash scripts/promptsrc/few_shot.sh DATASET SHOTS [KEY VALUE ...]
# GPA N(45, 5) for stanford_cars, oxford_flowers, fgvc_aircraft, dtd and eurosat, N(30, 30) (the config's) otherwise,
# as the published config's comments prescribe; KEY VALUE pairs given here win.
source "$(dirname "$0")/../common.sh"
TRAINER=PromptSRC
CFG=vit_b16_c2_ep50_batch4_4+4ctx_few_shot
DATASET=$1
SHOTS=$2
shift $(( $# < 2 ? $# : 2 ))
case ${DATASET} in
    stanford_cars|oxford_flowers|fgvc_aircraft|dtd|eurosat) GPA="TRAINER.PROMPTSRC.GPA_MEAN 45 TRAINER.PROMPTSRC.GPA_STD 5" ;;
    *) GPA="" ;;
esac

for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        DATASET.NUM_SHOTS ${SHOTS} ${GPA} "$@"
done
