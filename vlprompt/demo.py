"""End-to-end demo with no downloads: tiny random CLIP + synthetic DTD, CoOp base-to-new, Base/New/HM table.

    python -m vlprompt.demo [--workdir DIR] [--epochs 10] [--seed 1]

The CLIP is random (its features barely separate the synthetic classes), so the accuracies stay
near chance (base a little above it after training): the demo shows the whole pipeline running
offline, not a result. Real numbers need real
weights and data (see README).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

from vlprompt import cli, results
from vlprompt.plugins import REPO_ROOT
from vlprompt.testing.fake_data import make_dtd
from vlprompt.testing.tiny_clip import write_tiny_clip


def run_demo(workdir: str, epochs: int = 10, seed: int = 1, shots: int = 4) -> str:
    os.makedirs(workdir, exist_ok=True)
    data = os.path.join(workdir, "data")
    ckpt = os.path.join(workdir, "tiny_clip_vit.pt")
    if not os.path.isfile(ckpt):
        write_tiny_clip("vit", ckpt)
    if not os.path.isdir(os.path.join(data, "dtd")):
        make_dtd(data, images_per_class=12)
    cfg_name = "vit_b16_ep50"
    common = [
        "--root", data, "--seed", str(seed), "--trainer", "CoOp",
        "--dataset-config-file", str(REPO_ROOT / "configs/datasets/dtd.yaml"),
        "--config-file", str(REPO_ROOT / f"configs/trainers/CoOp/{cfg_name}.yaml"),
    ]
    overrides = [
        "MODEL.BACKBONE.NAME", ckpt, "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
        "TRAINER.COOP.N_CTX", "16", "OPTIM.MAX_EPOCH", str(epochs), "OPTIM.LR", "0.02",
        "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "VERBOSE", "False",
        "DATASET.NUM_SHOTS", str(shots),
    ]
    out = os.path.join(workdir, "output", "base2new")
    run_dir = f"dtd/shots_{shots}/CoOp/{cfg_name}/seed{seed}"
    train_dir = os.path.join(out, "train_base", run_dir)
    cli.main(common + ["--output-dir", train_dir] + overrides + ["DATASET.SUBSAMPLE_CLASSES", "base"])
    cli.main(common + ["--output-dir", os.path.join(out, "test_new", run_dir), "--model-dir", train_dir,
                       "--load-epoch", str(epochs), "--eval-only"] + overrides + ["DATASET.SUBSAMPLE_CLASSES", "new"])
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--workdir", default="", help="keep files here (default: a temporary folder)")
    ap.add_argument("--epochs", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args(argv)
    start = time.time()
    with tempfile.TemporaryDirectory(prefix="vlprompt-demo-") as tmp:
        out = run_demo(args.workdir or tmp, args.epochs, args.seed)
        print("\nCoOp base-to-new on synthetic DTD (tiny random CLIP):")
        sys.stdout.write(results.render(*results.build_rows(results.collect(out))))
    print(f"Demo finished in {time.time() - start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
