"""What every method's bench shares: the frozen CLIP, our trainers without data, the Method base class, the
checks against the published code, timing, peak step memory and tables.

A method's file (``coop.py``, ``maple.py``, ...) subclasses :class:`Method` and fills in its config values and,
where it needs them, its inputs; ``bench_methods.py`` runs them.
"""
from __future__ import annotations

import atexit
import contextlib
import ctypes
import gc
import math
import re
import shutil
import statistics
import sys
import tempfile
import time
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, Sequence

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parents[2]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import open_clip  # noqa: E402
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # noqa: E402

from .published import published_eval, published_train_step  # noqa: E402

SEED = 0
LOGIT_TOL = 1e-3  # max |ours - published| of eval logits (exact-computation comparisons)
PARAM_TOL = 1e-5  # max |ours - published| of learnable parameters after one SGD step


@dataclass
class Shape:
    layers: int
    image_size: int
    warmup: int
    repeats: int


SHAPES = {
    # On 2 CPU cores one published CoOp train step (1000 prompts x 77 tokens through a 512-wide text block,
    # forward and backward) takes about 20-30 s per layer, so the CPU preset keeps one layer per tower.
    # The check run before timing is a first warm-up run of each measurement; `warmup` adds more.
    "small": Shape(layers=1, image_size=64, warmup=0, repeats=2),
    "full": Shape(layers=12, image_size=224, warmup=1, repeats=5),
}


# ---------------------------------------------------------------------------------------------- model
def build_clip(layers: int, image_size: int, seed: int) -> nn.Module:
    """Random ViT-B/16-shaped open_clip CLIP (QuickGELU), frozen, weights rounded to float16 values."""
    torch.manual_seed(seed)
    model = open_clip.model.CLIP(
        embed_dim=512,
        vision_cfg=dict(layers=layers, width=768, patch_size=16, image_size=image_size),
        text_cfg=dict(context_length=77, vocab_size=49408, width=512, heads=8, layers=layers),
        quick_gelu=True,
    )
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(p.half().float())  # OpenAI's checkpoints hold float16 values
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def class_names(n: int) -> list[str]:
    names = list(IMAGENET_CLASSNAMES)
    return [names[i % len(names)] + ("" if i < len(names) else f" {i // len(names)}") for i in range(n)]


@dataclass
class Backbone:
    """One frozen CLIP shared by every method of a run that uses its shape, and its state dict on disk."""
    layers: int
    image_size: int
    model: nn.Module
    _file: Optional[Path] = None

    def checkpoint_file(self) -> Path:
        """The state dict as a ``torch.save`` file for the published ``load_clip_to_cpu`` (float16: exact, the
        weights are float16 values; the published ``build_model`` rounds to float16 anyway)."""
        if self._file is None:
            folder = Path(tempfile.mkdtemp(prefix="vlprompt_bench_"))
            atexit.register(shutil.rmtree, folder, True)
            self._file = folder / f"clip_l{self.layers}_{self.image_size}px.pt"
            torch.save({k: v.detach().cpu().half() for k, v in self.model.state_dict().items()}, self._file)
        return self._file


_BACKBONES: dict[tuple[int, int], Backbone] = {}


def backbone(layers: int, image_size: int) -> Backbone:
    key = (layers, image_size)
    if key not in _BACKBONES:
        _BACKBONES[key] = Backbone(layers, image_size, build_clip(layers, image_size, SEED))
    return _BACKBONES[key]


