#!/bin/bash
# Reproduce the published VPT base-to-new numbers on one dataset (seeds SEEDS="1 2 3") and print the table:
#   bash scripts/vpt/reproduce_vpt.sh DATASET [KEY VALUE ...]   (WEIGHTSPATH=<folder>: evaluate released weights)
source "$(dirname "$0")/../common.sh"
reproduce VPT vit_b16_c2_ep5_batch4_4 "$@"
