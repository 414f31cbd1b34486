"""Check that several processes train the same run as one: ``python -m vlprompt.testing.ddp_check``.

For each trainer, a short run on the tiny CLIP and a synthetic DTD is trained by one process and by
``--nproc`` processes (``torchrun``; gloo on CPU, NCCL on GPUs) with the same global batch and seed, and the
final learnable tensors and optimizer state are compared (max relative difference per tensor), as are the
evaluation counts.
With ``--kill``, a multi-process run of the first trainer is killed mid-epoch 2 (SIGKILL on every process),
re-run with the same command, and compared with the uninterrupted multi-process run (bitwise) and the
single-process one. All runs of one kind share one launch, so the check costs few process start-ups.

Why a tolerance and not bitwise equality: each process back-propagates its slice of the batch and the
gradients are summed across processes, so the sums are formed in another order than in one process's
backward pass; float32 rounding differs at ~1e-7 relative per step and grows slowly through the optimizer.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence

from vlprompt.testing.resume_check import CASES, REPO, max_diff, relative_diff, train_args

TRAINERS = ("CoOp", "CoCoOp", "MaPLe", "MetaProto")  # the default; every trainer of resume_check.CASES works
#: max difference allowed between 1 and N processes after 2 epochs, relative to each tensor's largest value
#: (float32 rounding of a sum is ~1e-7 relative; 6 steps of SGD with momentum or Adam amplify it a little)
TOLERANCE = 1e-5
# the same global batch at every world size; per-image augmentation seeds (what several processes use)
COMMON = ("DATALOADER.PER_IMAGE_SEEDS", "True", "TRAIN.TENSORBOARD", "False")


def launch(runs: Sequence[Sequence[str]], nproc: int, failpoint: str = "") -> subprocess.CompletedProcess:
    """Run the train.py argument lists ``runs`` one after the other in one launch of ``nproc`` processes."""
    cmd = [sys.executable, "-m", "vlprompt.testing.ddp_check", "--run-many", json.dumps([list(r) for r in runs])]
    if nproc > 1:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc_per_node={nproc}",
               "--module", *cmd[2:]]
    env = dict(os.environ, VLPROMPT_FAILPOINT=failpoint, OMP_NUM_THREADS=os.environ.get("OMP_NUM_THREADS", "1"))
    return subprocess.run(cmd, env=env, cwd=REPO, capture_output=True, text=True, timeout=1800)


def run_many(runs: Sequence[Sequence[str]]) -> int:
    """Inside a launch: one process group for every run (``cli.main`` joins it and leaves it up)."""
    import torch

    from vlprompt import cli
    from vlprompt.utils import distributed

    distributed.init_from_env(use_cuda=torch.cuda.is_available())
    for argv in runs:
        code = cli.main(list(argv))
        if code:
            return code
    distributed.shutdown()
    return 0


def counts(out: Path) -> tuple[int, int]:
    r = json.loads((out / "results.json").read_text())
    return r["total"], r["correct"]


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainers", nargs="+", default=list(TRAINERS), choices=list(CASES))
    p.add_argument("--nproc", type=int, default=2, help="processes of the distributed runs")
    p.add_argument("--kill", action="store_true", help="also kill and resume a distributed run")
    p.add_argument("--workdir", default="", help="keep the runs here (default: a temporary folder)")
    p.add_argument("--run-many", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.run_many:
        return run_many(json.loads(args.run_many))
    from tabulate import tabulate

    from vlprompt.testing.fake_data import make_dtd
    from vlprompt.testing.tiny_clip import write_tiny_clip

    work = Path(args.workdir or tempfile.mkdtemp(prefix="ddp_check_"))
    root, clip = str(work / "data"), {s: str(work / f"tiny_clip_{s}.pt") for s in ("rn", "vit_s")}
    if not os.path.isdir(root):
        make_dtd(root, images_per_class=8)
    for spec, path in clip.items():
        if not os.path.isfile(path):
            write_tiny_clip(spec, path)

    def args_of(trainer: str, name: str) -> list[str]:
        return train_args(trainer, root, clip, work / f"{trainer}_{name}", *COMMON)

    for nproc, name in ((1, "1proc"), (args.nproc, f"{args.nproc}proc")):
        p_ = launch([args_of(t, name) for t in args.trainers], nproc)
        if p_.returncode:
            raise AssertionError(f"{nproc}-process runs failed (rc {p_.returncode}):\n{p_.stdout[-3000:]}\n"
                                 f"{p_.stderr[-3000:]}")
    rows = []
    for t in args.trainers:
        one, many = work / f"{t}_1proc", work / f"{t}_{args.nproc}proc"
        diff = relative_diff(one, many)
        rows.append([t, f"1 vs {args.nproc}", f"{diff:.2e}", f"{counts(one)} vs {counts(many)}",
                     diff <= TOLERANCE and counts(one)[0] == counts(many)[0]])
    if args.kill:
        t = args.trainers[0]
        killed = args_of(t, f"{args.nproc}proc_killed")
        p_ = launch([killed], args.nproc, failpoint="step:2:2")
        if p_.returncode == 0 or "Found checkpoint" in p_.stdout:
            raise AssertionError(f"the run was not killed at step:2:2:\n{p_.stdout[-2000:]}\n{p_.stderr[-2000:]}")
        p_ = launch([killed], args.nproc)
        if p_.returncode or "will resume training" not in p_.stdout:
            raise AssertionError(f"the killed run did not resume:\n{p_.stdout[-3000:]}\n{p_.stderr[-3000:]}")
        out = Path(killed[killed.index("--output-dir") + 1])
        vs_many, vs_one = max_diff(work / f"{t}_{args.nproc}proc", out), relative_diff(work / f"{t}_1proc", out)
        rows.append([t, f"{args.nproc}, killed at step:2:2 + resumed vs uninterrupted {args.nproc}",
                     f"{vs_many:.2e}", f"{counts(out)}", vs_many == 0])
        rows.append([t, f"{args.nproc}, killed + resumed vs 1", f"{vs_one:.2e}", f"{counts(out)}",
                     vs_one <= TOLERANCE])
    print(tabulate(rows, headers=["trainer", "processes", "max diff", "(total, correct)", "ok"],
                   tablefmt="github"))
    print(f"max diff: relative to each tensor's largest value between process counts (tolerance {TOLERANCE:g}); "
          "absolute (must be 0) between a resumed run and an uninterrupted one")
    return 0 if all(r[-1] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
