#!/bin/bash
# PromptSRC few-shot on all classes, seeds SEEDS (default 1 2 3), published arguments, then the accuracy table:
#   bash scripts/promptsrc/few_shot.sh DATASET SHOTS [CFG=vit_b16_c2_ep50_batch4_4+4ctx_few_shot] [KEY VALUE ...]
# SHOTS: a number, a list "1,2,4" or "all" (1 2 4 8 16). GPA N(45, 5) for stanford_cars, oxford_flowers, fgvc_aircraft,
# dtd and eurosat, N(30, 30) (the config's) otherwise, as the published config's comments prescribe; KEY VALUE pairs
# given here win.
source "$(dirname "$0")/../common.sh"
case $1 in
    stanford_cars|oxford_flowers|fgvc_aircraft|dtd|eurosat) PRE_OPTS=(TRAINER.PROMPTSRC.GPA_MEAN 45 TRAINER.PROMPTSRC.GPA_STD 5) ;;
esac
few_shot PromptSRC vit_b16_c2_ep50_batch4_4+4ctx_few_shot "$@"
