"""A protocol -> the list of jobs that run it; each job is a few ``train.py`` steps run in sequence.

Folders and ``train.py`` arguments are those of ``scripts/common.sh`` (``base2new_train``/``base2new_test``,
``xd_train``/``xd_test``), so a sweep and the scripts share their runs; a ``--grid`` point adds one folder segment
after the config segment. A step is finished when its folder holds ``results.json`` (the scripts' rule).
"""
from __future__ import annotations

import itertools
import os
import re
import sys
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Callable

from vlprompt.errors import ConfigError
from vlprompt.sweep import catalog

PROTOCOLS = ("base2new", "fewshot", "xd", "dg")
KEY_RE = re.compile(r"^[A-Z][A-Z0-9_]*(\.[A-Z0-9_]+)*$")  # a config key: SEED, OPTIM.LR, ...


@dataclass(frozen=True)
class Step:
    """One ``train.py`` call. ``kind``: ``base``/``new`` (base-to-new) or ``acc``; ``label``: its dataset."""
    name: str
    folder: str
    command: list[str]
    kind: str
    label: str
    shots: int
    seed: int
    point: str = ""

    @property
    def finished(self) -> bool:
        return os.path.isfile(os.path.join(self.folder, "results.json"))

    @property
    def state(self) -> str:
        """``finished``, ``resumable`` (the folder holds part of a run) or ``new``."""
        if self.finished:
            return "finished"
        return "resumable" if os.path.isdir(self.folder) and os.listdir(self.folder) else "new"


@dataclass(frozen=True)
class Job:
    """Steps run in sequence in one slot (a later step reads an earlier one's checkpoint); console to ``log``."""
    name: str
    steps: list[Step]
    log: str
    cwd: str

    @property
    def state(self) -> str:
        states = {s.state for s in self.steps}
        return "finished" if states == {"finished"} else "new" if states == {"new"} else "resumable"


@dataclass(frozen=True)
class SweepSpec:
    """What the command line asks for; empty ``config``/``shots``/``datasets`` mean the protocol's defaults."""
    protocol: str
    trainer: str
    config: str = ""
    datasets: tuple[str, ...] = ()
    seeds: tuple[int, ...] = (1, 2, 3)
    shots: tuple[int, ...] = ()
    grid: tuple[str, ...] = ()
    opts: tuple[str, ...] = ()
    root: str = ""
    output: str = "output"
    source: str = "imagenet"
    gpus_per_job: int = 1
    name: str = ""


@dataclass
class Sweep:
    """A checked spec, its config name, its folder (``<output>/sweeps/<name>``: logs, tables) and its jobs."""
    spec: SweepSpec
    config: str
    folder: str
    jobs: list[Job] = field(default_factory=list)


