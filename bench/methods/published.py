"""Loading and running the published trainers (imported at run time from their clones, never copied).

The two published repositories both ship a package named ``clip``: each published trainer is imported with its
own repository's ``clip`` in ``sys.modules``, which is taken out again afterwards (the trainer module keeps its
references), so the two never meet. Modules Dassl imports but the benchmark never uses (tensorboard, tabulate,
gdown, sklearn, ...) are replaced by empty stubs when they are not installed.
"""
from __future__ import annotations

import contextlib
import importlib.abc
import importlib.machinery
import importlib.util
import io
import sys
import types
import warnings
from pathlib import Path
from typing import Any, Callable, Optional, Sequence

import torch
from torch import Tensor

# Imported at module level by Dassl but never used by this benchmark; stubbed only if missing.
STUBBABLE = ("tabulate", "gdown", "sklearn", "scipy", "wilds", "pandas", "tensorboard")


class _StubFinder(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Last-resort finder: empty modules for the STUBBABLE packages that are not installed."""

    def __init__(self) -> None:
        self.stubbed: list[str] = []

    def find_spec(self, name: str, path: Any = None, target: Any = None) -> Optional[importlib.machinery.ModuleSpec]:
        top = name.split(".")[0]
        if top not in STUBBABLE:
            return None
        if "." in name and not isinstance(sys.modules.get(top), _StubModule):
            # an installed package's own optional submodule (tabulate.version, scipy's): missing stays missing
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


def find_published(repo_option: str, repo: Path, trainer_name: str, dassl: Path) -> Optional[types.ModuleType]:
    """The published module ``<repo>/trainers/<trainer_name>``, or None (and why, printed) when it is missing or
    cannot be imported; ``repo_option`` names the command-line option (``coop`` -> ``--coop-repo``)."""
    trainer_file = repo / "trainers" / trainer_name
    if not trainer_file.is_file():
        print(f"published code not found ({trainer_file} does not exist; set --{repo_option}-repo or "
              f"${repo_option.upper()}_REPO): timing ours only")
        return None
    from vlprompt import plugins

    plugins.load()  # ours first, before the published folders go on sys.path
    try:
        module, stubbed = import_published(trainer_file, dassl if (dassl / "dassl").is_dir() else None)
    except ImportError as e:
        print(f"published code found at {trainer_file} but cannot be imported ({type(e).__name__}: {e}): "
              "timing ours only")
        return None
    if stubbed:
        print(f"stubbed (imported by Dassl, unused here, not installed): {', '.join(stubbed)}")
    return module


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
    """Dassl's ``model_inference`` per batch (CoOp and MaPLe re-encode every class prompt each batch; CoCoOp
    encodes the n_cls prompts of each image one image at a time)."""
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
