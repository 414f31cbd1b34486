"""Repeated evaluation: evaluating the same test set again in another process, ours vs the published CoOp.

Ours keeps the frozen image tower's evaluation features on disk (``vlprompt/engine/feature_cache.py``,
``MODEL.FEATURE_CACHE_DIR``, on by default), so a second ``train.py --eval-only`` of the same split reads them
instead of decoding and encoding the images again; the published code recomputes everything every time.

Everything runs as the user would run it, in fresh processes, on synthetic DTD
(``python -m vlprompt.testing.fake_data``: 47 classes, 505 test images) and a bench-sized random CLIP
(``bench/methods/common.py``: ViT-B/16 widths, ``--layers`` per tower, ``--image-size`` px), saved as an OpenAI-layout
state dict (float16 values) that both sides load from a path:

1. one short CoOp training run of ours (1 shot, 1 epoch, no final test, cache off) gives the prompt checkpoint
   ``prompt_learner/model.pth.tar-1`` (published layout) that every evaluation below loads;
2. ours: ``train.py --eval-only --model-dir <1> --load-epoch 1`` twice with an empty ``MODEL.FEATURE_CACHE_DIR``
   (first: miss, computes and writes the features; second: hit), then once with ``--no-feature-cache``;
3. published: KaiyangZhou/CoOp's own ``train.py --eval-only`` with the same arguments, on Dassl.pytorch, in a
   fresh process (``published_train.py``: ``clip._download`` returns the checkpoint file; Dassl's unused missing
   imports are stubbed).

Timed: **eval** = the final evaluation of the test split inside the process (ours: ``eval_seconds`` of
results.json, from the start of ``Trainer.test`` to the metrics; published: Dassl's ``SimpleTrainer.test``
wrapped in a timer, the same span); **process** = the wall time of the whole ``python train.py`` process (start-up,
imports, data set, CLIP and checkpoint loading, evaluation, exit). Accuracy and the number of correct images of
every run (and the macro F1, to 2 decimals) must agree before the table is printed.

With ``--base2new``: the whole base-to-new job of ours (``scripts/coop/base2new_train.sh`` then
``base2new_test.sh``, 1 epoch) for seed 1 and then seed 2, which shares the test images of seed 1 (cache hits).

    python bench/bench_repeat_eval.py                       # 1 layer, 224 px (about 1 min on 2 cores)
    python bench/bench_repeat_eval.py --base2new            # + the base-to-new jobs, ours only (about 1 min more)
    python bench/bench_repeat_eval.py --layers 12           # full ViT-B/16 depth (GPU: --device cuda)
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path

BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
sys.path.insert(0, str(BENCH))

from job_timing import published_command, run, write_clip_checkpoint  # noqa: E402
from methods.common import print_table  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--layers", type=int, default=1, help="transformer layers per tower (ViT-B/16: 12)")
    ap.add_argument("--image-size", type=int, default=224)
    ap.add_argument("--workers", type=int, default=2, help="DATALOADER.NUM_WORKERS of every run (both sides)")
    ap.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    ap.add_argument("--coop-repo", default=os.environ.get("COOP_REPO", "/work/ref/CoOp"))
    ap.add_argument("--dassl", default=os.environ.get("DASSL_REPO", ""), help="default: Dassl.pytorch next to CoOp")
    ap.add_argument("--base2new", action="store_true", help="also time whole base-to-new jobs (ours only)")
    ap.add_argument("--workdir", default="", help="keep everything here (default: a temporary folder, removed)")
    args = ap.parse_args()

    coop = Path(args.coop_repo).resolve()
    dassl = Path(args.dassl).resolve() if args.dassl else coop.parent / "Dassl.pytorch"
    have_published = (coop / "train.py").is_file() and (coop / "trainers" / "coop.py").is_file() \
        and (dassl / "dassl").is_dir()
    if not have_published:
        print(f"published code not found ({coop}/train.py, {dassl}/dassl; set --coop-repo/--dassl): ours only")

    if args.workdir and Path(args.workdir).exists() and any(Path(args.workdir).iterdir()):
        sys.exit(f"--workdir {args.workdir} is not empty (every run starts from an empty cache folder)")
    work = Path(args.workdir or tempfile.mkdtemp(prefix="vlprompt_repeat_eval_")).resolve()
    work.mkdir(parents=True, exist_ok=True)
    try:
        _bench(args, work, coop, dassl, have_published)
    finally:
        if not args.workdir:
            shutil.rmtree(work, ignore_errors=True)


def _bench(args, work: Path, coop: Path, dassl: Path, have_published: bool) -> None:
    py = sys.executable
    ckpt = write_clip_checkpoint(work / f"clip_l{args.layers}_{args.image_size}px.pt", args.layers, args.image_size)
    run([py, "-m", "vlprompt.testing.fake_data", "--dataset", "dtd", "--out", str(work / "data")], work / "fake.log")
    if have_published:  # its own copy: each side writes its few-shot split file next to the images
        shutil.copytree(work / "data", work / "data_published")

    size = f"({args.image_size}, {args.image_size})"
    opts = ["DATASET.NUM_SHOTS", "1", "DATASET.SUBSAMPLE_CLASSES", "all", "INPUT.SIZE", size,
            "TRAINER.COOP.N_CTX", "16", "TRAINER.COOP.CSC", "False",
            "TRAINER.COOP.CLASS_TOKEN_POSITION", "end", "TRAINER.COOP.PREC", "fp32",
            "DATALOADER.NUM_WORKERS", str(args.workers), "OPTIM.MAX_EPOCH", "1", "USE_CUDA", str(args.device == "cuda")]
    ours_opts = opts + ["MODEL.BACKBONE.NAME", str(ckpt)]

    def ours_args(root: Path, out: Path) -> list[str]:
        return [py, "train.py", "--root", str(root), "--seed", "1", "--trainer", "CoOp", "--output-dir", str(out),
                "--dataset-config-file", "configs/datasets/dtd.yaml",
                "--config-file", "configs/trainers/CoOp/vit_b16_ep50.yaml"]

    print(f"CLIP: random ViT-B/16 widths, {args.layers} layer(s) per tower, {args.image_size} px ({ckpt.name}); "
          f"synthetic DTD (all 47 classes), {args.device}, {args.workers} loader workers; work folder {work}")
    train_dir = work / "train"
    t = run(ours_args(work / "data", train_dir) + ["--no-feature-cache"] + ours_opts + ["TEST.NO_TEST", "True"],
            work / "train.log")
    print(f"checkpoint: ours CoOp, 1 shot, 1 epoch ({t:.1f} s): {train_dir}/prompt_learner/model.pth.tar-1")

    cache = work / "cache"
    rows: list[list[str]] = []
    results: dict[str, dict] = {}

    def ours_eval(label: str, key: str, extra: list[str]) -> None:
        out = work / key
        wall = run(ours_args(work / "data", out) + ["--eval-only", "--model-dir", str(train_dir), "--load-epoch", "1"]
                   + extra + ours_opts + ["MODEL.FEATURE_CACHE_DIR", str(cache)], work / f"{key}.log")
        r = json.loads((out / "results.json").read_text())
        results[key] = dict(eval_seconds=r["eval_seconds"], wall=wall, accuracy=r["accuracy"], correct=r["correct"],
                            total=r["total"], macro_f1=r["macro_f1"])
        files = sorted(p.name for p in cache.glob("*.pt")) if cache.is_dir() else []
        print(f"{label}: eval {r['eval_seconds']:.2f} s, process {wall:.1f} s, accuracy {r['accuracy']:.2f} "
              f"({r['correct']}/{r['total']}); cache files: {len(files)}")

    ours_eval("ours, 1st eval (cache miss)", "ours_miss", [])
    ours_eval("ours, 2nd eval (cache hit)", "ours_hit", [])
    hit = [ln for ln in (work / "ours_hit.log").read_text().splitlines() if "Feature cache hit" in ln]
    print("  " + (hit[0] if hit else "no 'Feature cache hit' line in the second run's output"))
    ours_eval("ours, cache off (--no-feature-cache)", "ours_off", ["--no-feature-cache"])

    if have_published:
        out = work / "published"
        res = work / "published_eval.json"
        # MODEL.BACKBONE.NAME: its _MODELS name (_download returns ckpt). OPTIM.WARMUP_EPOCH 0: Dassl's warm-up
        # scheduler passes `verbose` positionally, which this torch's LRScheduler no longer takes (TypeError in
        # build_model); an evaluation never steps the scheduler.
        pub_opts = opts + ["MODEL.BACKBONE.NAME", "ViT-B/16", "OPTIM.WARMUP_EPOCH", "0"]
        cmd = published_command(coop, dassl, ckpt, [
            "--root", str(work / "data_published"), "--seed", "1", "--trainer", "CoOp", "--output-dir", str(out),
            "--dataset-config-file", str(coop / "configs/datasets/dtd.yaml"),
            "--config-file", str(coop / "configs/trainers/CoOp/vit_b16_ep50.yaml"),
            "--eval-only", "--model-dir", str(train_dir), "--load-epoch", "1"] + pub_opts, result=res)
        wall = run(cmd, work / "published.log", cwd=work)
        r = json.loads(res.read_text())
        results["published"] = dict(r, wall=wall)
        print(f"published: eval {r['eval_seconds']:.2f} s, process {wall:.1f} s, accuracy {r['accuracy']:.2f} "
              f"({r['correct']}/{r['total']})")

    # the same checkpoint on the same images: every run must count the same correct images
    counts = {k: (v["correct"], v["total"], round(v["macro_f1"], 2)) for k, v in results.items()}
    if len(set(counts.values())) != 1:
        sys.exit(f"the runs disagree (correct, total): {counts}")
    print(f"check: all runs agree ({counts['ours_miss'][0]}/{counts['ours_miss'][1]} correct, "
          f"macro F1 {counts['ours_miss'][2]:.2f})")

    second = results["ours_hit"]
    names = [("ours_miss", "ours, 1st eval (cache miss: computes, writes)"),
             ("ours_hit", "ours, 2nd eval (cache hit)"),
             ("ours_off", "ours, cache off (--no-feature-cache)"),
             ("published", "published CoOp (recomputes)")]
    for key, label in names:
        if key in results:
            r = results[key]
            rows.append([label, f"{r['eval_seconds']:.2f}", f"{r['wall']:.1f}",
                         f"{r['eval_seconds'] / second['eval_seconds']:.1f}x" if second["eval_seconds"] else "-",
                         f"{r['wall'] / second['wall']:.2f}x"])
    print(f"\nRepeated evaluation of the DTD test split ({counts['ours_miss'][1]} images), CoOp --eval-only, "
          f"fresh process each (CPU figures are scaled down and noisy):")
    print_table(["run", "eval s", "process s", "eval / ours 2nd", "process / ours 2nd"], rows, text_cols=1)
    if "published" in results:
        p = results["published"]
        print(f"published / ours-second: eval {p['eval_seconds'] / second['eval_seconds']:.1f}x, "
              f"process {p['wall'] / second['wall']:.2f}x")

    if args.base2new:
        _base2new(args, work, ckpt, size)


def _base2new(args, work: Path, ckpt: Path, size: str) -> None:
    """Whole base-to-new jobs through the scripts (ours only), in a folder of links so that output/ lands there."""
    root = work / "b2n"
    root.mkdir()
    for name in ("scripts", "configs", "train.py"):
        (root / name).symlink_to(REPO_ROOT / name)
    env = {"DATA": str(work / "data"), "VLPROMPT_FEATURE_CACHE_DIR": str(work / "cache_b2n")}
    opts = ["MODEL.BACKBONE.NAME", str(ckpt), "INPUT.SIZE", size, "OPTIM.MAX_EPOCH", "1",
            "TRAINER.COOP.PREC", "fp32", "DATALOADER.NUM_WORKERS", str(args.workers),
            "USE_CUDA", str(args.device == "cuda")]
    rows = []
    for seed in ("1", "2"):
        tr = run(["bash", str(root / "scripts/coop/base2new_train.sh"), "dtd", seed, "vit_b16_ep50_ctxv1", "16"] + opts,
                 work / f"b2n_train{seed}.log", env=env, cwd=root)
        te = run(["bash", str(root / "scripts/coop/base2new_test.sh"), "dtd", seed, "vit_b16_ep50_ctxv1", "16", "1"]
                 + opts, work / f"b2n_test{seed}.log", env=env, cwd=root)
        evals = []
        for sub in ("train_base", "test_new"):
            d = root / "output/base2new" / sub / f"dtd/shots_16/CoOp/vit_b16_ep50_ctxv1/seed{seed}"
            evals.append(json.loads((d / "results.json").read_text())["eval_seconds"])
        rows.append([f"seed {seed}" + (" (test images cached by seed 1)" if seed == "2" else " (empty cache)"),
                     f"{tr:.1f}", f"{evals[0]:.2f}", f"{te:.1f}", f"{evals[1]:.2f}", f"{tr + te:.1f}"])
    print("\nWhole base-to-new job of ours (scripts/coop/base2new_train.sh + base2new_test.sh, 16 shots, 1 epoch, "
          "synthetic DTD; ours only):")
    print_table(["job", "train s", "its base eval s", "test (new) s", "its eval s", "total s"], rows, text_cols=1)


if __name__ == "__main__":
    main()
