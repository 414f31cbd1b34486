"""Speed of this repository's trainers, against the published code where there is one.

    --method coop            CoOp    vs KaiyangZhou/CoOp trainers/coop.py (on Dassl)
    --method cocoop          CoCoOp  vs KaiyangZhou/CoOp trainers/cocoop.py
    --method maple           MaPLe   vs muzairkhattak/multimodal-prompt-learning trainers/maple.py (+ its patched clip/)
    --method metaproto       MetaProto, ours only (no published code)
    --method instanceprompt  InstancePrompt, ours only (no published code)
    --method all             all of them in turn (several names may be given)

Every method gets the same kind of frozen CLIP: a randomly initialised open_clip ``CLIP`` of ViT-B/16 shape
(QuickGELU), or a scaled-down one on CPU, weights rounded to float16 values as in OpenAI's released files so
that the published ``clip.build_model`` sees exactly the same numbers. The published trainers load it through
their own unchanged ``load_clip_to_cpu`` (``clip._download`` is pointed at a temporary file holding the state
dict). Class names are ImageNet's. Both sides run ``PREC fp32`` and start from the same learnable values (ours
are copied into the published prompt learner by parameter name, which the two share).

Measured (median wall time of ``--repeats`` runs after the check run and ``--warmup`` more; the two sides
take turns, ours then published, run by run):

* train step: each trainer's own ``forward_backward`` on one batch: forward, loss, backward, SGD step.
* full eval: logits of ``--test-images`` images in batches of ``--test-batch`` under ``torch.no_grad``. Ours:
  ``precompute`` (image-independent work once) + ``model_inference`` per batch. Published: Dassl's
  ``model_inference`` per batch (CoOp and MaPLe re-encode every class prompt each batch; CoCoOp encodes the
  n_cls prompts of each image one image at a time).

Before timing, the eval logits of both sides on the same images are compared, and so are all learnable
parameters after one SGD step on the same batch. MaPLe: the published forward casts the inserted prompts with
``.half()`` even under ``PREC fp32`` (rounding them to float16) and its ``PREC fp32`` crashes on its half
``proj``; as in shared/golden, the published prompt learner gets ``proj.float()`` after construction, its
logits as published are compared loosely (atol 1e-3), and the logits and the SGD step are compared tightly
with ``torch.Tensor.half`` made the identity (casts neutralised). The timed published MaPLe runs keep the casts.

MetaProto and InstancePrompt have no published code: ours only, on the same scaled-down model. MetaProto's train
step is one meta-training iteration (``META_BATCH`` 4 tasks of 5-way, 16 images per class, K_SHOT 2 support
images); its eval is CoOp's. InstancePrompt: one train step with 4 shots x ``--classes`` instance prompts and a
batch of 32 images, and a full eval with the top-4 rule.

Defaults. ``--shape small`` (CPU default, a SCALED-DOWN model): 1 transformer layer per tower and 64 px images
(MaPLe: 2 layers, so that its deep prompts run, with PROMPT_DEPTH 2 on both sides instead of the published 9),
1000 classes, eval 200 images in batches of 100, median of 2 runs; CoCoOp: 100 classes, eval 100 images in
batches of 50 (the published code encodes n_cls prompts per image). ``--shape full`` (CUDA default): ViT-B/16
(12 layers, 224 px, PROMPT_DEPTH 9), 1000 classes, eval 1000 images (CoCoOp 100), one more warm-up run, median
of 5. Train batch: CoOp 8 on CPU / 32 (its config), CoCoOp 4 (its config: 1), MaPLe 4 (its config),
InstancePrompt 32. Method settings otherwise as the published configs (CoOp N_CTX 16 random init; CoCoOp N_CTX
4 "a photo of a"; MaPLe N_CTX 2 "a photo of a", lr 0.0035).

The published code is imported at run time, never copied: ``--coop-repo`` (alias ``--published``; default
``$COOP_REPO`` or /work/ref/CoOp), ``--maple-repo`` (default ``$MAPLE_REPO`` or /work/ref/maple), Dassl from
``--dassl``. Both repositories ship a package named ``clip``: each published trainer is imported with its own
repository's ``clip`` in ``sys.modules``, which is taken out again afterwards (the trainer module keeps its
references), so the two never meet. Modules Dassl imports but this benchmark never uses (tensorboard, tabulate,
gdown, sklearn, ...) are replaced by empty stubs when they are not installed.

    python bench/bench_methods.py --method coop        # CPU, scaled-down model; each method alone < 4 min on 2 cores
    python bench/bench_methods.py --method all --device cuda   # full ViT-B/16 shape
"""
from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import math
import os
import shutil
import statistics
import sys
import tempfile
import time
import types
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, ContextManager, Optional, Sequence

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import open_clip  # noqa: E402
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # noqa: E402

