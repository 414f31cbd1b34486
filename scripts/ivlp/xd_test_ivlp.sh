#!/bin/bash
# The published name of xd_test.sh (the ImageNet-trained IVLP evaluated on DATASET):
#   bash scripts/ivlp/xd_test_ivlp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/xd_test.sh"
