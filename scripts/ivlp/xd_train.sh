#!/bin/bash
# IVLP cross-dataset / domain generalisation, training on all classes of SOURCE (default imagenet):
#   bash scripts/ivlp/xd_train.sh [SOURCE=imagenet] SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "$0")/../common.sh"
xd_train IVLP vit_b16_c2_ep5_batch4_2+2ctx "$@"