DEFAULT_COOP = os.environ.get("COOP_REPO", "/work/ref/CoOp")
DEFAULT_MAPLE = os.environ.get("MAPLE_REPO", "/work/ref/maple")
DEFAULT_DASSL = os.environ.get("DASSL_REPO", "")
# Imported at module level by Dassl but never used by this benchmark; stubbed only if missing.
STUBBABLE = ("tabulate", "gdown", "sklearn", "scipy", "wilds", "pandas", "tensorboard")
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


# ------------------------------------------------------------------------------------------- published
class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last-resort finder: empty modules for the STUBBABLE packages that are not installed."""

    def __init__(self) -> None:
        self.stubbed: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        if name.split(".")[0] not in STUBBABLE:
            return None
        self.stubbed.append(name)
        return importlib.machinery.ModuleSpec(name, self, is_package=True)

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> types.ModuleType:
        return _StubModule(spec.name)

    def exec_module(self, module: types.ModuleType) -> None:
        module.__path__ = []  # type: ignore[attr-defined]


class _StubModule(types.ModuleType):
    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return type(name, (), {"__init__": lambda self, *a, **k: None})


def _is_clip(name: str) -> bool:
    return name == "clip" or name.startswith("clip.")


# the `clip` modules of each published repository, kept out of sys.modules between imports
_CLIP_PACKAGES: dict[Path, dict[str, types.ModuleType]] = {}


@contextlib.contextmanager
def _own_clip(repo: Path):
    """While importing a published trainer: ``import clip`` finds ``repo``'s own package; afterwards the
    ``clip`` modules leave sys.modules again (the trainer module keeps its references to them)."""
    others = {n: m for n, m in sys.modules.items() if _is_clip(n)}
    for n in others:
        del sys.modules[n]
    sys.modules.update(_CLIP_PACKAGES.get(repo, {}))
    sys.path.insert(0, str(repo))
    try:
        yield
    finally:
        sys.path.remove(str(repo))
        _CLIP_PACKAGES[repo] = {n: m for n, m in sys.modules.items() if _is_clip(n)}
        for n in _CLIP_PACKAGES[repo]:
            del sys.modules[n]
        sys.modules.update(others)


_PUBLISHED: dict[Path, types.ModuleType] = {}


def import_published(trainer_file: Path, dassl_dir: Optional[Path]) -> tuple[types.ModuleType, list[str]]:
    """Import a published trainer file (``<repo>/trainers/<x>.py``) with its repository's ``clip`` and Dassl,
    under a private module name; returns the module and what had to be stubbed."""
    trainer_file = trainer_file.resolve()
    if trainer_file in _PUBLISHED:
        return _PUBLISHED[trainer_file], []
    repo = trainer_file.parents[1]
    finder = _StubFinder()
    stubbed: list[str] = []
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        sys.modules["torch.utils.tensorboard"] = _StubModule("torch.utils.tensorboard")
        stubbed = ["torch.utils.tensorboard"]
    if dassl_dir is not None and str(dassl_dir) not in sys.path:
        sys.path.append(str(dassl_dir))
    sys.meta_path.append(finder)
    try:
        with _own_clip(repo):
            name = f"published_{repo.name}_{trainer_file.stem}".replace("-", "_").replace(".", "_")
            spec = importlib.util.spec_from_file_location(name, trainer_file)
            assert spec is not None and spec.loader is not None
            module = importlib.util.module_from_spec(spec)
            with contextlib.redirect_stdout(io.StringIO()):
                spec.loader.exec_module(module)
                import dassl.evaluation  # noqa: F401  (imported by the trainer's constructor)
    finally:
        sys.meta_path.remove(finder)
        # Dassl keeps what it bound; later importers (torch's own optional imports) must not see stubs.
        for n in [n for n, m in sys.modules.items() if isinstance(m, _StubModule)]:
            del sys.modules[n]
    clip_file = Path(module.clip.__file__).resolve()
    if repo not in clip_file.parents:  # the isolation above failed: another repository's clip was imported
        raise ImportError(f"{trainer_file} imported {clip_file}, not its own repository's clip package")
    _PUBLISHED[trainer_file] = module
    return module, stubbed + sorted(set(n.split(".")[0] for n in finder.stubbed))


def build_published(module: types.ModuleType, name: str, node: str, values: dict[str, Any], ckpt: Path,
                    classnames: list[str], image_size: int, lr: float, device: torch.device,
                    after_build: Optional[Callable[[Any], None]] = None) -> Any:
    """The published trainer ``name`` with ``cfg.TRAINER.<node> = values``; its ``load_clip_to_cpu`` runs
    unchanged on ``ckpt`` (``clip._download`` returns that file instead of downloading)."""
    from dassl.config import get_cfg_default
    from yacs.config import CfgNode as CN

    cfg = get_cfg_default()
    cfg.TRAINER[node] = CN(dict(values))
    cfg.MODEL.BACKBONE.NAME = "ViT-B/16"
    cfg.INPUT.SIZE = (image_size, image_size)
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = lr
    cfg.OPTIM.MAX_EPOCH = 1
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.USE_CUDA = device.type == "cuda"
    cfg.freeze()

    module.clip._download = lambda url, root=None: str(ckpt)

    class BenchPublished(getattr(module, name)):  # type: ignore[misc]
        def build_data_loader(self) -> None:
            self.dm = types.SimpleNamespace(dataset=types.SimpleNamespace(classnames=list(classnames)))
            self.train_loader_x = self.train_loader_u = self.val_loader = self.test_loader = None
            self.num_classes = len(classnames)
            self.num_source_domains = 1
            self.lab2cname = dict(enumerate(classnames))

        def build_model(self) -> None:
            super().build_model()
            if after_build is not None:
                after_build(self)

    # the published code prints its progress; torch.jit.load warns before the plain torch.load fallback
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer = BenchPublished(cfg)
    trainer.batch_idx, trainer.num_batches = 0, 1 << 30  # no LR step inside the timed steps
    return trainer


def published_train_step(trainer: Any, batch: dict[str, Tensor]) -> float:
    trainer.set_model_mode("train")
    return trainer.forward_backward(batch)["loss"]


@torch.no_grad()
def published_eval(trainer: Any, batches: Sequence[Tensor]) -> Tensor:
    trainer.set_model_mode("eval")
    return torch.cat([trainer.model_inference(x).float() for x in batches])


@contextlib.contextmanager
def half_casts_neutralised():
    """``torch.Tensor.half`` as the identity (the published MaPLe forward casts its prompts with it)."""
    original = torch.Tensor.half
    torch.Tensor.half = lambda self, *args, **kwargs: self  # type: ignore[method-assign]
    try:
        yield
    finally:
        torch.Tensor.half = original  # type: ignore[method-assign]


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


class CoOpMethod(Method):
    key, title, trainer, node = "coop", "CoOp", "CoOp", "COOP"
    published_repo, published_file = "coop", "coop.py"
    defaults = {"small": dict(train_batch=8), "full": dict(train_batch=32)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=16, CSC=False, CTX_INIT="", CLASS_TOKEN_POSITION="end", PREC="fp32")


class CoCoOpMethod(Method):
    key, title, trainer, node = "cocoop", "CoCoOp", "CoCoOp", "COCOOP"
    published_repo, published_file = "coop", "cocoop.py"
    # The published CoCoOp encodes batch x n_cls prompts per step and per evaluated image, one image at a time:
    # on CPU fewer classes and images (the published config trains with batch 1; 4 here).
    defaults = {"small": dict(classes=100, train_batch=4, test_images=100, test_batch=50),
                "full": dict(train_batch=4, test_images=100)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32")


class MaPLeMethod(Method):
    key, title, trainer, node = "maple", "MaPLe", "MaPLe", "MAPLE"
    lr = 0.0035
    published_repo, published_file = "maple", "maple.py"
    # Two layers on CPU so that the deep (layer >= 1) prompts of both towers run (batch 4 as published).
    defaults = {"small": dict(layers=2, train_batch=4), "full": dict(train_batch=4)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        # PROMPT_DEPTH 9 (published config) needs 9 layers; both sides get the same clipped depth
        return dict(N_CTX=2, CTX_INIT="a photo of a", PREC="fp32", PROMPT_DEPTH=min(9, s.layers))

    def published_after_build(self, trainer: Any) -> None:
        # the published PREC fp32 crashes on its half `proj` (shared/golden/README.md): the one change needed
        trainer.model.prompt_learner.proj.float()

    def variants(self) -> list[Variant]:
        return [Variant("published as is (.half() casts of the prompts)", contextlib.nullcontext, LOGIT_TOL),
                Variant("casts neutralised", half_casts_neutralised, LOGIT_TOL)]

    step_label = "casts neutralised"

    def step_context(self) -> ContextManager:
        return half_casts_neutralised()


class MetaProtoMethod(Method):
    key, title, trainer, node = "metaproto", "MetaProto", "MetaProto", "METAPROTO"
    N_WAY, K_SHOT, META_BATCH, PER_CLASS = 5, 2, 4, 16

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32", N_WAY=self.N_WAY, K_SHOT=self.K_SHOT,
                    META_BATCH=self.META_BATCH, IMAGES_PER_CLASS=self.PER_CLASS)

    def ours_setup(self, s: Setting) -> Callable[[Any], None]:
        per_class = self.PER_CLASS

        def setup(trainer: Any) -> None:  # what compute_loss reads from the episodic loader
            trainer._episodes = types.SimpleNamespace(batch_sampler=types.SimpleNamespace(per_class=per_class))
        return setup

    def train_batch(self, s: Setting, gen: torch.Generator, ours: Any) -> dict[str, Tensor]:
        if s.classes < self.N_WAY:
            raise SystemExit(f"MetaProto: {self.N_WAY}-way tasks need --classes >= {self.N_WAY}")
        # one meta-batch as EpisodicBatchSampler lays it out: task, then class, then image (supports first)
        classes = torch.stack([torch.randperm(s.classes, generator=gen)[: self.N_WAY] for _ in range(self.META_BATCH)])
        labels = classes.repeat_interleave(self.PER_CLASS, dim=1).flatten()
        images = torch.randn(labels.numel(), 3, s.image_size, s.image_size, generator=gen)
        return {"img": images.to(s.device), "label": labels.to(s.device)}

    def train_label(self, s: Setting) -> str:
        n = self.META_BATCH * self.N_WAY * self.PER_CLASS
        return (f"meta-train iteration ({self.META_BATCH} tasks x {self.N_WAY}-way x {self.PER_CLASS} images, "
                f"K {self.K_SHOT}: {n} images)")


class InstancePromptMethod(Method):
    key, title, trainer, node = "instanceprompt", "InstancePrompt", "InstancePrompt", "INSTANCEPROMPT"
    SHOTS = 4
    defaults = {"small": dict(train_batch=32), "full": dict(train_batch=32)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX_GLOBAL=4, CTX_INIT="a photo of a", N_CTX_INSTANCE=4, PICKS_PER_CLASS=2, TOPK=4,
                    PREC="fp32")

    def ours_setup(self, s: Setting) -> Callable[[Any], None]:
        labels = [c for c in range(s.classes) for _ in range(self.SHOTS)]  # a few-shot train_x, class by class

        def setup(trainer: Any) -> None:  # build_model reads the training items' labels
            items = [types.SimpleNamespace(label=y) for y in labels]
            trainer.dm = types.SimpleNamespace(dataset=types.SimpleNamespace(train_x=items))
        return setup

    def train_batch(self, s: Setting, gen: torch.Generator, ours: Any) -> dict[str, Tensor]:
        instance_labels = ours.model.prompt_learner.instance_labels.cpu()
        if s.train_batch > instance_labels.numel():
            raise SystemExit(f"InstancePrompt: --train-batch {s.train_batch} exceeds the {instance_labels.numel()} "
                             "training images (4 shots per class)")
        own = torch.randperm(instance_labels.numel(), generator=gen)[: s.train_batch]  # the loader's "index"
        images = torch.randn(own.numel(), 3, s.image_size, s.image_size, generator=gen)
        return {"img": images.to(s.device), "label": instance_labels[own].to(s.device), "index": own.to(s.device)}

    def train_label(self, s: Setting) -> str:
        return f"train step (batch {s.train_batch}, {self.SHOTS * s.classes} instance prompts)"


METHODS: dict[str, Method] = {m.key: m for m in (CoOpMethod(), CoCoOpMethod(), MaPLeMethod(), MetaProtoMethod(),
                                                   InstancePromptMethod())}


# ---------------------------------------------------------------------------------------------- timing
def timed(fns: Sequence[Callable[[], Any]], device: torch.device, warmup: int, repeats: int) -> list[float]:
    """Median seconds of ``repeats`` calls of each function after ``warmup`` calls, taking turns (ours, published,
    ours, ...), so that a slow spell of a shared machine falls on both sides alike."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        for fn in fns:
            fn()
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeats):
        for fn, out in zip(fns, times):
            sync()
            start = time.perf_counter()
            fn()
            sync()
            out.append(time.perf_counter() - start)
    return [statistics.median(t) for t in times]


