"""Evaluation images decoded once per run (``DATALOADER.TEST.CACHE_MB``), for methods whose image tower is prompted.

The feature cache (``feature_cache.py``) spares a method with a frozen, prompt-free image tower from encoding
the test images again. A prompted tower (MaPLe, IVLP, VPT, PromptSRC) must encode them at every evaluation, but
what goes into it is the same every time: the test transform is deterministic. So the first evaluation of a
split in a training run (e.g. the first best-val evaluation) keeps its batches, and later evaluations (the next
epochs' val, the final test of the best model) read them instead of decoding the files again.

A batch is kept as uint8 pixels (a quarter of float32), and rebuilt as ``ToTensor`` and ``Normalize`` build it:
``u8 / 255`` then ``(x - mean) / std``, elementwise, so per image or per batch the result is the same, bit for bit.
Every kept batch is checked when it is kept (rebuilt == the loader's batch, ``torch.equal``); a transform that does
not end in ``ToTensor`` [+ ``Normalize``], or a batch that does not rebuild exactly, leaves that split uncached.
A split is kept whole or not at all, within ``DATALOADER.TEST.CACHE_MB`` for all splits together (0: off).
"""
from __future__ import annotations

import logging
from typing import Any, Iterable, Iterator, Optional

import torch
from torch import Tensor
from torchvision import transforms as T

logger = logging.getLogger(__name__)
MB = 1 << 20


def _pixel_scaling(transform: Any) -> Optional[tuple[Tensor, Tensor]]:
    """``(mean, std)`` ``[C, 1, 1]`` with which ``transform`` turns uint8 pixels into its output (0 and 1 without a
    Normalize); None when it does not end in ``ToTensor`` [+ ``Normalize``]."""
    steps = getattr(transform, "transforms", None)
    if not steps:
        return None
    if isinstance(steps[-1], T.Normalize) and len(steps) >= 2 and isinstance(steps[-2], T.ToTensor):
        norm = steps[-1]
        return (torch.as_tensor(norm.mean, dtype=torch.float32).view(-1, 1, 1),
                torch.as_tensor(norm.std, dtype=torch.float32).view(-1, 1, 1))
    if isinstance(steps[-1], T.ToTensor):
        return torch.zeros(1, 1, 1), torch.ones(1, 1, 1)
    return None


def rebuild(pixels: Tensor, mean: Tensor, std: Tensor) -> Tensor:
    """The float images ``[B, C, H, W]`` of uint8 ``pixels``, as ``ToTensor`` then ``Normalize`` compute them."""
    return pixels.float().div(255).sub_(mean).div_(std)


class EvalImages:
    """The kept evaluation batches of a run's loaders (one instance per trainer).

    Args:
        budget_mb: the most memory all kept splits may take, in MiB (0: keep nothing).
    """

    def __init__(self, budget_mb: int) -> None:
        self.budget = budget_mb * MB
        self.kept: dict[int, tuple[Any, list[Optional[tuple[Tensor, Tensor]]], tuple[Tensor, Tensor]]] = {}
        self.refused: set[int] = set()

    def batches(self, loader: Iterable[dict], split: str) -> Iterator[Optional[dict[str, Tensor]]]:
        """The batches of ``loader`` (``{"img", "label"}``; None for a batch whose images were all skipped): read
        from memory when kept, else from the loader, keeping them if they fit."""
        key = id(loader)
        if key in self.kept:
            for item in self.kept[key][1]:
                yield None if item is None else {"img": rebuild(item[0], *self.kept[key][2]), "label": item[1]}
            return
        scaling = None if key in self.refused or self.budget <= 0 else \
            _pixel_scaling(getattr(getattr(loader, "dataset", None), "transform", None))
        if scaling is None:
            yield from loader
            return
        kept: Optional[list] = []
        used = sum(sum(b[0].nbytes for b in v[1] if b is not None) for v in self.kept.values())
        for batch in loader:
            yield batch
            if kept is None or batch is None:
                if kept is not None:
                    kept.append(None)
                continue
            images = batch["img"]
            whole = len(loader.dataset) * images[0].numel()  # the split's size as uint8
            if used + whole > self.budget:
                logger.info(f"Evaluation images of the {split} split are decoded at every evaluation: kept, they "
                            f"would take {whole / MB:,.0f} MiB, over DATALOADER.TEST.CACHE_MB {self.budget // MB}")
                kept = None
                continue
            mean, std = scaling
            pixels = images.mul(std).add_(mean).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
            if not torch.equal(rebuild(pixels, mean, std), images):
                logger.info(f"Evaluation images of the {split} split are decoded at every evaluation: its test "
                            "transform's output is not uint8 pixels scaled by ToTensor and Normalize")
                kept = None
                continue
            kept.append((pixels, batch["label"]))
        if kept is None:
            self.refused.add(key)
        else:  # a whole pass (an interrupted one never gets here)
            self.kept[key] = (loader, kept, scaling)  # the loader is held so that its id stays its own
            logger.info(f"Evaluation images of the {split} split are kept in memory for later evaluations "
                        f"({sum(b[0].nbytes for b in kept if b is not None) / MB:,.1f} MiB, uint8)")
