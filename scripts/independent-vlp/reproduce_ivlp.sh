#!/bin/bash
# IVLP under the published folder name (scripts/independent-vlp/reproduce_ivlp.sh = scripts/ivlp/reproduce_ivlp.sh):
#   bash scripts/independent-vlp/reproduce_ivlp.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
#   bash scripts/independent-vlp/reproduce_ivlp.sh DATASET [SEED] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/../ivlp/reproduce_ivlp.sh"
