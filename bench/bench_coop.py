"""CoOp speed: this repository's trainer vs the published CoOp code (KaiyangZhou/CoOp on Dassl).

Both sides get the same frozen CLIP (a randomly initialised open_clip ``CLIP`` of ViT-B/16 shape,
or a scaled-down one on CPU; weights rounded to float16 values as in OpenAI's released files, so
the published ``clip.build_model`` sees exactly the same numbers), the same 1000 ImageNet class
names, the same learnable context (N_CTX 16, generic, class token at the end) and the same inputs.

Measured (median wall time of ``--repeats`` runs after the check run and ``--warmup`` more, ``PREC fp32``):

* train step: each trainer's own ``forward_backward`` on one batch of ``--train-batch`` images:
  forward, cross-entropy, backward, SGD step on the prompt learner. The published model encodes
  all 77 token positions of every class prompt; ours stops after the last EOT position and runs the
  (frozen) image tower without autograd.
* full eval: logits of ``--test-images`` images in batches of ``--test-batch`` under
  ``torch.no_grad``. Ours: ``prepare_eval`` (text features once) + ``model_inference`` per batch.
  Published: Dassl's ``model_inference`` per batch, which re-encodes every class prompt each batch.

Before timing, the logits of both sides on the same images are compared, and so are the context
vectors after one SGD step on the same batch, so that both sides provably compute the same thing.

The published code is imported at run time from ``--published`` (default ``$COOP_REPO`` or
/work/ref/CoOp) with Dassl from ``--dassl``; nothing of it is copied here. Modules Dassl imports but
this benchmark never uses (tensorboard, tabulate, gdown, sklearn, ...) are replaced by empty stubs
when they are not installed.

    python bench/bench_coop.py                  # CPU, scaled-down model (about 3 minutes on 2 cores)
    python bench/bench_coop.py --device cuda    # full ViT-B/16 shape
"""
from __future__ import annotations

import argparse
import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import os
import statistics
import sys
import time
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor, nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import open_clip  # noqa: E402
from open_clip.zero_shot_metadata import IMAGENET_CLASSNAMES  # noqa: E402

DEFAULT_PUBLISHED = os.environ.get("COOP_REPO", "/work/ref/CoOp")
DEFAULT_DASSL = os.environ.get("DASSL_REPO", "")
# Imported at module level by Dassl but never used by this benchmark; stubbed only if missing.
STUBBABLE = ("tabulate", "gdown", "sklearn", "scipy", "wilds", "pandas", "tensorboard")
N_CTX = 16
SEED = 0


@dataclass
class Preset:
    layers: int
    image_size: int
    train_batch: int
    test_batch: int
    test_images: int
    warmup: int
    repeats: int


