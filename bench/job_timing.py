"""What the whole-process benches share (``bench_repeat_eval.py``, ``bench_base2new_job.py``): running a command
and timing it, the bench-sized CLIP checkpoint file, the command that runs a published ``train.py``
(``published_train.py``), and the in-process phase timings of a ``train.py`` run, ours or published.

Phase timings: a process that calls :func:`install_phases` (the published runner does; ours gets it through
``bench/phases_site/sitecustomize.py`` when ``PYTHONPATH`` holds that folder and ``$VLPROMPT_BENCH_PHASES`` names a
folder, so that our scripts run unchanged) writes ``phases-<pid>.json`` into that folder at exit, if it built a
trainer: when the process started (this module's import), when it exited, and spans of the
trainer's methods. Spans are taken per instance (the trainer base class's ``__init__`` wraps the instance's own,
possibly overridden, methods), so ours (``vlprompt.engine.trainer.Trainer``) and Dassl's ``SimpleTrainer`` are timed
alike: the trainer construction, ``build_data_loader``, ``build_model``, ``load_clip``, ``load_model``, each
``run_epoch`` and each ``test``; the compute calls (``forward_backward``, ``model_inference``,
``frozen_image_features``) are summed per enclosing span. Everything here is standard library only, so that the
import costs a process nothing measurable.
"""
from __future__ import annotations

import atexit
import functools
import importlib.abc
import importlib.util
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import ModuleType
from typing import Any, Callable, Optional, Sequence

IMPORTED = time.time()  # a process's start, as its phase records give it
BENCH = Path(__file__).resolve().parent
REPO_ROOT = BENCH.parent
PHASES_ENV = "VLPROMPT_BENCH_PHASES"
SITE_DIR = BENCH / "phases_site"  # PYTHONPATH entry whose sitecustomize installs the phase timings
DEFAULT_COOP_REPO = "/tmp/ref_bench/KaiyangZhou+CoOp"
DEFAULT_MAPLE_REPO = "/tmp/ref_bench/muzairkhattak+multimodal-prompt-learning"
DEFAULT_DASSL = "/tmp/ref_bench/KaiyangZhou+Dassl.pytorch"


# ---------------------------------------------------------------------------------------------- processes
def run(cmd: Sequence[str], log: Path, env: Optional[dict] = None, cwd: Path = REPO_ROOT) -> float:
    """Run ``cmd`` (output to ``log``); its wall time in seconds; stops the bench if it fails."""
    started = time.perf_counter()
    with open(log, "w") as f:
        rc = subprocess.call(list(cmd), stdout=f, stderr=subprocess.STDOUT, cwd=cwd,
                             env={**os.environ, **(env or {})})
    seconds = time.perf_counter() - started
    if rc != 0:
        sys.exit(f"failed (exit {rc}): {' '.join(map(str, cmd))}\n--- last lines of {log}:\n"
                 + "\n".join(log.read_text().splitlines()[-30:]))
    return seconds


def write_clip_checkpoint(path: Path, layers: int, image_size: int) -> Path:
    """The bench-sized random CLIP (``methods.common.build_clip``: ViT-B/16 widths, ``layers`` per tower) as an
    OpenAI-layout state dict with float16 values, as ``methods.common.Backbone.checkpoint_file`` writes it: ours
    loads it as ``MODEL.BACKBONE.NAME <path>``, the published ``load_clip_to_cpu`` through ``clip._download``."""
    import torch

    if str(BENCH) not in sys.path:
        sys.path.insert(0, str(BENCH))
    from methods.common import SEED, build_clip

    model = build_clip(layers, image_size, SEED)
    torch.save({k: v.detach().cpu().half() for k, v in model.state_dict().items()}, path)
    return path


def published_command(repo: Path, dassl: Path, ckpt: Path, train_args: Sequence[str], result: Optional[Path] = None,
                      phases: Optional[Path] = None, maple_float_proj: bool = False) -> list[str]:
    """The command that runs ``repo``'s own ``train.py`` with ``train_args`` in a fresh process
    (``published_train.py``: Dassl from ``dassl``, ``clip._download`` returning ``ckpt``)."""
    cmd = [sys.executable, str(BENCH / "published_train.py"), "--repo", str(repo), "--dassl", str(dassl),
           "--ckpt", str(ckpt)]
    if result is not None:
        cmd += ["--result", str(result)]
    if phases is not None:
        cmd += ["--phases", str(phases)]
    if maple_float_proj:
        cmd.append("--maple-float-proj")
    return cmd + ["--"] + [str(a) for a in train_args]


