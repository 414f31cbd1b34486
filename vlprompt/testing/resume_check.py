"""Check that interrupted runs resume exactly: ``python -m vlprompt.testing.resume_check [--trainers ...]``.

For each trainer and kill point, a run on the tiny CLIP and a synthetic DTD is killed with SIGKILL at a
failpoint (``VLPROMPT_FAILPOINT``), re-run with the same command, and its final learnable tensors (and
optimizer state) are compared with an uninterrupted run of the same seed; the table shows the max abs
difference (0 = bitwise identical). The tests use the same helpers on a few points per trainer family.
"""
from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Sequence

import torch

REPO = Path(__file__).resolve().parents[2]
# trainer -> (config, tiny CLIP, PREC node, overrides); 2 epochs of 3 batches on 24 base classes x NUM_SHOTS
CASES: dict[str, tuple[str, str, str, list[str]]] = {
    "CoOp": ("vit_b16_ep50", "rn", "COOP", ["TRAINER.COOP.N_CTX", "4", "DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
    "CoCoOp": ("vit_b16_c4_ep10_batch1", "rn", "COCOOP", ["DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
    "MaPLe": ("vit_b16_c2_ep5_batch4_2ctx", "vit_s", "MAPLE", ["DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
    "IVLP": ("vit_b16_c2_ep5_batch4_2+2ctx", "vit_s", "IVLP", ["DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
    "VPT": ("vit_b16_c2_ep5_batch4_4", "vit_s", "VPT", ["DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
    "MetaProto": ("vit_b16_ep100_n5_k2", "rn", "METAPROTO",
                  ["TRAINER.METAPROTO.N_WAY", "3", "TRAINER.METAPROTO.K_SHOT", "1", "TRAINER.METAPROTO.META_BATCH", "2",
                   "TRAINER.METAPROTO.ITERS_PER_EPOCH", "3"]),
    "InstancePrompt": ("rn50", "rn", "INSTANCEPROMPT", ["DATALOADER.TRAIN_X.BATCH_SIZE", "16"]),
}
KILL_POINTS = {  # name -> (failpoint, extra overrides)
    "mid-epoch 2": ("step:2:2", ()),
    "mid-epoch 2, 2 workers": ("step:2:2", ("DATALOADER.NUM_WORKERS", "2")),
    "after a module save (epoch 2)": ("saved:{module}:2", ()),
    "after the manifest (epoch 1)": ("manifest:1", ()),
    "final test": ("eval:test", ()),
    "best_val: val eval (epoch 1)": ("eval:val", ("TEST.FINAL_MODEL", "best_val")),
    "best_val: final test": ("eval:test", ("TEST.FINAL_MODEL", "best_val")),
}


def train_args(trainer: str, root: str, clip: dict[str, str], out: Path, *extra: str) -> list[str]:
    """train.py arguments of a 2-epoch run of ``trainer`` on the tiny CLIP and the DTD root ``root``."""
    cfg, backbone, node, overrides = CASES[trainer]
    return ["--root", root, "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / f"configs/trainers/{trainer}/{cfg}.yaml"), "--output-dir", str(out),
            "MODEL.BACKBONE.NAME", clip[backbone], "INPUT.SIZE", "(64, 64)" if backbone == "rn" else "(32, 32)",
            f"TRAINER.{node}.PREC", "fp32", "OPTIM.MAX_EPOCH", "2", "DATASET.NUM_SHOTS", "2",
            "DATASET.SUBSAMPLE_CLASSES", "base", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False", *overrides, *extra]


def run_train(argv: Sequence[str], failpoint: str = "") -> subprocess.CompletedProcess:
    env = dict(os.environ, VLPROMPT_FAILPOINT=failpoint)
    return subprocess.run([sys.executable, str(REPO / "train.py"), *argv], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=900)


def run_killed(argv: Sequence[str], failpoint: str) -> None:
    """Run train.py until it SIGKILLs itself at ``failpoint``; raise if it ended any other way."""
    p = run_train(argv, failpoint)
    if p.returncode != -signal.SIGKILL:
        raise AssertionError(f"failpoint {failpoint} not reached (rc {p.returncode}):\n{p.stdout[-2000:]}\n"
                             f"{p.stderr[-2000:]}")


def learned(out: Path, epoch: int = 2) -> dict[str, torch.Tensor]:
    """Every tensor of the epoch's checkpoints (and best-val models) in ``out``, weights and optimizer state."""
    tensors = {}
    for folder in sorted(p for p in out.iterdir() if (p / f"model.pth.tar-{epoch}").is_file()):
        for fname in (f"model.pth.tar-{epoch}", "model-best.pth.tar"):  # the best-val model too, if any
            if not (folder / fname).is_file():
                continue
            ckpt = torch.load(folder / fname, weights_only=True)
            tensors.update({f"{folder.name}/{fname}/{k}": v for k, v in ckpt["state_dict"].items()
                            if isinstance(v, torch.Tensor)})
            for i, s in ckpt["optimizer"]["state"].items():
                tensors.update({f"{folder.name}/{fname}/optim{i}/{k}": v for k, v in s.items()
                                if isinstance(v, torch.Tensor)})
    if not tensors:
        raise AssertionError(f"no epoch-{epoch} checkpoint in {out}")
    return tensors


def max_diff(ref: Path, other: Path) -> float:
    """Max abs difference over every learnable tensor and optimizer buffer (inf if the sets differ)."""
    a, b = learned(ref), learned(other)
    if a.keys() != b.keys():
        return float("inf")
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a)


def relative_diff(ref: Path, other: Path) -> float:
    """Max over tensors of (max abs difference / max abs value of the reference tensor)."""
    a, b = learned(ref), learned(other)
    if a.keys() != b.keys():
        return float("inf")
    return max(((a[k].double() - b[k].double()).abs().max() / a[k].double().abs().max().clamp(min=1e-12)).item()
               for k in a)


def same_result(ref: Path, other: Path) -> bool:
    ra, rb = (json.loads((p / "results.json").read_text()) for p in (ref, other))
    return (ra["accuracy"], ra["total"], ra["split"]) == (rb["accuracy"], rb["total"], rb["split"])


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trainers", nargs="+", default=list(CASES), choices=list(CASES))
    p.add_argument("--points", nargs="+", default=list(KILL_POINTS), choices=list(KILL_POINTS), metavar="POINT")
    p.add_argument("--workdir", default="", help="keep the runs here (default: a temporary folder)")
    args = p.parse_args(argv)
    from tabulate import tabulate

    from vlprompt.testing.fake_data import make_dtd
    from vlprompt.testing.tiny_clip import write_tiny_clip

    work = Path(args.workdir or tempfile.mkdtemp(prefix="resume_check_"))
    root, clip = str(work / "data"), {s: str(work / f"tiny_clip_{s}.pt") for s in ("rn", "vit_s")}
    if not os.path.isdir(root):
        make_dtd(root, images_per_class=8)
    for spec, path in clip.items():
        if not os.path.isfile(path) and any(CASES[t][1] == spec for t in args.trainers):
            write_tiny_clip(spec, path)
    rows = []
    for trainer in args.trainers:
        refs: dict[tuple, Path] = {}
        for point in args.points:
            failpoint, extra = KILL_POINTS[point]
            if extra not in refs:
                refs[extra] = work / f"{trainer}_ref_{len(refs)}"
                if not (refs[extra] / "results.json").is_file() and run_train(
                        train_args(trainer, root, clip, refs[extra], *extra)).returncode:
                    raise AssertionError(f"reference run of {trainer} failed")
            manifest = torch.load(refs[extra] / "run_state" / "state.pth.tar-2", weights_only=True)
            module = next(iter(manifest["files"]))  # the module saved first
            failpoint = failpoint.format(module=module)
            out = work / f"{trainer}_{failpoint.replace(':', '_')}_{len(rows)}"
            argv_ = train_args(trainer, root, clip, out, *extra)
            started = time.time()
            run_killed(argv_, failpoint)
            rc = run_train(argv_).returncode
            diff = max_diff(refs[extra], out) if rc == 0 else float("nan")
            rows.append([trainer, point, failpoint, rc, f"{diff:g}", rc == 0 and same_result(refs[extra], out),
                         f"{time.time() - started:.0f}"])
            print(tabulate([rows[-1]], tablefmt="plain"), flush=True)
    print(tabulate(rows, headers=["trainer", "kill point", "failpoint", "resume rc", "max abs diff",
                                  "same test result", "s"], tablefmt="github"))
    return 0 if all(r[3] == 0 and r[4] == "0" and r[5] for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
