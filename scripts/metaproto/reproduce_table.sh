#!/bin/bash
# The MetaProto paper's table (DTD base-to-new, 16 shots, ViT-B/16): zero-shot CLIP ("a photo of a [class]"),
# CoOp as the paper ran it (4 ctx, 200 epochs, batch 32) and MetaProto 5/10/20-way (K=2), seeds SEEDS (1 2 3),
# then Base/New/H beside the paper's numbers (output/paper/metaproto/table.txt):
#   bash scripts/metaproto/reproduce_table.sh [FLAGS] [KEY VALUE ...]
# FLAGS: those of python -m vlprompt.sweep.paper (--executor slurm, --workers N, --dry-run, --table-only, ...);
# KEY VALUE pairs go to every run. NGPU=N: N GPUs per run.
source "$(dirname "$0")/../common.sh"
python -m vlprompt.sweep.paper metaproto --root "${DATA}" --seeds ${SEEDS:-1 2 3} --gpus-per-job "${NGPU:-1}" "$@"