# ------------------------------------------------------------------------------------------------ ours
def build_ours(name: str, opts: Sequence[Any], classnames: list[str], clip_model: nn.Module, image_size: int,
               lr: float, device: torch.device, setup: Optional[Callable[[Any], None]] = None) -> Any:
    """This repository's trainer ``name``, with the data loader and CLIP loading replaced by the inputs;
    ``setup(trainer)`` adds what the method needs from the data (called before ``build_model``)."""
    from vlprompt import plugins
    from vlprompt.config.setup import get_cfg
    from vlprompt.registry import TRAINER_REGISTRY

    plugins.load()

    def build_data_loader(self: Any) -> None:
        self.classnames = list(classnames)
        self.num_classes = len(classnames)
        self.lab2cname = dict(enumerate(classnames))
        if setup is not None:
            setup(self)

    # the same class name: the engine finds a method's config node (and PREC) by type(self).__name__
    Bench = type(name, (TRAINER_REGISTRY.get(name),), {"build_data_loader": build_data_loader,
                                                       "load_clip": lambda self: clip_model})

    cfg = get_cfg([
        "TRAINER.NAME", name, "MODEL.BACKBONE.NAME", "ViT-B/16", "INPUT.SIZE", (image_size, image_size), *opts,
        "OPTIM.NAME", "sgd", "OPTIM.LR", lr, "OPTIM.MAX_EPOCH", 1, "OPTIM.LR_SCHEDULER", "cosine",
        "USE_CUDA", device.type == "cuda",
    ])
    cfg.freeze()
    trainer = Bench(cfg)
    trainer.batch_idx = 0
    return trainer


def ours_train_step(trainer: Any, batch: dict[str, Tensor]) -> float:
    trainer.set_train_mode(True)
    return trainer.forward_backward(batch)["loss"]


@torch.no_grad()
def ours_eval(trainer: Any, batches: Sequence[Tensor]) -> Tensor:
    """What ``Trainer.test`` does per evaluation, without the data loader and the metrics."""
    trainer.set_train_mode(False)
    with trainer.precision.autocast():
        trainer.forget_precomputed()  # as Trainer.test: image-independent work once per evaluation
        _ = trainer.precomputed
        trainer.prepare_eval()
        return torch.cat([trainer.model_inference(x).float() for x in batches])


# --------------------------------------------------------------------------------------------- methods
@dataclass
class Setting:
    """What one method runs with (from the shape preset, the method's defaults and the command line)."""
    layers: int
    image_size: int
    classes: int
    train_batch: int
    test_images: int
    test_batch: int
    warmup: int
    repeats: int
    device: torch.device
    notes: list[str] = field(default_factory=list)


@dataclass
class Variant:
    """One way of comparing the published eval logits with ours."""
    label: str
    context: Callable[[], ContextManager]
    tol: float


class Method:
    """A benchmarked method: how to build both trainers and their inputs. Subclasses fill in the hooks."""
    key = ""
    title = ""
    trainer = ""  # our registry name
    node = ""  # config node under TRAINER
    lr = 0.002
    published_repo: Optional[str] = None  # "coop" / "maple": which --*-repo holds the published file
    published_file = ""  # trainers/<x>.py
    step_label = ""  # how the published side runs the checked SGD step, when not as is
    defaults: dict[str, dict[str, int]] = {}  # shape -> overrides of layers/classes/train_batch/test_*

    def ours_values(self, s: Setting) -> dict[str, Any]:
        raise NotImplementedError

    def published_values(self, s: Setting) -> dict[str, Any]:
        return self.ours_values(s)

    def describe(self, s: Setting) -> str:
        return ", ".join(f"{k} {v!r}" if isinstance(v, str) else f"{k} {v}" for k, v in self.ours_values(s).items())

    def ours_setup(self, s: Setting) -> Optional[Callable[[Any], None]]:
        """What ``build_model`` needs from the data besides the class names, given to our trainer first."""
        return None

    def published_after_build(self, trainer: Any) -> None:
        pass

    def train_batch(self, s: Setting, gen: torch.Generator, ours: Any) -> dict[str, Tensor]:
        images = torch.randn(s.train_batch, 3, s.image_size, s.image_size, generator=gen)
        labels = torch.randint(0, s.classes, (s.train_batch,), generator=gen)
        return {"img": images.to(s.device), "label": labels.to(s.device)}

    def train_label(self, s: Setting) -> str:
        return f"train step (batch {s.train_batch})"

    def variants(self) -> list[Variant]:
        return [Variant("", contextlib.nullcontext, LOGIT_TOL)]

    def step_context(self) -> ContextManager:
        return contextlib.nullcontext()

    def build_ours(self, s: Setting, clip_model: nn.Module, classnames: list[str]) -> Any:
        opts: list[Any] = []
        for k, v in self.ours_values(s).items():
            opts += [f"TRAINER.{self.node}.{k}", v]
        return build_ours(self.trainer, opts, classnames, clip_model, s.image_size, self.lr, s.device,
                          self.ours_setup(s))


