#!/bin/bash
# Zero-shot CLIP with the dataset's hand-written template (TRAINER=ZeroshotCLIP2: the prompt ensemble):
#   bash scripts/coop/zeroshot.sh DATASET [CFG=vit_b16] [KEY VALUE ...]
# CFG: rn50, rn101, vit_b32 or vit_b16 (the CoOp configs, as published). Folders:
#   all classes (published):                          output/<TRAINER>/<CFG>/<DATASET>
#   SUB=base or SUB=new (or DATASET.SUBSAMPLE_CLASSES base|new):  output/base2new/test_<SUB>/<DATASET>/<TRAINER>/<CFG>
#   SUB=base2new: both, then the Base/New/HM table (python -m vlprompt.results output/base2new shows them too)
# TRAINER.ZEROSHOT.TEMPLATE "a photo of a {}." (another template) adds _tpl_<words>_<checksum> to <CFG>.
source "$(dirname "$0")/../common.sh"
zeroshot ${TRAINER:-ZeroshotCLIP} "$@"