PRESETS = {
    # On 2 CPU cores one published train step (1000 prompts x 77 tokens through a 512-wide text block,
    # forward and backward) takes about 30 s per layer, so the CPU preset keeps one layer per tower.
    # The check run before timing is a first warm-up run of each measurement; `warmup` adds more.
    "small": Preset(layers=1, image_size=64, train_batch=8, test_batch=100, test_images=200, warmup=0, repeats=2),
    "full": Preset(layers=12, image_size=224, train_batch=32, test_batch=100, test_images=1000, warmup=1, repeats=5),
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


# ------------------------------------------------------------------------------------------------ ours
def build_ours(clip_model: nn.Module, classnames: list[str], image_size: int, device: torch.device) -> Any:
    """This repository's CoOp trainer, with the data loader and CLIP loading replaced by the inputs."""
    from vlprompt import plugins
    from vlprompt.config.setup import get_cfg

    plugins.load()
    coop = sys.modules["vlprompt_plugins.trainers.coop"]

    class BenchCoOp(coop.CoOp):  # type: ignore[name-defined,misc]
        def build_data_loader(self) -> None:
            self.classnames = list(classnames)
            self.num_classes = len(classnames)
            self.lab2cname = dict(enumerate(classnames))

        def load_clip(self) -> nn.Module:
            return clip_model

    cfg = get_cfg([
        "TRAINER.NAME", "CoOp", "MODEL.BACKBONE.NAME", "ViT-B/16", "INPUT.SIZE", (image_size, image_size),
        "TRAINER.COOP.N_CTX", N_CTX, "TRAINER.COOP.CSC", False, "TRAINER.COOP.CTX_INIT", "",
        "TRAINER.COOP.CLASS_TOKEN_POSITION", "end", "TRAINER.COOP.PREC", "fp32",
        "OPTIM.NAME", "sgd", "OPTIM.LR", 0.002, "OPTIM.MAX_EPOCH", 1, "OPTIM.LR_SCHEDULER", "cosine",
        "USE_CUDA", device.type == "cuda",
    ])
    cfg.freeze()
    return BenchCoOp(cfg)


def ours_train_step(trainer: Any, images: Tensor, labels: Tensor) -> None:
    trainer.set_train_mode(True)
    trainer.forward_backward({"img": images, "label": labels})


@torch.no_grad()
def ours_eval(trainer: Any, batches: Sequence[Tensor]) -> Tensor:
    trainer.set_train_mode(False)
    trainer.prepare_eval()
    return torch.cat([trainer.model_inference(x) for x in batches])


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


@dataclass
class Published:
    module: types.ModuleType
    stubbed: list[str]


def import_published(coop_dir: Path, dassl_dir: Optional[Path]) -> Published:
    """Import the published ``trainers/coop.py`` (and its ``clip`` and ``dassl``) under a private name."""
    finder = _StubFinder()
    stubbed: list[str] = []
    try:
        import torch.utils.tensorboard  # noqa: F401
    except ImportError:
        sys.modules["torch.utils.tensorboard"] = _StubModule("torch.utils.tensorboard")
        stubbed = ["torch.utils.tensorboard"]
    for p in (dassl_dir, coop_dir):
        if p is not None and str(p) not in sys.path:
            sys.path.insert(0, str(p))
    sys.meta_path.append(finder)
    try:
        spec = importlib.util.spec_from_file_location("coop_published_trainers_coop", coop_dir / "trainers" / "coop.py")
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        with contextlib.redirect_stdout(io.StringIO()):
            spec.loader.exec_module(module)
            import dassl.evaluation  # noqa: F401  (imported by the trainer's constructor)
    finally:
        sys.meta_path.remove(finder)
        # Dassl keeps what it bound; later importers (torch's own optional imports) must not see stubs.
        for name in [n for n, m in sys.modules.items() if isinstance(m, _StubModule)]:
            del sys.modules[name]
    return Published(module, stubbed + sorted(set(n.split(".")[0] for n in finder.stubbed)))


def build_published(pub: Published, state_dict: dict[str, Tensor], classnames: list[str], image_size: int,
                    device: torch.device) -> Any:
    """The published CoOp trainer; ``load_clip_to_cpu`` builds from ``state_dict`` instead of downloading."""
    from dassl.config import get_cfg_default
    from yacs.config import CfgNode as CN

    mod = pub.module
    cfg = get_cfg_default()
    cfg.TRAINER.COOP = CN()
    cfg.TRAINER.COOP.N_CTX = N_CTX
    cfg.TRAINER.COOP.CSC = False
    cfg.TRAINER.COOP.CTX_INIT = ""
    cfg.TRAINER.COOP.PREC = "fp32"
    cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"
    cfg.MODEL.BACKBONE.NAME = "ViT-B/16"
    cfg.INPUT.SIZE = (image_size, image_size)
    cfg.OPTIM.NAME = "sgd"
    cfg.OPTIM.LR = 0.002
    cfg.OPTIM.MAX_EPOCH = 1
    cfg.OPTIM.LR_SCHEDULER = "cosine"
    cfg.USE_CUDA = device.type == "cuda"
    cfg.freeze()

    mod.load_clip_to_cpu = lambda _cfg: mod.clip.build_model(dict(state_dict))

    class BenchPublishedCoOp(mod.CoOp):  # type: ignore[name-defined,misc]
        def build_data_loader(self) -> None:
            self.dm = types.SimpleNamespace(dataset=types.SimpleNamespace(classnames=list(classnames)))
            self.train_loader_x = self.train_loader_u = self.val_loader = self.test_loader = None
            self.num_classes = len(classnames)
            self.num_source_domains = 1
            self.lab2cname = dict(enumerate(classnames))

    with contextlib.redirect_stdout(io.StringIO()):  # the published code prints its progress
        trainer = BenchPublishedCoOp(cfg)
    trainer.batch_idx, trainer.num_batches = 0, 1 << 30  # no LR step inside the timed steps
    return trainer


def published_train_step(trainer: Any, images: Tensor, labels: Tensor) -> None:
    trainer.set_model_mode("train")
    trainer.forward_backward({"img": images, "label": labels})


@torch.no_grad()
def published_eval(trainer: Any, batches: Sequence[Tensor]) -> Tensor:
    trainer.set_model_mode("eval")
    return torch.cat([trainer.model_inference(x) for x in batches])


# ---------------------------------------------------------------------------------------------- timing
def timed(fn: Callable[[], Any], device: torch.device, warmup: int, repeats: int) -> float:
    """Median seconds of ``repeats`` calls after ``warmup`` calls."""
    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    p.add_argument("--shape", choices=sorted(PRESETS), default=None,
                   help="small: 1 layer per tower, 64 px images (default on CPU); full: ViT-B/16, 12 layers, "
                        "224 px (default on CUDA)")
    p.add_argument("--small", dest="shape", action="store_const", const="small", help="same as --shape small")
    p.add_argument("--full", dest="shape", action="store_const", const="full", help="same as --shape full")
    p.add_argument("--layers", type=int, help="transformer layers per tower (overrides the preset)")
    p.add_argument("--image-size", type=int, help="image side in pixels, a multiple of 16 (overrides the preset)")
    p.add_argument("--classes", type=int, default=1000, help="number of classes (ImageNet names; default 1000)")
    p.add_argument("--train-batch", type=int, help="images per train step")
    p.add_argument("--test-images", type=int, help="images in the full eval")
    p.add_argument("--test-batch", type=int, help="images per eval batch")
    p.add_argument("--warmup", type=int, help="untimed runs before timing, besides the check run")
    p.add_argument("--repeats", type=int, help="timed runs (the median is reported)")
    p.add_argument("--published", type=Path, default=Path(DEFAULT_PUBLISHED),
                   help="clone of KaiyangZhou/CoOp (default $COOP_REPO or /work/ref/CoOp)")
    p.add_argument("--dassl", type=Path, default=Path(DEFAULT_DASSL) if DEFAULT_DASSL else None,
                   help="clone of Dassl.pytorch (default $DASSL_REPO, else Dassl.pytorch next to --published; "
                        "not needed if dassl is installed)")
    args = p.parse_args(argv)
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    preset = PRESETS[args.shape or ("small" if args.device.type == "cpu" else "full")]
    args.shape = args.shape or ("small" if args.device.type == "cpu" else "full")
    for key, value in vars(preset).items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.image_size % 16:
        p.error("--image-size must be a multiple of the patch size 16")
    if args.dassl is None:
        args.dassl = args.published.parent / "Dassl.pytorch"
    return args


def main(argv: Optional[Sequence[str]] = None) -> int:
    args = parse_args(argv)
    device: torch.device = args.device
    full_shape = args.layers == 12 and args.image_size == 224
    shape = (f"ViT-B/16 widths (vision 768, text 512), {args.layers} layer{'s' * (args.layers != 1)} per tower, "
             f"{args.image_size} px images, context 77, N_CTX {N_CTX}, PREC fp32")
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
          f"{torch.get_num_threads()} threads) | torch {torch.__version__} | open_clip {open_clip.__version__}")
    print(f"model: {shape}")
    print(f"classes {args.classes} | train batch {args.train_batch} | eval {args.test_images} images in batches of "
          f"{args.test_batch} | warm-up: the check run + {args.warmup}, then median of {args.repeats} runs")
    if not full_shape:
        print(f"NOTE: {'CPU run with a' if device.type == 'cpu' else 'a'} SCALED-DOWN model (the real ViT-B/16 has "
              "12 layers per tower and 224 px images); times are not those of ViT-B/16.")

    coop_file = args.published / "trainers" / "coop.py"
    if not coop_file.is_file():
        print(f"published code not found, skipping ({coop_file} does not exist; set --published or COOP_REPO)")
        return 0
    from vlprompt import plugins

    plugins.load()  # ours first, before the published folders go on sys.path
    dassl_dir = args.dassl if (args.dassl / "dassl").is_dir() else None
    try:
        pub = import_published(args.published, dassl_dir)
    except ImportError as e:
        print(f"published code found at {args.published} but cannot be imported, skipping ({type(e).__name__}: {e})")
        return 0
    if pub.stubbed:
        print(f"stubbed (imported by Dassl, unused here, not installed): {', '.join(pub.stubbed)}")

    classnames = class_names(args.classes)
    clip_model = build_clip(args.layers, args.image_size, SEED)
    state_dict = {k: v.clone() for k, v in clip_model.state_dict().items()}
    ours = build_ours(clip_model, classnames, args.image_size, device)
    published = build_published(pub, state_dict, classnames, args.image_size, device)
    with torch.no_grad():  # the same initial context on both sides
        published.model.prompt_learner.ctx.copy_(ours.model.prompt_learner.ctx)

    ours_tokens = ours.model.prompt_learner.prompts.tokenized_prompts.cpu()
    pub_tokens = published.model.prompt_learner.tokenized_prompts.cpu()
    if not torch.equal(ours_tokens, pub_tokens):
        raise SystemExit("tokenised class prompts differ between ours and the published code")
    eot = int(ours_tokens.argmax(dim=-1).max()) + 1
    print(f"text positions encoded per prompt: ours {eot} (up to the last EOT), published {ours_tokens.shape[1]}")

    gen = torch.Generator().manual_seed(SEED)
    train_images = torch.randn(args.train_batch, 3, args.image_size, args.image_size, generator=gen).to(device)
    train_labels = torch.randint(0, args.classes, (args.train_batch,), generator=gen).to(device)
    test_images = [torch.randn(min(args.test_batch, args.test_images - i), 3, args.image_size, args.image_size,
                               generator=gen).to(device) for i in range(0, args.test_images, args.test_batch)]

    # Same outputs first: full-eval logits, then the context after one SGD step on the same batch.
    ours_logits = ours_eval(ours, test_images)
    pub_logits = published_eval(published, test_images)
    logit_diff = (ours_logits - pub_logits).abs().max().item()
    ours_train_step(ours, train_images, train_labels)
    published_train_step(published, train_images, train_labels)
    ctx_diff = (ours.model.prompt_learner.ctx - published.model.prompt_learner.ctx).abs().max().item()
    print(f"check: eval logits {tuple(ours_logits.shape)} max |ours - published| = {logit_diff:.2e} "
          f"(logit scale {ours.model.logit_scale.exp().item():.1f}, max |logit| {ours_logits.abs().max().item():.2f}); "
          f"context after 1 SGD step: max |diff| = {ctx_diff:.2e}")
    if logit_diff > 1e-3 or ctx_diff > 1e-5:
        raise SystemExit("ours and the published code disagree; not timing")

    rows = []
    for what, ours_fn, pub_fn in (
        (f"train step (batch {args.train_batch})",
         lambda: ours_train_step(ours, train_images, train_labels),
         lambda: published_train_step(published, train_images, train_labels)),
        (f"full eval ({args.test_images} images, {args.classes} classes)",
         lambda: ours_eval(ours, test_images),
         lambda: published_eval(published, test_images)),
    ):
        t_ours = timed(ours_fn, device, args.warmup, args.repeats)
        t_pub = timed(pub_fn, device, args.warmup, args.repeats)
        rows.append((what, f"{t_ours:.3f}", f"{t_pub:.3f}", f"{t_pub / t_ours:.1f}x"))

    header = ("what", "ours (s)", "published (s)", "speed-up")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(row: Sequence[str]) -> str:
        return " | ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(row, widths)))

    print()
    print(line(header))
    print("-+-".join("-" * w for w in widths))
    for r in rows:
        print(line(r))
    return 0


if __name__ == "__main__":
    sys.exit(main())
