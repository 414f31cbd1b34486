#!/bin/bash
# Re-evaluate the base-fitted linear probe (SUB=base by default: a linear probe has no weights for new classes,
# and SUB=new stops with an error saying so; MODEL_DIR: other weights):
#   bash scripts/linear_probe/base2new_test.sh DATASET SEED [CFG=vit_b16] [SHOTS=16] [LOADEP=1] [KEY VALUE ...]
# then prints the Base/New/HM table of DATASET and CFG over the seeds run so far
source "$(dirname "$0")/../common.sh"
SUB=${SUB:-base} base2new_test LinearProbeCLIP vit_b16 "$@"
