#!/bin/bash
# The published name and arguments of xd_train.sh (IVLP on all classes of SOURCE, e.g. imagenet):
#   bash scripts/ivlp/xd_train_ivlp.sh SOURCE SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_train.sh"
