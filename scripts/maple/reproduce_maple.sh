#!/bin/bash
# Reproduce the published MaPLe base-to-new numbers on one dataset (seeds SEEDS="1 2 3") and print the table:
#   bash scripts/maple/reproduce_maple.sh DATASET [KEY VALUE ...]   (WEIGHTSPATH=<folder>: evaluate released weights)
source "$(dirname "$0")/../common.sh"
reproduce MaPLe vit_b16_c2_ep5_batch4_2ctx "$@"
