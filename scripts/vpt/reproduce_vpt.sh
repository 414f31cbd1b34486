#!/bin/bash
# Reproduce the published VPT base-to-new numbers on one dataset and print the Base/New/HM table:
#   bash scripts/vpt/reproduce_vpt.sh DATASET [KEY VALUE ...]
# Trains on the base classes and evaluates on the new ones for each seed of SEEDS (default "1 2 3").
# WEIGHTSPATH=<folder>: evaluate released weights (<folder>/base/seed<N>) on the base and new classes instead,
# as the published script does. Also read: CFG, SHOTS (default 16), LOADEP (default: the config's MAX_EPOCH).
source "$(dirname "$0")/../common.sh"
TRAINER=VPT
DATASET=$1
shift
CFG=${CFG:-vit_b16_c2_ep5_batch4_4}
SHOTS=${SHOTS:-16}
LOADEP=${LOADEP:-$(max_epoch configs/trainers/${TRAINER}/${CFG}.yaml)}
HERE=scripts/vpt

for SEED in ${SEEDS:-1 2 3}; do
    if [ -n "${WEIGHTSPATH}" ]; then
        for SUB in base new; do
            SUB=${SUB} MODEL_DIR=${WEIGHTSPATH}/base/seed${SEED} \
                bash ${HERE}/base2new_test.sh ${DATASET} ${SEED} ${CFG} ${SHOTS} ${LOADEP} "$@"
        done
    else
        bash ${HERE}/base2new_train.sh ${DATASET} ${SEED} ${CFG} ${SHOTS} "$@"
        bash ${HERE}/base2new_test.sh ${DATASET} ${SEED} ${CFG} ${SHOTS} ${LOADEP} "$@"
    fi
done
python -m vlprompt.results output/base2new