def fake_train_items(labels: Sequence[int]) -> types.SimpleNamespace:
    """A stand-in for ``trainer.dm`` whose few-shot training set has these labels (no image files: the bench
    feeds random images itself, so nothing reads the items' paths or the transform)."""
    items = [types.SimpleNamespace(label=int(y), impath="", domain=0, classname="") for y in labels]
    return types.SimpleNamespace(dataset=types.SimpleNamespace(train_x=items), tfm_train=None, tfm_test=None)


# ---------------------------------------------------------------------------------------------- checks
def _max_param_diff(ours: nn.Module, published: nn.Module) -> tuple[float, str]:
    pub = dict(published.named_parameters())
    worst, where = 0.0, ""
    for name, p in ours.named_parameters():
        if p.requires_grad:
            d = (p.detach() - pub[name].detach().to(p.device, p.dtype)).abs().max().item()
            if d >= worst:
                worst, where = d, name
    return worst, where


def sync_params(ours: nn.Module, published: nn.Module) -> None:
    """Copy our learnable prompt-learner values into the published one (the parameter names are the same)."""
    pub = {n: p for n, p in published.named_parameters() if p.requires_grad}
    mine = {n: p for n, p in ours.named_parameters() if p.requires_grad}
    if set(pub) != set(mine):
        raise SystemExit(f"learnable parameters differ: ours only {sorted(set(mine) - set(pub))}, "
                         f"published only {sorted(set(pub) - set(mine))}")
    with torch.no_grad():
        for n, p in mine.items():
            pub[n].copy_(p.to(pub[n].dtype))


def check_ours_only(method: Method, ours: Any, batch: dict[str, Tensor], test_images: Sequence[Tensor]) -> None:
    """The check run without published code: eval logits and one train step, all finite."""
    logits = ours_eval(ours, test_images)
    scale = ours.model.logit_scale.exp().item()
    loss = ours_train_step(ours, batch)
    finite = bool(torch.isfinite(logits).all()) and math.isfinite(loss)
    print(f"check (ours only): eval logits {tuple(logits.shape)} (logit scale {scale:.1f}, max |logit| "
          f"{logits.abs().max().item():.2f}), train loss {loss:.4f}; all finite: {finite}")
    if not finite:
        raise SystemExit(f"{method.title}: non-finite outputs; not timing")


def check_equal(method: Method, ours: Any, published: Any, batch: dict[str, Tensor],
                test_images: Sequence[Tensor]) -> None:
    """The check run (also the first warm-up run): the full-eval logits of both sides on the same images
    (each of ``method.variants()``), then the loss and every learnable parameter after one SGD step on
    ``batch``; stops the run if one differs by more than its tolerance."""
    ours_logits = ours_eval(ours, test_images)
    scale = ours.model.logit_scale.exp().item()
    parts, failed = [], False
    for v in method.variants():
        with v.context():
            pub_logits = published_eval(published, test_images)
        diff = (ours_logits - pub_logits.to(ours_logits.device)).abs().max().item()
        failed |= diff > v.tol
        parts.append(f"{diff:.2e}" + (f" ({v.label}; tolerance {v.tol:g})" if v.label else ""))
    loss_ours = ours_train_step(ours, batch)
    with method.step_context():
        loss_pub = published_train_step(published, batch)
    pdiff, pname = _max_param_diff(ours.model.prompt_learner, published.model.prompt_learner)
    failed |= pdiff > PARAM_TOL or abs(loss_ours - loss_pub) > LOGIT_TOL
    step_note = f" ({method.step_label})" if method.step_label else ""
    print(f"check: eval logits {tuple(ours_logits.shape)} max |ours - published| = {', '.join(parts)} "
          f"(logit scale {scale:.1f}, max |logit| {ours_logits.abs().max().item():.2f}); one SGD step{step_note}: "
          f"loss |diff| {abs(loss_ours - loss_pub):.2e}, learnable parameters after it max |diff| = {pdiff:.2e} "
          f"({pname})")
    if failed:
        raise SystemExit(f"{method.title}: ours and the published code disagree; not timing")