def parse_grid(items: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """``("OPTIM.LR=0.002,0.001", ...)`` -> ``[("OPTIM.LR", ["0.002", "0.001"]), ...]``."""
    axes: list[tuple[str, list[str]]] = []
    for item in items:
        key, sep, values = item.partition("=")
        vals = [v.strip() for v in values.split(",")]
        if not sep or not KEY_RE.match(key) or not all(vals):
            raise ConfigError(f"--grid '{item}' is not KEY=v1,v2,...; write a config key and its values, "
                              "e.g. --grid OPTIM.LR=0.002,0.001")
        if key in (k for k, _ in axes):
            raise ConfigError(f"--grid names {key} twice; give all its values in one --grid {key}=v1,v2")
        axes.append((key, vals))
    return axes


def grid_points(items: tuple[str, ...]) -> list[tuple[str, list[str]]]:
    """The cartesian product of the ``--grid`` axes as ``(folder segment, KEY VALUE overrides)``."""
    axes = parse_grid(items)
    points = []
    for values in itertools.product(*(vals for _, vals in axes)):
        pairs = list(zip((k for k, _ in axes), values))
        segment = "-".join(f"{k}_{re.sub(r'[^A-Za-z0-9._+-]', '_', v)}" for k, v in pairs)
        points.append((segment, [x for pair in pairs for x in pair]))
    segments = [s for s, _ in points]
    clash = next((s for s in segments if segments.count(s) > 1), None)
    if clash is not None:
        raise ConfigError(f"--grid values give the same folder segment twice ({clash}); make the values distinct")
    return points


def check_opts(opts: tuple[str, ...]) -> None:
    if len(opts) % 2 or not all(KEY_RE.match(k) for k in opts[::2]):
        raise ConfigError(f"the trailing overrides '{' '.join(opts)}' are not KEY VALUE pairs; write them after all "
                          "flags as e.g. OPTIM.MAX_EPOCH 2 DATALOADER.NUM_WORKERS 0")


def load_epoch(cfg_file: Path, opts: list[str]) -> int:
    """The epoch the evaluation loads: the last ``OPTIM.MAX_EPOCH`` override, else the config's."""
    values = [v for k, v in zip(opts[::2], opts[1::2]) if k == "OPTIM.MAX_EPOCH"]
    if not values:
        return catalog.max_epoch(cfg_file)
    try:
        return int(values[-1])
    except ValueError:
        raise ConfigError(f"OPTIM.MAX_EPOCH {values[-1]} is not an integer; pass e.g. OPTIM.MAX_EPOCH 5") from None


def launcher(gpus_per_job: int) -> list[str]:
    """``python train.py`` or, with several GPUs per job, ``python -m torch.distributed.run ... train.py``."""
    if gpus_per_job > 1:
        return [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                str(gpus_per_job), str(catalog.TRAIN_PY)]
    return [sys.executable, str(catalog.TRAIN_PY)]


def build_sweep(spec: SweepSpec) -> Sweep:
    """Check ``spec`` against the repo (trainer, config, datasets, grid, overrides) and list its jobs."""
    if spec.protocol not in PROTOCOLS:
        raise ConfigError(f"unknown protocol '{spec.protocol}'; the first argument is one of: {', '.join(PROTOCOLS)}")
    trainer = catalog.check_trainer(spec.trainer)
    config = spec.config or catalog.default_config(trainer, spec.protocol)
    cfg_file = catalog.config_file(trainer, config)
    check_opts(spec.opts)
    seeds = tuple(dict.fromkeys(spec.seeds))
    # an evaluation-only method gives the same result for every seed (the test splits do not depend on it)
    spec = replace(spec, seeds=seeds[:1] if trainer in catalog.EVAL_ONLY else seeds,
                   shots=tuple(dict.fromkeys(spec.shots)))
    if spec.gpus_per_job < 1:
        raise ConfigError(f"--gpus-per-job {spec.gpus_per_job} must be 1 or more")
    output = os.path.abspath(spec.output)
    folder = os.path.join(output, "sweeps", spec.name or f"{spec.protocol}_{trainer}_{config}")
    sweep = Sweep(spec, config, folder)
    ctx = _Context(spec, trainer, config, cfg_file, output, launcher(spec.gpus_per_job),
                   os.path.abspath(spec.root) if spec.root else "")
    shots = spec.shots or ((1, 2, 4, 8, 16) if spec.protocol == "fewshot" else (16,))
    for segment, grid_opts in grid_points(spec.grid):
        for s in shots:
            for dataset, seed in _slots(spec):
                steps = ctx.steps(dataset, s, seed, segment, grid_opts)
                name = "_".join(x for x in (_job_label(spec.protocol, dataset, s), segment, f"seed{seed}") if x)
                sweep.jobs.append(Job(name, steps, os.path.join(folder, "logs", f"{name}.txt"), os.getcwd()))
    return sweep


def _slots(spec: SweepSpec) -> list[tuple[str, int]]:
    """(dataset, seed) of each job: the training dataset (base2new, fewshot) or the source (xd, dg)."""
    if spec.protocol in ("xd", "dg"):
        catalog.dataset_file(spec.source, "--source")
        return [(spec.source, seed) for seed in spec.seeds]
    return [(d, seed) for d in _datasets(spec) for seed in spec.seeds]


def _datasets(spec: SweepSpec) -> list[str]:
    """``--datasets`` expanded (``all``); for xd/dg they are the evaluation targets."""
    if spec.protocol == "dg":
        default = catalog.DG_TARGETS
    else:
        default = [d for d in catalog.FEWSHOT_DATASETS if spec.protocol != "xd" or d != spec.source]
    names: list[str] = []
    for name in spec.datasets or ("all",):
        for d in default if name == "all" else [name]:
            catalog.dataset_file(d)
            if d not in names:
                names.append(d)
    return names


def _job_label(protocol: str, dataset: str, shots: int) -> str:
    return f"{dataset}_shots{shots}" if protocol == "base2new" else f"{dataset}_{shots}shots"


@dataclass
class _Context:
    spec: SweepSpec
    trainer: str
    config: str
    cfg_file: Path
    output: str
    launch: list[str]
    root: str

    def _step(self, name: str, folder: str, dataset: str, args: list[str], kind: str, shots: int, seed: int,
              point: str) -> Step:
        command = self.launch + ["--root", self.root, "--output-dir", folder, "--seed", str(seed),
                                 "--trainer", self.trainer, "--dataset-config-file", str(catalog.dataset_file(dataset)),
                                 "--config-file", str(self.cfg_file)] + args
        return Step(name, folder, command, kind, dataset, shots, seed, point)

    def steps(self, dataset: str, shots: int, seed: int, point: str, grid_opts: list[str]) -> list[Step]:
        opts = list(self.spec.opts) + grid_opts
        join = lambda *parts: os.path.join(self.output, *(p for p in parts if p))  # noqa: E731
        if self.trainer in catalog.EVAL_ONLY:
            return self._eval_only_steps(dataset, shots, seed, point, opts, join)
        ep = ["--load-epoch", str(load_epoch(self.cfg_file, opts)), "--eval-only"]
        if self.spec.protocol == "base2new":
            common = (f"shots_{shots}", self.trainer, self.config, point, f"seed{seed}")
            base = join("base2new", "train_base", dataset, *common)
            new = join("base2new", "test_new", dataset, *common)
            shot_opts = ["DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES"]
            return [self._step("train_base", base, dataset, shot_opts + ["base"] + opts, "base", shots, seed, point),
                    self._step("test_new", new, dataset, ["--model-dir", base] + ep + shot_opts + ["new"] + opts,
                               "new", shots, seed, point)]
        run = f"{self.config}_{shots}shots"
        train = join(dataset, self.trainer, run, point, f"seed{seed}")
        steps = [self._step("train", train, dataset, ["DATASET.NUM_SHOTS", str(shots)] + opts, "acc", shots, seed,
                            point)]
        if self.spec.protocol in ("xd", "dg"):
            for target in _datasets(self.spec):
                folder = join("evaluation", self.trainer, run, point, target, f"seed{seed}")
                steps.append(self._step(f"test_{target}", folder, target, ["--model-dir", train] + ep + opts, "acc",
                                        shots, seed, point))
        return steps

    def _eval_only_steps(self, dataset: str, shots: int, seed: int, point: str, opts: list[str],
                         join: Callable[..., str]) -> list[Step]:
        """A method without training: base2new evaluates base and new (``test_base``/``test_new`` folders);
        the others evaluate all classes of the dataset (fewshot) or of the source and every target (xd, dg)."""
        if self.spec.protocol == "base2new":
            common = (f"shots_{shots}", self.trainer, self.config, point, f"seed{seed}")
            return [self._step(f"test_{sub}", join("base2new", f"test_{sub}", dataset, *common), dataset,
                               ["--eval-only", "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", sub]
                               + opts, sub, shots, seed, point)
                    for sub in ("base", "new")]
        run = f"{self.config}_{shots}shots"
        if self.spec.protocol == "fewshot":
            return [self._step("test", join(dataset, self.trainer, run, point, f"seed{seed}"), dataset,
                               ["--eval-only"] + opts, "acc", shots, seed, point)]
        return [self._step(f"test_{target}", join("evaluation", self.trainer, run, point, target, f"seed{seed}"),
                           target, ["--eval-only"] + opts, "acc", shots, seed, point)
                for target in [self.spec.source] + _datasets(self.spec)]
