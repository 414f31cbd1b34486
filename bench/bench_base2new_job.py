"""A whole base-to-new job (train on the base classes + its base test, then the new-class test), ours vs the published
code, each side run as its user runs it, in fresh processes, on synthetic DTD with the bench-sized CLIP.

Ours: ``bash scripts/<method>/base2new_train.sh dtd 1 <CFG> 16 KEY VALUE...`` then ``base2new_test.sh dtd 1 <CFG> 16
<EPOCHS> KEY VALUE...``, from the job's own folder of links (``scripts``, ``configs``, ``train.py``) so that
``output/`` lands there, with ``DATA`` set and an empty feature cache (``VLPROMPT_FEATURE_CACHE_DIR``): a first run,
nothing reused from an earlier one. ``--ours-opts KEY VALUE ...`` are appended to our commands only (e.g.
``DATALOADER.CACHE_DECODED True``).

Published: what its base-to-new scripts run (they hard-code their paths, so the bench runs the same commands
itself): its own ``train.py`` with ``DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base`` (training, then Dassl's
final test on the base classes' test images), then ``--eval-only --model-dir <that run> --load-epoch <EPOCHS>`` with
``DATASET.SUBSAMPLE_CLASSES new``. CoOp from KaiyangZhou/CoOp (config ``vit_b16_ep50_ctxv1``: its CoCoOp scripts'
commented CoOp line), MaPLe from muzairkhattak/multimodal-prompt-learning (``vit_b16_c2_ep5_batch4_2ctx``, its own
patched ``clip/``), both on KaiyangZhou/Dassl.pytorch, run by ``published_train.py`` (Dassl's unused missing imports
stubbed, ``clip._download`` returning the checkpoint, MaPLe's prompt-learner ``proj`` made float32 so that its
``PREC fp32`` runs; nothing copied).

Both sides get the same settings: seed 1, 16 shots, ``--epochs`` (``OPTIM.MAX_EPOCH``; the published configs train
CoOp 50 and MaPLe 5 epochs; the defaults here, 2 and 1, keep the bench to a few minutes on 2 cores), ``PREC fp32``
(the published fp16 on CPU is not meaningful), ``OPTIM.WARMUP_EPOCH 0`` (Dassl's warm-up scheduler passes
``verbose`` positionally, which this torch's ``LRScheduler`` rejects; ours gets the same schedule so that both train
alike), ``DATALOADER.NUM_WORKERS --workers``, ``INPUT.SIZE`` and, for MaPLe, ``PROMPT_DEPTH`` min(9, layers) (the
config's 9 needs 9 layers; at 1 layer MaPLe prompts the input layer only). The CLIP is random with ViT-B/16 widths
and ``--layers`` per tower (``methods/common.py``), saved once as an OpenAI-layout state dict: ours loads it as
``MODEL.BACKBONE.NAME <file>``, the published ``load_clip_to_cpu`` as ``ViT-B/16``. The synthetic DTD (``python -m
vlprompt.testing.fake_data --dataset dtd``: 47 classes, tiny JPEGs; base: 24 classes, 258 test images; new: 23, 247)
is copied for every job, since each run writes its few-shot split file next to the images.

Timed (wall, ``time.perf_counter`` around each process): **train process** (ours: the train script: bash, python,
training, the base test, exit), **new test process** (ours: the test script, including the results table it prints
after the evaluation), **total** = both. **base eval** / **new eval**: the final evaluation inside each process (ours:
``eval_seconds`` of its results.json; published: Dassl's ``SimpleTrainer.test`` timed). Ratios are published / ours
(above 1: ours is faster), per column in each method's last row. Before the tables, every run of both sides must have
evaluated the same number of base and of new test images; the accuracies are printed, not compared (they need not
agree exactly). ``--repeats N``: N jobs per side, taking turns (ours first, then published first, ...); the tables
show each side's job of median total.

Phases (second table; ``job_timing.py``: ours through ``phases_site/sitecustomize.py``, published through its
runner; seconds summed over the job's two processes): **start-up** (launch to the Python process's site import: for
ours bash and the script too), **imports** (to the trainer's construction: imports, config, logger, Dassl's
environment report), **data** (``build_data_loader``), **model** (``build_model``: CLIP loading and the method's
modules), **ckpt** (``load_model``), **train fwd+bwd** (``forward_backward`` summed) and **train other** (the rest
of the epochs: waiting for the loader, logging), **eval compute** (``model_inference`` / ``frozen_image_features``
summed) and **eval other** (waiting for the loader, metrics, writing), **in-process other** (the rest of the Python
process: checkpoint saving, writer set-up), **exit & rest** (interpreter exit, the script's other commands).

    python bench/bench_base2new_job.py                                  # CoOp and MaPLe, CPU defaults (a few minutes)
    python bench/bench_base2new_job.py --methods coop --epochs 5
    python bench/bench_base2new_job.py --ours-opts DATALOADER.CACHE_DECODED True
    python bench/bench_base2new_job.py --layers 12 --device cuda --epochs 5   # full ViT-B/16 depth on a GPU
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Optional

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from job_timing import (DEFAULT_COOP_REPO, DEFAULT_DASSL, DEFAULT_MAPLE_REPO, PHASES_ENV, SITE_DIR,  # noqa: E402
                        published_command, read_phases, run, write_clip_checkpoint)
from methods.common import print_table  # noqa: E402

SEED, SHOTS, DATASET = 1, 16, "dtd"


@dataclass
class JobMethod:
    """One method's base-to-new job: its trainer, config, and where its published code lives."""
    key: str
    trainer: str
    node: str
    cfg: str
    default_epochs: int
    config_epochs: int
    repo_option: str  # coop / maple: --coop-repo / --maple-repo

    def opts(self, layers: int) -> list[str]:
        extra = ["TRAINER.MAPLE.PROMPT_DEPTH", str(min(9, layers))] if self.key == "maple" else []
        return [f"TRAINER.{self.node}.PREC", "fp32"] + extra