def print_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    text_cols = sum(1 for c in header if not c.endswith("(s)") and c != "speed-up")

    def line(row: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) if i < text_cols else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))


def _max_param_diff(ours: nn.Module, published: nn.Module) -> tuple[float, str]:
    pub = dict(published.named_parameters())
    worst, where = 0.0, ""
    for name, p in ours.named_parameters():
        if p.requires_grad:
            d = (p.detach() - pub[name].detach().to(p.device, p.dtype)).abs().max().item()
            if d >= worst:
                worst, where = d, name
    return worst, where


def _sync_params(ours: nn.Module, published: nn.Module) -> None:
    """Copy our learnable prompt-learner values into the published one (the parameter names are the same)."""
    pub = {n: p for n, p in published.named_parameters() if p.requires_grad}
    mine = {n: p for n, p in ours.named_parameters() if p.requires_grad}
    if set(pub) != set(mine):
        raise SystemExit(f"learnable parameters differ: ours only {sorted(set(mine) - set(pub))}, "
                         f"published only {sorted(set(pub) - set(mine))}")
    with torch.no_grad():
        for n, p in mine.items():
            pub[n].copy_(p.to(pub[n].dtype))


def run_method(method: Method, s: Setting, args: argparse.Namespace) -> list[tuple[str, str, str, str]]:
    """Build, check and time one method; print its block; return its table rows."""
    print()
    print(f"== {method.title} ==")
    print(f"{method.describe(s)} | SGD lr {method.lr} | model: {s.layers} layer{'s' * (s.layers != 1)} per tower, "
          f"{s.image_size} px | classes {s.classes} | eval {s.test_images} images in batches of {s.test_batch}")
    for note in s.notes:
        print(f"NOTE: {note}")

    pub_module = None
    if method.published_repo is not None:
        repo: Path = getattr(args, f"{method.published_repo}_repo")
        trainer_file = repo / "trainers" / method.published_file
        if not trainer_file.is_file():
            print(f"published code not found ({trainer_file} does not exist; set --{method.published_repo}-repo or "
                  f"${method.published_repo.upper()}_REPO): timing ours only")
        else:
            from vlprompt import plugins

            plugins.load()  # ours first, before the published folders go on sys.path
            dassl_dir = args.dassl if (args.dassl / "dassl").is_dir() else None
            try:
                pub_module, stubbed = import_published(trainer_file, dassl_dir)
            except ImportError as e:
                print(f"published code found at {trainer_file} but cannot be imported ({type(e).__name__}: {e}): "
                      "timing ours only")
            else:
                if stubbed:
                    print(f"stubbed (imported by Dassl, unused here, not installed): {', '.join(stubbed)}")
    else:
        print("no published code: ours only")

    classnames = class_names(s.classes)
    bb = backbone(s.layers, s.image_size)
    ours = method.build_ours(s, bb.model, classnames)
    published = None
    if pub_module is not None:
        published = build_published(pub_module, method.trainer, method.node, method.published_values(s),
                                    bb.checkpoint_file(), classnames, s.image_size, method.lr, s.device,
                                    method.published_after_build)
        _sync_params(ours.model.prompt_learner, published.model.prompt_learner)
        ours_tokens = ours.model.prompt_learner.prompts.tokenized_prompts.cpu()
        pub_tokens = published.model.prompt_learner.tokenized_prompts.cpu()
        if not torch.equal(ours_tokens, pub_tokens):
            raise SystemExit(f"{method.title}: tokenised class prompts differ between ours and the published code")
        eot = int(ours_tokens.argmax(dim=-1).max()) + 1
        print(f"text positions encoded per prompt: ours {eot} (up to the last EOT), published {ours_tokens.shape[1]}")

    gen = torch.Generator().manual_seed(SEED)
    batch = method.train_batch(s, gen, ours)
    test_images = [torch.randn(min(s.test_batch, s.test_images - i), 3, s.image_size, s.image_size,
                               generator=gen).to(s.device) for i in range(0, s.test_images, s.test_batch)]

    # Check run (also the first warm-up run): full-eval logits, then the parameters after one step on `batch`.
    ours_logits = ours_eval(ours, test_images)
    scale = ours.model.logit_scale.exp().item()
    if published is None:
        loss = ours_train_step(ours, batch)
        finite = bool(torch.isfinite(ours_logits).all()) and math.isfinite(loss)
        print(f"check (ours only): eval logits {tuple(ours_logits.shape)} (logit scale {scale:.1f}, max |logit| "
              f"{ours_logits.abs().max().item():.2f}), train loss {loss:.4f}; all finite: {finite}")
        if not finite:
            raise SystemExit(f"{method.title}: non-finite outputs; not timing")
    else:
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

    rows = []
    for what, ours_fn, pub_fn in (
        (method.train_label(s), lambda: ours_train_step(ours, batch),
         None if published is None else (lambda: published_train_step(published, batch))),
        (f"full eval ({s.test_images} images, {s.classes} classes)", lambda: ours_eval(ours, test_images),
         None if published is None else (lambda: published_eval(published, test_images))),
    ):
        if pub_fn is None:
            (t_ours,) = timed([ours_fn], s.device, s.warmup, s.repeats)
            rows.append((what, f"{t_ours:.3f}", "-", "-"))
        else:
            t_ours, t_pub = timed([ours_fn, pub_fn], s.device, s.warmup, s.repeats)
            rows.append((what, f"{t_ours:.3f}", f"{t_pub:.3f}", f"{t_pub / t_ours:.1f}x"))
    print()
    print_table(("what", "ours (s)", "published (s)", "speed-up"), rows)
    return rows


