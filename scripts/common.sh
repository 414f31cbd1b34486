#!/bin/bash
# Shared by the method scripts (source it): the repo root as working folder, DATA, run-or-skip, and the
# published job families (base-to-new, cross-dataset) so each method's script only names its trainer and config.
# NGPU=N runs every job on N GPUs (N processes through torchrun).
set -e
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-/path/to/datasets}

# finished DIR: the run in DIR has written its final result (results.json is written by the final evaluation only)
finished() { [ -f "$1/results.json" ]; }

# train_py ARGS...: train.py in one process, or NGPU processes (torchrun, one per GPU; gloo on CPU)
train_py() {
    if [ "${NGPU:-1}" -gt 1 ]; then
        python -m torch.distributed.run --standalone --nproc_per_node "${NGPU}" train.py "$@"
    else
        python train.py "$@"
    fi
}

# run_or_skip DIR TRAIN_PY_ARGS...: skip a finished run as the published scripts do; an unfinished one resumes
run_or_skip() {
    local dir=$1; shift
    if finished "$dir"; then
        echo "Oops! The results exist at ${dir} (so skip this job)"
    else
        train_py --root "${DATA}" --output-dir "${dir}" "$@"
    fi
}

# max_epoch CONFIG_FILE: OPTIM.MAX_EPOCH of a method config (the checkpoint a test script loads by default)
max_epoch() { python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['OPTIM']['MAX_EPOCH'])" "$1"; }

# base2new_train TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS=16] [KEY VALUE ...]: train on the base classes
base2new_train() {
    local trainer=$1 dataset=$3 seed=$4 cfg=${5:-$2} shots=${6:-16}
    shift $(( $# < 6 ? $# : 6 ))
    run_or_skip output/base2new/train_base/${dataset}/shots_${shots}/${trainer}/${cfg}/seed${seed} \
        --seed ${seed} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${dataset}.yaml \
        --config-file configs/trainers/${trainer}/${cfg}.yaml \
        DATASET.NUM_SHOTS ${shots} DATASET.SUBSAMPLE_CLASSES base "$@"
}

# base2new_test TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS=16] [LOADEP=MAX_EPOCH] [KEY VALUE ...]:
# evaluate the base-trained model on the new classes (SUB=base: the base classes; MODEL_DIR: another run folder,
# e.g. released weights)
base2new_test() {
    local trainer=$1 dataset=$3 seed=$4 cfg=${5:-$2} shots=${6:-16} loadep=$7
    shift $(( $# < 7 ? $# : 7 ))
    loadep=${loadep:-$(max_epoch configs/trainers/${trainer}/${cfg}.yaml)}
    local sub=${SUB:-new} common=${dataset}/shots_${shots}/${trainer}/${cfg}/seed${seed}
    run_or_skip output/base2new/test_${sub}/${common} \
        --seed ${seed} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${dataset}.yaml \
        --config-file configs/trainers/${trainer}/${cfg}.yaml \
        --model-dir ${MODEL_DIR:-output/base2new/train_base/${common}} --load-epoch ${loadep} --eval-only \
        DATASET.NUM_SHOTS ${shots} DATASET.SUBSAMPLE_CLASSES ${sub} "$@"
}

# xd_train TRAINER DEFAULT_CFG  SEED [CFG] [SHOTS=16] [KEY VALUE ...]: train on all classes of SOURCE (imagenet)
xd_train() {
    local trainer=$1 seed=$3 cfg=${4:-$2} shots=${5:-16} source=${SOURCE:-imagenet}
    shift $(( $# < 5 ? $# : 5 ))
    run_or_skip output/${source}/${trainer}/${cfg}_${shots}shots/seed${seed} \
        --seed ${seed} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${source}.yaml \
        --config-file configs/trainers/${trainer}/${cfg}.yaml \
        DATASET.NUM_SHOTS ${shots} "$@"
}

# xd_test TRAINER DEFAULT_CFG  DATASET SEED [CFG] [SHOTS=16] [LOADEP=MAX_EPOCH] [KEY VALUE ...]: evaluate the
# SOURCE-trained model on another dataset or an ImageNet variant
xd_test() {
    local trainer=$1 dataset=$3 seed=$4 cfg=${5:-$2} shots=${6:-16} loadep=$7 source=${SOURCE:-imagenet}
    shift $(( $# < 7 ? $# : 7 ))
    loadep=${loadep:-$(max_epoch configs/trainers/${trainer}/${cfg}.yaml)}
    run_or_skip output/evaluation/${trainer}/${cfg}_${shots}shots/${dataset}/seed${seed} \
        --seed ${seed} --trainer ${trainer} \
        --dataset-config-file configs/datasets/${dataset}.yaml \
        --config-file configs/trainers/${trainer}/${cfg}.yaml \
        --model-dir output/${source}/${trainer}/${cfg}_${shots}shots/seed${seed} --load-epoch ${loadep} --eval-only "$@"
}

# reproduce TRAINER DEFAULT_CFG  DATASET [KEY VALUE ...]: base-to-new for each seed of SEEDS (1 2 3), then the
# Base/New/HM table. WEIGHTSPATH=<folder>: evaluate released weights (<folder>/base/seed<N>) on base and new
# instead, as the published reproduction scripts do. Also read: CFG, SHOTS (16), LOADEP (the config's MAX_EPOCH).
reproduce() {
    local trainer=$1 cfg=${CFG:-$2} dataset=$3 shots=${SHOTS:-16}
    shift 3
    local loadep=${LOADEP:-$(max_epoch configs/trainers/${trainer}/${cfg}.yaml)}
    for seed in ${SEEDS:-1 2 3}; do
        if [ -n "${WEIGHTSPATH}" ]; then
            for sub in base new; do
                SUB=${sub} MODEL_DIR=${WEIGHTSPATH}/base/seed${seed} \
                    base2new_test ${trainer} ${cfg} ${dataset} ${seed} ${cfg} ${shots} ${loadep} "$@"
            done
        else
            base2new_train ${trainer} ${cfg} ${dataset} ${seed} ${cfg} ${shots} "$@"
            base2new_test ${trainer} ${cfg} ${dataset} ${seed} ${cfg} ${shots} ${loadep} "$@"
        fi
    done
    python -m vlprompt.results output/base2new
}
