#!/bin/bash
# Evaluate released PromptSRC few-shot weights (WEIGHTSPATH/<SHOTS>shot/seed<SEED>) for each seed of SEEDS (1 2 3),
# published arguments, into output/few_shot/<DATASET>/PromptSRC/<CFG>_<SHOTS>shots/seed<SEED>:
#   bash scripts/promptsrc/reproduce_few_shot.sh DATASET SHOTS WEIGHTSPATH [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
TRAINER=PromptSRC
CFG=vit_b16_c2_ep50_batch4_4+4ctx_few_shot
parse_args DATASET SHOTS WEIGHTSPATH -- "$@"
check_dataset ${DATASET}; check_int SHOTS ${SHOTS}
for SEED in ${SEEDS:-1 2 3}; do
    [ -d "${WEIGHTSPATH}/${SHOTS}shot/seed${SEED}" ] || die "WEIGHTSPATH ${WEIGHTSPATH} has no ${SHOTS}shot/seed${SEED}"
done
for SEED in ${SEEDS:-1 2 3}; do
    run_or_skip output/few_shot/${DATASET}/${TRAINER}/${CFG}_${SHOTS}shots/seed${SEED} \
        --seed ${SEED} --trainer ${TRAINER} \
        --dataset-config-file configs/datasets/${DATASET}.yaml \
        --config-file configs/trainers/${TRAINER}/${CFG}.yaml \
        --model-dir ${WEIGHTSPATH}/${SHOTS}shot/seed${SEED} --load-epoch $(load_epoch configs/trainers/${TRAINER}/${CFG}.yaml) \
        --eval-only DATASET.NUM_SHOTS ${SHOTS} "${OPTS[@]}"
done
show_runs output/few_shot/${DATASET}/${TRAINER}