# ------------------------------------------------------------------------------------------------- CLI
def parse_args(argv: Optional[Sequence[str]] = None, method: Optional[str] = None,
               description: Optional[str] = None) -> argparse.Namespace:
    """The command line; with ``method`` (a wrapper such as bench_coop.py) there is no --method option."""
    p = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    if method is None:
        p.add_argument("--method", nargs="+", required=True, choices=[*METHODS, "all"], metavar="METHOD",
                       help=f"one or more of {', '.join(METHODS)}, or all (in turn)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    p.add_argument("--shape", choices=sorted(SHAPES), default=None,
                   help="small: 1 layer per tower (MaPLe: 2), 64 px images (default on CPU); full: ViT-B/16, "
                        "12 layers, 224 px (default on CUDA)")
    p.add_argument("--small", dest="shape", action="store_const", const="small", help="same as --shape small")
    p.add_argument("--full", dest="shape", action="store_const", const="full", help="same as --shape full")
    p.add_argument("--layers", type=int, help="transformer layers per tower (overrides the preset)")
    p.add_argument("--image-size", type=int, help="image side in pixels, a multiple of 16 (overrides the preset)")
    p.add_argument("--classes", type=int, help="number of classes (ImageNet names; default 1000, CoCoOp on CPU 100)")
    p.add_argument("--train-batch", type=int, help="images per train step (not MetaProto: 4 x 5-way x 16 images)")
    p.add_argument("--test-images", type=int, help="images in the full eval")
    p.add_argument("--test-batch", type=int, help="images per eval batch")
    p.add_argument("--warmup", type=int, help="untimed runs before timing, besides the check run")
    p.add_argument("--repeats", type=int, help="timed runs (the median is reported)")
    p.add_argument("--coop-repo", "--published", dest="coop_repo", type=Path, default=Path(DEFAULT_COOP),
                   help="clone of KaiyangZhou/CoOp (default $COOP_REPO or /work/ref/CoOp)")
    p.add_argument("--maple-repo", type=Path, default=Path(DEFAULT_MAPLE),
                   help="clone of muzairkhattak/multimodal-prompt-learning (default $MAPLE_REPO or /work/ref/maple)")
    p.add_argument("--dassl", type=Path, default=Path(DEFAULT_DASSL) if DEFAULT_DASSL else None,
                   help="clone of Dassl.pytorch (default $DASSL_REPO, else Dassl.pytorch next to --coop-repo; "
                        "not needed if dassl is installed)")
    args = p.parse_args(argv)
    if method is not None:
        args.method = [method]
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    args.shape = args.shape or ("small" if args.device.type == "cpu" else "full")
    if args.image_size is not None and args.image_size % 16:
        p.error("--image-size must be a multiple of the patch size 16")
    if args.dassl is None:
        args.dassl = args.coop_repo.parent / "Dassl.pytorch"
    args.methods = list(METHODS) if "all" in args.method else list(dict.fromkeys(args.method))
    return args


