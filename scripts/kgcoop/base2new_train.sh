#!/bin/bash
# KgCoOp base-to-new, training on the base classes (published: W 8.0 = TRAINER.KGCOOP.W default, N_CTX 4, end):
#   bash scripts/kgcoop/base2new_train.sh DATASET SEED [CFG=vit_b16_ep100_ctxv1] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
base2new_train KgCoOp vit_b16_ep100_ctxv1 "$@"
