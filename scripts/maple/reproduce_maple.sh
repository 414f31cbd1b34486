#!/bin/bash
# MaPLe base-to-new reproduction, the published arguments (released weights WEIGHTSPATH/base/seed<SEED>, evaluated on
# the base and the new classes into output/base2new/test_base/... and test_new/...):
#   bash scripts/maple/reproduce_maple.sh DATASET SEED WEIGHTSPATH [KEY VALUE ...]
# Without WEIGHTSPATH: train on the base classes and test on the new ones here, for SEED or, with DATASET alone, for
# each seed of SEEDS (default "1 2 3"):
#   bash scripts/maple/reproduce_maple.sh DATASET [SEED] [KEY VALUE ...]
# Then prints the Base/New/HM table of DATASET. Also read: CFG=vit_b16_c2_ep5_batch4_2ctx, SHOTS=16, LOADEP=OPTIM.MAX_EPOCH.
source "$(dirname "$0")/../common.sh"
reproduce MaPLe vit_b16_c2_ep5_batch4_2ctx "$@"
