#!/bin/bash
# The GPU check, one command, under 8 minutes on one GPU: the cuda-marked tests, then the ViT-B/16-shaped bench
# (ours vs the published code, logits checked equal first) for CoOp (batch 32, 1000 classes), CoCoOp and MaPLe
# (batch 4), the image tower alone vs inside our train step, and a whole base-to-new job through the scripts; everything goes to one log and the tables
# are gathered at the end into OUT (default bench/gpu_check.txt).
#   COOP_REPO=/path/CoOp MAPLE_REPO=/path/multimodal-prompt-learning DASSL_REPO=/path/Dassl.pytorch bash bench/gpu_check.sh
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/gpu_check.txt}
: > "${OUT}"
step() {  # step TITLE COMMAND...: run, keep its output, note its exit code and time
    local title=$1; shift
    echo "=== ${title}: $*" | tee -a "${OUT}"
    local start=$SECONDS
    "$@" 2>&1 | tee -a "${OUT}"
    echo "--- ${title}: exit ${PIPESTATUS[0]}, $((SECONDS - start)) s" | tee -a "${OUT}"
}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader | tee -a "${OUT}"
step "cuda tests" python -m pytest -q -m cuda tests
step "CoOp, 1000 classes, batch 32" python bench/bench_methods.py --device cuda --full --method coop --classes 1000 \
    --train-batch 32
step "CoCoOp" python bench/bench_methods.py --device cuda --full --method cocoop
step "MaPLe, batch 4" python bench/bench_methods.py --device cuda --full --method maple --train-batch 4
step "image tower alone vs in the train step" python bench/bench_tower.py --device cuda --batch 32 --classes 1000
step "whole base-to-new job, CoOp and MaPLe" python bench/bench_base2new_job.py --device cuda --layers 12
echo "=== summary" | tee -a "${OUT}"
grep -E "^(=== |--- )|speed-up|x \||argmax" "${OUT}" | grep -v "^=== summary" | tee "${OUT}.summary"