# ---------------------------------------------------------------------------------------------- timing
def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fns: Sequence[Callable[[], Any]], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Median seconds of ``repeats`` calls of each function after ``warmup`` calls, taking turns (ours, published,
    ours, ...), so that a slow spell of a shared machine falls on both sides alike."""
    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            _sync(device)
            start = time.perf_counter()
            fn()
            _sync(device)
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


# ---------------------------------------------------------------------------------------------- memory
def _proc_status_bytes(key: str) -> int:
    with open("/proc/self/status") as f:
        match = re.search(rf"^{key}:\s+(\d+) kB", f.read(), re.M)
    if match is None:
        raise OSError(f"/proc/self/status has no {key}")
    return int(match.group(1)) * 1024


def _libc() -> Any:
    try:
        return ctypes.CDLL("libc.so.6")
    except OSError:
        return None


def peak_memory(fn: Callable[[], Any], device: torch.device) -> Optional[int]:
    """Bytes one call of ``fn`` needs above what was held before it (an untimed run).

    CUDA: the allocator's peak (``max_memory_allocated``) minus what was allocated before. CPU (Linux): the
    process's peak resident set (VmHWM, reset through ``/proc/self/clear_refs``) minus its resident set before,
    after ``malloc_trim`` has returned freed heap pages, so that memory freed earlier and reused counts again.
    None where neither works (another OS, a locked-down /proc)."""
    gc.collect()
    if device.type == "cuda":
        _sync(device)
        torch.cuda.reset_peak_memory_stats(device)
        before = torch.cuda.memory_allocated(device)
        fn()
        _sync(device)
        return torch.cuda.max_memory_allocated(device) - before
    libc = _libc()
    try:
        if libc is not None:
            libc.malloc_trim(0)
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset the peak resident set (VmHWM) to the current one
        before = _proc_status_bytes("VmRSS")
    except OSError:
        return None
    fn()
    return max(0, _proc_status_bytes("VmHWM") - before)


# ---------------------------------------------------------------------------------------------- tables
def print_table(header: Sequence[str], rows: Sequence[Sequence[str]], text_cols: Optional[int] = None) -> None:
    """``header`` and ``rows`` (strings) as ``a | b`` columns under a ``-+-`` rule: the first ``text_cols``
    columns left-aligned (default: those whose header is neither ``... (s)`` nor ``speed-up``), the rest
    right-aligned."""
    import tabulate as tabulate_module
    from tabulate import DataRow, Line, TableFormat, tabulate

    if text_cols is None:
        text_cols = sum(1 for c in header if not c.endswith("(s)") and c != "speed-up")
    fmt = TableFormat(lineabove=None, linebelowheader=Line("", "-", "-+-", ""), linebetweenrows=None,
                      linebelow=None, headerrow=DataRow("", " | ", ""), datarow=DataRow("", " | ", ""), padding=0,
                      with_header_hide=None)
    align = ["left"] * text_cols + ["right"] * (len(header) - text_cols)
    padding, tabulate_module.MIN_PADDING = tabulate_module.MIN_PADDING, 0  # columns as wide as their widest cell
    try:
        print(tabulate([list(r) for r in rows], headers=list(header), tablefmt=fmt, disable_numparse=True,
                       colalign=align))
    finally:
        tabulate_module.MIN_PADDING = padding