def setting(method: Method, args: argparse.Namespace) -> Setting:
    base = dict(vars(SHAPES[args.shape]), classes=1000, train_batch=8, test_images=200 if args.shape == "small"
                else 1000, test_batch=100)
    base.update(method.defaults.get(args.shape, {}))
    notes = []
    if args.shape == "small":
        for key, why in (("layers", "so that its deep prompts (layer >= 1) run"),
                         ("classes", "its published code is slow on CPU")):
            if key in method.defaults.get("small", {}) and getattr(args, key) is None:
                notes.append(f"{key} {base[key]} on CPU, {why}")
    for key in base:
        if getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    return Setting(**base, device=args.device, notes=notes)


def main(argv: Optional[Sequence[str]] = None, method: Optional[str] = None,
         description: Optional[str] = None) -> int:
    args = parse_args(argv, method, description)
    device: torch.device = args.device
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
          f"{torch.get_num_threads()} threads) | torch {torch.__version__} | open_clip {open_clip.__version__}")
    print("model: random open_clip CLIP, ViT-B/16 widths (vision 768, patch 16, text 512, embed 512), context 77, "
          "QuickGELU, PREC fp32")
    settings = {key: setting(METHODS[key], args) for key in args.methods}
    if any((s.layers, s.image_size) != (12, 224) for s in settings.values()):
        print(f"NOTE: {'CPU run with a' if device.type == 'cpu' else 'a'} SCALED-DOWN model (the real ViT-B/16 has "
              "12 layers per tower and 224 px images); times are not those of ViT-B/16.")
    print(f"warm-up: the check run + {args.warmup if args.warmup is not None else SHAPES[args.shape].warmup}, then "
          f"the median of {args.repeats if args.repeats is not None else SHAPES[args.shape].repeats} runs")

    summary = []
    for key in args.methods:
        s = settings[key]
        for what, *times in run_method(METHODS[key], s, args):
            summary.append((METHODS[key].title, f"{s.layers}L {s.image_size}px", what, *times))
    if len(args.methods) > 1:
        print()
        print("== summary ==")
        print_table(("method", "model", "what", "ours (s)", "published (s)", "speed-up"), summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
