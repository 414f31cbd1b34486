#!/bin/bash
# Reproduce the published IVLP base-to-new numbers on one dataset (seeds SEEDS="1 2 3") and print the table:
#   bash scripts/ivlp/reproduce_ivlp.sh DATASET [KEY VALUE ...]   (WEIGHTSPATH=<folder>: evaluate released weights)
source "$(dirname "$0")/../common.sh"
reproduce IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
