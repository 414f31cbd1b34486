"""Runs a published ``train.py`` (KaiyangZhou/CoOp, or muzairkhattak/multimodal-prompt-learning for MaPLe, both on
KaiyangZhou/Dassl.pytorch) in this process, as ``python train.py ARGS`` from its clone would, for the benches:

    python bench/published_train.py --repo CLONE --dassl DASSL --ckpt CLIP.pt [--result R.json] [--phases DIR]
        [--maple-float-proj] -- TRAIN.PY ARGS

Nothing of the published code is copied or edited; at run time, before its ``train.py`` runs:

* Dassl's imports that these runs never use are stubbed when not installed (``methods/published.py``);
* ``clip._download`` returns ``--ckpt`` (the bench-sized CLIP), so its ``load_clip_to_cpu`` loads that file;
* ``--result``: Dassl's ``SimpleTrainer.test`` is wrapped in a timer and, after each call, writes the evaluation's
  ``eval_seconds``, accuracy, correct and total counts and macro F1 (Dassl's own sklearn F1) to that JSON file;
* ``--phases``: the phase timings of ``job_timing.py`` (written to that folder at exit);
* ``--maple-float-proj``: after ``MaPLe.build_model``, the prompt learner's ``proj`` is made float32. Its
  ``PREC fp32`` otherwise fails on that layer, which the prompt learner always casts to half (the one change, as
  in ``methods/maple.py``); the parameter objects stay those of the optimizer.
"""
from __future__ import annotations

import argparse
import importlib.util
import json
import runpy
import sys
import time
from pathlib import Path
from typing import Any

BENCH = Path(__file__).resolve().parent
sys.path.insert(0, str(BENCH))
import job_timing  # noqa: E402  (standard library only: its start time is this process's)

# the published train.py sees the path a `python train.py` from its clone would (with the clone and Dassl first)
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != BENCH]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repo", required=True, help="the published clone (its train.py, trainers/, clip/)")
    ap.add_argument("--dassl", required=True, help="the Dassl.pytorch clone (the folder holding dassl/)")
    ap.add_argument("--ckpt", required=True, help="the CLIP state dict that clip._download returns")
    ap.add_argument("--result", default="", help="JSON file of the last evaluation")
    ap.add_argument("--phases", default="", help="folder of the phase timings (job_timing.py)")
    ap.add_argument("--maple-float-proj", action="store_true", help="float32 proj of MaPLe's prompt learner")
    ap.add_argument("train_args", nargs=argparse.REMAINDER, help="-- then the arguments of its train.py")
    args = ap.parse_args()
    train_args = args.train_args[1:] if args.train_args[:1] == ["--"] else args.train_args
    if args.phases:
        job_timing.install_phases(Path(args.phases))

    # Dassl's unused missing imports stubbed, as bench/methods/published.py does (loaded from its file: importing
    # the methods package would import open_clip, which the published code never does)
    spec = importlib.util.spec_from_file_location("bench_published", BENCH / "methods" / "published.py")
    assert spec is not None and spec.loader is not None
    published = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(published)
    sys.meta_path.append(published._StubFinder())
    try:
        importlib.import_module("torch.utils.tensorboard")
    except ImportError:
        sys.modules["torch.utils.tensorboard"] = published._StubModule("torch.utils.tensorboard")

    repo = str(Path(args.repo).resolve())
    sys.path[:0] = [repo, str(Path(args.dassl).resolve())]
    from clip import clip

    clip._download = lambda url, root=None: args.ckpt

    if args.result:
        job_timing.after_import("dassl.engine.trainer", lambda m: _write_results(m.SimpleTrainer, args.result))
    if args.maple_float_proj:
        job_timing.after_import("trainers.maple", lambda m: _float_proj(m.MaPLe))

    sys.argv = [repo + "/train.py"] + train_args
    runpy.run_path(repo + "/train.py", run_name="__main__")


def _write_results(cls: type, out: str) -> None:
    """``cls.test`` timed; after each call, its result to ``out`` (the keys of our results.json)."""
    test = cls.test

    def timed_test(self: Any, split: Any = None) -> Any:
        t = time.time()
        r = test(self, split)
        seconds = time.time() - t
        import numpy as np
        from sklearn.metrics import f1_score  # Dassl's own macro F1 (Classification.evaluate)

        ev = self.evaluator
        f1 = 100.0 * f1_score(ev._y_true, ev._y_pred, average="macro", labels=np.unique(ev._y_true))
        Path(out).write_text(json.dumps(dict(eval_seconds=seconds, accuracy=float(r), correct=int(ev._correct),
                                             total=int(ev._total), macro_f1=float(f1))))
        return r

    cls.test = timed_test  # type: ignore[method-assign]


def _float_proj(cls: type) -> None:
    build_model = cls.build_model

    def build_model_float_proj(self: Any) -> None:
        build_model(self)
        self.model.prompt_learner.proj.float()

    cls.build_model = build_model_float_proj  # type: ignore[method-assign]


if __name__ == "__main__":
    main()
