#!/bin/bash
# Evaluate released PromptSRC base-to-new weights (WEIGHTSPATH/base/seed<SEED>) on the base and the new classes,
# published arguments:
#   bash scripts/promptsrc/reproduce_base2novel_setting.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
# Without WEIGHTSPATH: train and evaluate that seed here. Then prints the Base/New/HM table.
source "$(dirname "$0")/../common.sh"
DATASET=$1
SEEDS=${2:-${SEEDS:-1 2 3}}
WEIGHTSPATH=$3
shift $(( $# < 3 ? $# : 3 ))
reproduce PromptSRC vit_b16_c2_ep20_batch4_4+4ctx ${DATASET} "$@"
