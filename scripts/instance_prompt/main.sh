#!/bin/bash
# InstancePrompt, few-shot protocol on all classes, one seed (the paper's setting: RN50, 4 shots; few_shot.sh sweeps
# seeds and shot counts into the same folders):
#   bash scripts/instance_prompt/main.sh DATASET SEED [CFG=rn50_ep100] [SHOTS=4] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
parse_args DATASET SEED CFG=rn50_ep100 SHOTS=4 -- "$@"
check_int SEED "${SEED}"; check_int SHOTS "${SHOTS}"
SEEDS=${SEED} few_shot InstancePrompt rn50_ep100 "${DATASET}" "${SHOTS}" "${CFG}" "${OPTS[@]}"
