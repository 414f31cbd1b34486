#!/bin/bash
# The InstancePrompt paper's table (4 shots, RN50, all classes of Flowers102, Caltech101, OxfordPets, FGVCAircraft):
# zero-shot CLIP, linear-probe CLIP, CoOp, LFA (the paper's number; not implemented) and InstancePrompt, seeds
# SEEDS (1 2 3), beside the paper's numbers (output/paper/instance_prompt/table.txt):
#   bash scripts/instance_prompt/reproduce_table.sh [FLAGS] [KEY VALUE ...]
# FLAGS: those of python -m vlprompt.sweep.paper (--executor slurm, --workers N, --dry-run, --table-only, ...);
# KEY VALUE pairs go to every run. NGPU=N: N GPUs per run.
source "$(dirname "$0")/../common.sh"
python -m vlprompt.sweep.paper instance_prompt --root "${DATA}" --seeds ${SEEDS:-1 2 3} --gpus-per-job "${NGPU:-1}" "$@"
