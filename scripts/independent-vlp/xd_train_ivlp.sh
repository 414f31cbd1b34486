#!/bin/bash
# IVLP under the published folder name (scripts/independent-vlp/xd_train_ivlp.sh = scripts/ivlp/xd_train.sh):
#   bash scripts/independent-vlp/xd_train_ivlp.sh SOURCE SEED [CFG=vit_b16_c2_ep5_batch4_2+2ctx] [SHOTS=16] [KEY VALUE ...]
source "$(dirname "${BASH_SOURCE[0]}")/../ivlp/xd_train.sh"
