"""Train-step time with 1 process vs N processes (torchrun), same global batch, through train.py.

    python bench/bench_ddp.py                              # CPU (gloo): CoOp and MaPLe, 1 vs 2 processes
    python bench/bench_ddp.py --nproc 1 2 4 8 --device cuda --layers 12 --image-size 224   # GPUs (NCCL)

Each run trains one epoch of a synthetic DTD (all 47 classes) with TRAIN.PRINT_FREQ 1 and reads the
per-batch times from its log (Dassl's ``time`` field: load + step of one batch); the table shows the median
after the first two batches, and the ratio to one process. The model is a random ViT-B/16-shaped CLIP
(widths of ViT-B/16; ``--layers`` and ``--image-size`` scale it down on CPU; weights random, frozen).
On a 2-core CPU two processes share the cores: expect no speed-up, the row shows the overhead.
"""
from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))
CASES = {  # method -> (config, PREC node, global batch)
    "CoOp": ("vit_b16_ep50", "COOP", 32),
    "MaPLe": ("vit_b16_c2_ep5_batch4_2ctx", "MAPLE", 4),
}
TIME_RE = re.compile(r"^epoch \[\d+/\d+\] batch \[(\d+)/\d+\] time ([0-9.]+)", re.M)


def write_backbone(path: Path, layers: int, image_size: int) -> None:
    from methods.common import build_clip

    torch.save(build_clip(layers, image_size, seed=0).state_dict(), path)


def threads(nproc: int, args: argparse.Namespace) -> int:
    """CPU threads per process: ``--threads``, else the cores shared out."""
    return args.threads or max(1, (os.cpu_count() or 1) // nproc)


def run(method: str, nproc: int, work: Path, root: str, clip: str, args: argparse.Namespace) -> float:
    cfg, node, batch = CASES[method]
    out = work / f"{method}_{nproc}"
    shutil.rmtree(out, ignore_errors=True)  # a fresh run (an existing folder would be resumed)
    train = [str(REPO / "train.py"), "--root", root, "--seed", "1", "--trainer", method, "--output-dir", str(out),
             "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
             "--config-file", str(REPO / f"configs/trainers/{method}/{cfg}.yaml"),
             "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", f"({args.image_size}, {args.image_size})",
             f"TRAINER.{node}.PREC", "fp32" if args.device == "cpu" else "fp16", "OPTIM.MAX_EPOCH", "1",
             "DATASET.NUM_SHOTS", str(args.shots), "DATALOADER.TRAIN_X.BATCH_SIZE", str(args.batch or batch),
             "DATALOADER.NUM_WORKERS", str(args.workers), "DATALOADER.PER_IMAGE_SEEDS", "True",
             "TRAIN.PRINT_FREQ", "1", "TRAIN.TENSORBOARD", "False", "TEST.NO_TEST", "True",
             "USE_CUDA", str(args.device == "cuda"), "VERBOSE", "False"]
    cmd = [sys.executable, *train] if nproc == 1 else [
        sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}", *train]
    env = dict(os.environ)
    if args.device == "cpu":
        env["OMP_NUM_THREADS"] = str(threads(nproc, args))
    p = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True)
    if p.returncode:
        raise SystemExit(f"{method} with {nproc} process(es) failed:\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}")
    times = [float(t) for b, t in TIME_RE.findall((out / "log.txt").read_text()) if int(b) > 2]
    return statistics.median(times)


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--methods", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--nproc", nargs="+", type=int, default=[1, 2])
    p.add_argument("--device", choices=["cpu", "cuda"], default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--layers", type=int, default=1, help="layers per tower (ViT-B/16: 12)")
    p.add_argument("--image-size", type=int, default=64, help="ViT-B/16: 224")
    p.add_argument("--shots", type=int, default=8, help="images per class of the synthetic DTD (47 classes)")
    p.add_argument("--batch", type=int, default=0, help="global batch (default: the config's)")
    p.add_argument("--workers", type=int, default=0, help="DATALOADER.NUM_WORKERS per process")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU: threads per process (default: cores / processes; 1 shows the overhead without the "
                        "cores being shared differently)")
    p.add_argument("--workdir", default="")
    args = p.parse_args()
    from tabulate import tabulate

    from vlprompt.testing.fake_data import make_dtd

    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_ddp_"))
    root, clip = str(work / "data"), work / f"clip_l{args.layers}_{args.image_size}.pt"
    if not os.path.isdir(root):
        make_dtd(root, images_per_class=2 * args.shots)
    if not clip.is_file():
        write_backbone(clip, args.layers, args.image_size)
    rows = []
    for method in args.methods:
        base = None
        for n in args.nproc:
            t = run(method, n, work, root, str(clip), args)
            base = base or t
            rows.append([method, args.batch or CASES[method][2], n,
                         threads(n, args) if args.device == "cpu" else "-", f"{t * 1000:.1f}", f"{t / base:.2f}"])
            print(tabulate([rows[-1]], tablefmt="plain"), flush=True)
    print(tabulate(rows, headers=["method", "global batch", "processes", "threads each", "step ms (median)",
                                     "vs 1 process"],
                   tablefmt="github"))
    print(f"device {args.device}; ViT-B/16 widths, {args.layers} layer(s) per tower, {args.image_size} px, random weights")
    return 0


if __name__ == "__main__":
    sys.exit(main())
