#!/bin/bash
# Evaluate released MaPLe ImageNet weights (WEIGHTSPATH/seed<SEED>, cross-dataset config) on DATASET, published
# arguments; the folder is that of xd_test.sh (output/evaluation/MaPLe/<CFG>_16shots/<DATASET>/seed<SEED>):
#   bash scripts/maple/reproduce_maple_xd.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
reproduce_xd MaPLe vit_b16_c2_ep5_batch4_2ctx_cross_datasets "$@"