METHODS = {
    "coop": JobMethod("coop", "CoOp", "COOP", "vit_b16_ep50_ctxv1", 2, 50, "coop"),
    "maple": JobMethod("maple", "MaPLe", "MAPLE", "vit_b16_c2_ep5_batch4_2ctx", 1, 5, "maple"),
}


@dataclass
class SideResult:
    """One side's job: wall times of its two commands, their evaluations, and its phase records."""
    train_s: float
    test_s: float
    base: dict[str, Any]
    new: dict[str, Any]
    phases: list[list[dict[str, Any]]]  # per command: the records of its processes
    launched: list[float]  # per command: time.time() at its launch

    @property
    def total_s(self) -> float:
        return self.train_s + self.test_s


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--methods", nargs="+", default=["coop", "maple"], choices=list(METHODS))
    ap.add_argument("--epochs", type=int, default=None,
                    help="OPTIM.MAX_EPOCH of both sides (default: CoOp 2, MaPLe 1; the published configs: 50 and 5)")
    ap.add_argument("--layers", type=int, default=1, help="transformer layers per tower (ViT-B/16: 12)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=2, help="DATALOADER.NUM_WORKERS of both sides")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--ours-opts", nargs="+", default=[], metavar="KEY VALUE",
                    help="extra config overrides for our scripts only, e.g. DATALOADER.CACHE_DECODED True")
    ap.add_argument("--coop-repo", default=os.environ.get("COOP_REPO", DEFAULT_COOP_REPO))
    ap.add_argument("--maple-repo", default=os.environ.get("MAPLE_REPO", DEFAULT_MAPLE_REPO))
    ap.add_argument("--dassl", default=os.environ.get("DASSL_REPO", DEFAULT_DASSL))
    ap.add_argument("--repeats", type=int, default=1,
                    help="jobs per side, taking turns (ours first, then published first, ...); the tables show each "
                         "side's job of median total (the lower middle for an even count)")
    ap.add_argument("--workdir", default="", help="keep everything here (default: a temporary folder, removed)")
    args = ap.parse_args()
    if args.repeats < 1:
        ap.error("--repeats must be at least 1")
    if len(args.ours_opts) % 2:
        ap.error(f"--ours-opts takes KEY VALUE pairs; '{args.ours_opts[-1]}' has no value")

    dassl = Path(args.dassl).resolve()
    repos = {"coop": Path(args.coop_repo).resolve(), "maple": Path(args.maple_repo).resolve()}
    for key in args.methods:
        m = METHODS[key]
        repo = repos[m.repo_option]
        if not (repo / "train.py").is_file() or not (repo / "configs/trainers" / m.trainer / f"{m.cfg}.yaml").is_file():
            sys.exit(f"{m.trainer}: the published code is not at {repo} (set --{m.repo_option}-repo)")
        if not (dassl / "dassl").is_dir():
            sys.exit(f"Dassl.pytorch is not at {dassl} (set --dassl)")

    if args.workdir and Path(args.workdir).exists() and any(Path(args.workdir).iterdir()):
        sys.exit(f"--workdir {args.workdir} is not empty (every run starts from empty output and cache folders)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vlprompt_base2new_job_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        _bench(args, work, repos, dassl)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args: argparse.Namespace, work: Path, repos: dict[str, Path], dassl: Path) -> None:
    ckpt = write_clip_checkpoint(work / f"clip_l{args.layers}_{args.image_size}px.pt", args.layers, args.image_size)
    run([sys.executable, "-m", "vlprompt.testing.fake_data", "--dataset", DATASET, "--out", str(work / "data")],
        work / "fake_data.log")
    print(f"CLIP: random ViT-B/16 widths, {args.layers} layer(s) per tower, {args.image_size} px; synthetic DTD, "
          f"seed {SEED}, {SHOTS} shots, {args.device}, {args.workers} loader workers, PREC fp32, no warm-up epoch"
          + (f"; ours also: {' '.join(args.ours_opts)}" if args.ours_opts else "") + f"; work folder {work}")
    results: dict[str, dict[str, SideResult]] = {}
    for key in args.methods:
        m = METHODS[key]
        epochs = args.epochs if args.epochs is not None else m.default_epochs
        common = ["INPUT.SIZE", f"({args.image_size}, {args.image_size})", "OPTIM.MAX_EPOCH", str(epochs),
                  "OPTIM.WARMUP_EPOCH", "0", "DATALOADER.NUM_WORKERS", str(args.workers),
                  "USE_CUDA", str(args.device == "cuda")] + m.opts(args.layers)
        runs: dict[str, list[SideResult]] = {"ours": [], "published": []}
        for i in range(args.repeats):  # the sides take turns: ours first, then published first, ...
            for side in ("ours", "published") if i % 2 == 0 else ("published", "ours"):
                job = work / f"{side}_{m.key}_{i + 1}"
                if side == "ours":
                    r = _ours_job(m, job, work, ckpt, epochs, common + list(args.ours_opts))
                else:
                    r = _published_job(m, job, work, repos[m.repo_option], dassl, ckpt, epochs, common)
                runs[side].append(r)
                print(f"{m.trainer} ({epochs} epoch(s); config: {m.config_epochs}), {side}"
                      + (f", run {i + 1}/{args.repeats}" if args.repeats > 1 else "")
                      + f": {r.total_s:.1f} s (base {_acc(r.base)}, new {_acc(r.new)})")
        for split in ("base", "new"):  # every run of both sides: the same test images
            totals = {f"{side} run {i + 1}": getattr(r, split)["total"] for side, rs in runs.items()
                      for i, r in enumerate(rs)}
            if len(set(totals.values())) != 1:
                sys.exit(f"{m.trainer}: the runs evaluated different numbers of {split} test images: {totals}")
        # each side's run of median total (its whole row from one run)
        results[key] = {side: sorted(rs, key=lambda r: r.total_s)[(len(rs) - 1) // 2] for side, rs in runs.items()}
    print("check: both sides evaluated the same test images (" + "; ".join(
        f"{METHODS[k].trainer}: base {r['ours'].base['total']}, new {r['ours'].new['total']}"
        for k, r in results.items()) + ")")
    _print_tables(results, args.repeats)


def _acc(r: dict[str, Any]) -> str:
    return f"{r['accuracy']:.2f}% ({r['correct']}/{r['total']})"


def _phases_env(folder: Path) -> dict[str, str]:
    path = os.environ.get("PYTHONPATH", "")
    return {"PYTHONPATH": str(SITE_DIR) + (os.pathsep + path if path else ""), PHASES_ENV: str(folder)}


def _ours_job(m: JobMethod, job: Path, work: Path, ckpt: Path, epochs: int, opts: list[str]) -> SideResult:
    """Our two scripts, from ``job`` (a folder of links to ``scripts``, ``configs`` and ``train.py``: the scripts
    write ``output/`` next to ``scripts/``), on a copy of the data, with an empty feature cache."""
    job.mkdir()
    for name in ("scripts", "configs", "train.py"):
        (job / name).symlink_to(REPO_ROOT / name)
    shutil.copytree(work / "data", job / "data")
    opts = ["MODEL.BACKBONE.NAME", str(ckpt)] + opts
    env = {"DATA": str(job / "data"), "VLPROMPT_FEATURE_CACHE_DIR": str(job / "feature_cache")}
    walls, launched, phases = [], [], []
    for step, script, extra in (("train", "base2new_train.sh", []), ("test", "base2new_test.sh", [str(epochs)])):
        launched.append(time.time())
        walls.append(run(["bash", str(job / "scripts" / m.key / script), DATASET, str(SEED), m.cfg, str(SHOTS)]
                         + extra + opts, job / f"{step}.log", env={**env, **_phases_env(job / f"phases_{step}")},
                         cwd=job))
        phases.append(read_phases(job / f"phases_{step}"))
    run_dir = f"{DATASET}/shots_{SHOTS}/{m.trainer}/{m.cfg}/seed{SEED}"
    base, new = (json.loads((job / "output/base2new" / sub / run_dir / "results.json").read_text())
                 for sub in ("train_base", "test_new"))
    return SideResult(walls[0], walls[1], base, new, phases, launched)


def _published_job(m: JobMethod, job: Path, work: Path, repo: Path, dassl: Path, ckpt: Path, epochs: int,
                   opts: list[str]) -> SideResult:
    """The published train.py twice, as its base2new_train/test scripts run it, on a copy of the data."""
    job.mkdir()
    shutil.copytree(work / "data", job / "data")
    common = ["--root", str(job / "data"), "--seed", str(SEED), "--trainer", m.trainer,
              "--dataset-config-file", str(repo / "configs/datasets" / f"{DATASET}.yaml"),
              "--config-file", str(repo / "configs/trainers" / m.trainer / f"{m.cfg}.yaml")]
    opts = ["DATASET.NUM_SHOTS", str(SHOTS)] + opts + ["MODEL.BACKBONE.NAME", "ViT-B/16"]
    out = job / "output"
    steps = (("train", ["--output-dir", str(out / "train_base")] + opts + ["DATASET.SUBSAMPLE_CLASSES", "base"]),
             ("test", ["--output-dir", str(out / "test_new"), "--model-dir", str(out / "train_base"),
                       "--load-epoch", str(epochs), "--eval-only"] + opts + ["DATASET.SUBSAMPLE_CLASSES", "new"]))
    walls, launched, phases, evals = [], [], [], []
    for step, train_args in steps:
        cmd = published_command(repo, dassl, ckpt, common + train_args, result=job / f"{step}.json",
                                phases=job / f"phases_{step}", maple_float_proj=m.key == "maple")
        launched.append(time.time())
        walls.append(run(cmd, job / f"{step}.log", cwd=job))
        phases.append(read_phases(job / f"phases_{step}"))
        evals.append(json.loads((job / f"{step}.json").read_text()))
    return SideResult(walls[0], walls[1], evals[0], evals[1], phases, launched)


# ---------------------------------------------------------------------------------------------- tables
PHASES = ("start-up", "imports", "data", "model", "ckpt", "train fwd+bwd", "train other", "eval compute",
          "eval other", "in-process other", "exit & rest")


def _split(records: list[dict[str, Any]], launched: float, wall: float) -> Optional[dict[str, float]]:
    """The phases (seconds) of one command, from the record of its trainer process; None without one."""
    main = next((r for r in records if any(s["name"] == "trainer" for s in r["spans"])), None)
    if main is None:
        return None
    p = dict.fromkeys(PHASES, 0.0)
    p["start-up"] = main["start"] - launched
    p["imports"] = next(s["t0"] for s in main["spans"] if s["name"] == "trainer") - main["start"]
    for s in main["spans"]:
        seconds, inner = s["t1"] - s["t0"], sum(sec for _, sec in s["sums"].values())
        if s["depth"] == 1 and s["name"] == "build_data_loader":
            p["data"] += seconds
        elif s["depth"] == 1 and s["name"] == "build_model":
            p["model"] += seconds
        elif s["depth"] == 0 and s["name"] == "load_model":
            p["ckpt"] += seconds
        elif s["depth"] == 0 and s["name"] == "run_epoch":
            p["train fwd+bwd"] += inner
            p["train other"] += seconds - inner
        elif s["depth"] == 0 and s["name"] == "test":
            p["eval compute"] += inner
            p["eval other"] += seconds - inner
    # the rest of the process: the trainer's construction besides data and model, checkpoints, writers
    p["in-process other"] = main["exit"] - main["start"] - sum(p.values()) + p["start-up"]
    p["exit & rest"] = launched + wall - main["exit"]
    return p


def _job_phases(r: SideResult) -> Optional[dict[str, float]]:
    total = dict.fromkeys(PHASES, 0.0)
    for records, launched, wall in zip(r.phases, r.launched, (r.train_s, r.test_s)):
        p = _split(records, launched, wall)
        if p is None:
            return None
        for k in PHASES:
            total[k] += p[k]
    return total


def _print_tables(results: dict[str, dict[str, SideResult]], repeats: int) -> None:
    rows = []
    for key, sides in results.items():
        ours = sides["ours"]
        for side, r in sides.items():
            ratio = "" if side == "ours" else f"{r.total_s / ours.total_s:.2f}x"
            rows.append([METHODS[key].trainer, side, f"{r.train_s:.1f}", f"{r.base['eval_seconds']:.2f}",
                         f"{r.test_s:.1f}", f"{r.new['eval_seconds']:.2f}", f"{r.total_s:.1f}", ratio])
        pub = sides["published"]
        rows.append([METHODS[key].trainer, "published / ours", f"{pub.train_s / ours.train_s:.2f}x",
                     _ratio(pub.base["eval_seconds"], ours.base["eval_seconds"]), f"{pub.test_s / ours.test_s:.2f}x",
                     _ratio(pub.new["eval_seconds"], ours.new["eval_seconds"]), f"{pub.total_s / ours.total_s:.2f}x",
                     ""])
    print("\nWhole base-to-new job (train + base test, then new test), fresh processes, synthetic DTD, bench-sized CLIP"
          + (f"; each side's run of median total of {repeats}" if repeats > 1 else "")
          + " (CPU figures are scaled down and noisy):")
    print_table(["method", "side", "train process s", "base eval s", "new test process s", "new eval s", "total s",
                 "published / ours"], rows, text_cols=2)

    rows = []
    for key, sides in results.items():
        for side, r in sides.items():
            p = _job_phases(r)
            if p is None:
                rows.append([METHODS[key].trainer, side] + ["-"] * len(PHASES) + [f"{r.total_s:.1f}"])
            else:
                rows.append([METHODS[key].trainer, side] + [f"{p[k]:.1f}" for k in PHASES] + [f"{r.total_s:.1f}"])
    print("\nWhere the job's time goes (seconds, both processes together; see the module docstring):")
    print_table(["method", "side", *PHASES, "total"], rows, text_cols=2)


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}x" if b > 0 else "-"


if __name__ == "__main__":
    main()
