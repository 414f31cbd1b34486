#!/bin/bash
# Zero-shot CLIP under the published path scripts/zsclip/zeroshot.sh (= scripts/coop/zeroshot.sh, see there):
#   bash scripts/zsclip/zeroshot.sh DATASET [CFG=vit_b16] [KEY VALUE ...]   (SUB=base|new|base2new; TRAINER=ZeroshotCLIP2)
source "$(dirname "${BASH_SOURCE[0]}")/../coop/zeroshot.sh"