# ---------------------------------------------------------------------------------------------- imports
class _AfterImport(importlib.abc.MetaPathFinder):
    """Calls ``fn(module)`` right after the module ``name`` has been executed, the first time it is imported."""

    def __init__(self) -> None:
        self.pending: dict[str, list[Callable[[ModuleType], None]]] = {}

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Any:
        if name not in self.pending:
            return None
        fns = self.pending.pop(name)
        sys.meta_path.remove(self)
        try:
            spec = importlib.util.find_spec(name)
        finally:
            sys.meta_path.insert(0, self)
        if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
            return spec
        exec_module = spec.loader.exec_module

        def exec_and_patch(module: ModuleType) -> None:
            exec_module(module)
            for fn in fns:
                fn(module)

        spec.loader.exec_module = exec_and_patch  # type: ignore[method-assign]
        return spec


_AFTER_IMPORT = _AfterImport()


def after_import(name: str, fn: Callable[[ModuleType], None]) -> None:
    """``fn(module)`` once the module ``name`` is imported (at once if it already is)."""
    if name in sys.modules:
        fn(sys.modules[name])
        return
    _AFTER_IMPORT.pending.setdefault(name, []).append(fn)
    if _AFTER_IMPORT not in sys.meta_path:
        sys.meta_path.insert(0, _AFTER_IMPORT)


# ---------------------------------------------------------------------------------------------- phases
# the trainer base classes whose __init__ installs the per-instance timers
TRAINER_BASES = {"vlprompt.engine.trainer": "Trainer", "dassl.engine.trainer": "SimpleTrainer"}
SPANS = ("build_data_loader", "build_model", "load_clip", "load_model", "run_epoch", "test")
SUMS = ("forward_backward", "model_inference", "frozen_image_features")
# module-level functions of the published code timed as spans (Dassl's environment report runs pip and nvidia-smi)
FUNCTIONS = {"dassl.utils": ("collect_env_info",), "trainers.coop": ("load_clip_to_cpu",),
             "trainers.maple": ("load_clip_to_cpu",)}


class PhaseRecorder:
    """The spans of one process, written as ``<folder>/phases-<pid>.json`` at exit."""

    def __init__(self, folder: Path) -> None:
        self.start = IMPORTED
        self.folder = Path(folder)
        self.spans: list[dict[str, Any]] = []
        self._open: list[dict[str, Any]] = []
        self._summing = False
        atexit.register(self.write)

    def span(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            record = {"name": name, "depth": len(self._open), "t0": time.time(), "t1": None, "sums": {}}
            self.spans.append(record)
            self._open.append(record)
            try:
                return fn(*args, **kwargs)
            finally:
                record["t1"] = time.time()
                self._open.pop()
        return timed

    def summed(self, name: str, fn: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if self._summing:  # inside another summed call (model_inference -> frozen_image_features)
                return fn(*args, **kwargs)
            self._summing = True
            t0 = time.time()
            try:
                return fn(*args, **kwargs)
            finally:
                self._summing = False
                if self._open:
                    sums = self._open[-1]["sums"]
                    calls, seconds = sums.get(name, (0, 0.0))
                    sums[name] = (calls + 1, seconds + time.time() - t0)
        return timed

    def instrument_trainer_class(self, cls: type) -> None:
        init = cls.__init__
        recorder = self

        @functools.wraps(init)
        def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
            for name in SPANS:
                if callable(getattr(self, name, None)):
                    setattr(self, name, recorder.span(name, getattr(self, name)))
            for name in SUMS:
                if callable(getattr(self, name, None)):
                    setattr(self, name, recorder.summed(name, getattr(self, name)))
            recorder.span("trainer", init)(self, *args, **kwargs)

        cls.__init__ = __init__  # type: ignore[method-assign]

    def write(self) -> None:
        if not self.spans:  # no trainer in this process (e.g. the scripts' results table)
            return
        data = {"pid": os.getpid(), "argv": sys.argv, "start": self.start, "exit": time.time(), "spans": self.spans}
        self.folder.mkdir(parents=True, exist_ok=True)
        tmp = self.folder / f".phases-{os.getpid()}.tmp"
        tmp.write_text(json.dumps(data))
        tmp.replace(self.folder / f"phases-{os.getpid()}.json")


def install_phases(folder: Path) -> PhaseRecorder:
    """Time this process's trainer (see the module docstring); returns the recorder."""
    recorder = PhaseRecorder(folder)
    for module, cls in TRAINER_BASES.items():
        after_import(module, lambda m, cls=cls: recorder.instrument_trainer_class(getattr(m, cls)))
    for module, names in FUNCTIONS.items():
        def patch(m: ModuleType, names: Sequence[str] = names) -> None:
            for n in names:
                if callable(getattr(m, n, None)):
                    setattr(m, n, recorder.span(n, getattr(m, n)))
        after_import(module, patch)
    return recorder


def read_phases(folder: Path) -> list[dict[str, Any]]:
    """The records of every process that wrote into ``folder``, by start time."""
    records = [json.loads(p.read_text()) for p in Path(folder).glob("phases-*.json")]
    return sorted(records, key=lambda r: r["start"])
