#!/bin/bash
# Shared by the method scripts (source it): the repo root as working folder, DATA, and run-or-skip.
set -e
cd "$(dirname "${BASH_SOURCE[0]}")/.."
DATA=${DATA:-/path/to/datasets}

# finished DIR: the run in DIR has logged its final accuracy
finished() { [ -d "$1" ] && grep -q "^\* accuracy" "$1/log.txt" 2>/dev/null; }

# run_or_skip DIR TRAIN_PY_ARGS...: skip a finished run as the published scripts do; an unfinished one resumes
run_or_skip() {
    local dir=$1; shift
    if finished "$dir"; then
        echo "Oops! The results exist at ${dir} (so skip this job)"
    else
        python train.py --root "${DATA}" --output-dir "${dir}" "$@"
    fi
}

# max_epoch CONFIG_FILE: OPTIM.MAX_EPOCH of a method config (the checkpoint a test script loads by default)
max_epoch() { python -c "import sys, yaml; print(yaml.safe_load(open(sys.argv[1]))['OPTIM']['MAX_EPOCH'])" "$1"; }
