#!/usr/bin/env python
"""Train or evaluate a prompt-learning method: the published train.py flags, e.g.

    python train.py --root DATA --seed 1 --trainer CoOp \
        --dataset-config-file configs/datasets/dtd.yaml --config-file configs/trainers/CoOp/vit_b16_ep50.yaml \
        --output-dir output/dtd/CoOp/seed1 DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base
"""
from vlprompt.cli import run

if __name__ == "__main__":
    run()
