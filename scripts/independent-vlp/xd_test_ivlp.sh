#!/bin/bash
# IVLP under the published folder name (scripts/independent-vlp/xd_test_ivlp.sh = scripts/ivlp/xd_test.sh):
#   bash scripts/independent-vlp/xd_test_ivlp.sh DATASET SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [LOADEP=OPTIM.MAX_EPOCH] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/../ivlp/xd_test.sh"
