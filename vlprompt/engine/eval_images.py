"""Evaluation images decoded once per run (``DATALOADER.TEST.CACHE_MB``), for methods whose image tower is prompted.

The feature cache (``feature_cache.py``) spares a method with a frozen, prompt-free image tower from encoding
the test images again. A prompted tower (MaPLe, IVLP, VPT, PromptSRC) must encode them at every evaluation, but
what goes into it is the same every time: the test transform is deterministic. So an evaluation that will be
repeated (a training run's best-val evaluation of the val split: ``Trainer.test(final=False)``) keeps the split's
batches, and later evaluations of the split (the next epochs', a final evaluation on val) read them instead of
decoding the files again. A final evaluation keeps nothing: it is the split's last.

A batch is kept as uint8 pixels (a quarter of float32), and rebuilt as ``ToTensor`` and ``Normalize`` build it:
``u8 / 255`` then ``(x - mean) / std``, elementwise, so per image or per batch the result is the same, bit for bit.
Every kept batch is checked when it is kept (rebuilt == the loader's batch, ``torch.equal``); a transform that does
not end in ``ToTensor`` [+ ``Normalize``], or a batch that does not rebuild exactly, leaves that split uncached.
A split is kept whole or not at all, within ``DATALOADER.TEST.CACHE_MB`` for all splits together (0: off).
"""
from __future__ import annotations

import logging
import weakref
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
        self.used = 0
        #: per loader: its batches as ``(uint8 pixels, labels)`` (None: no image of the batch could be read), and
        #: the ``(mean, std)`` that rebuild them
        self.kept: "weakref.WeakKeyDictionary[Any, tuple[list, tuple[Tensor, Tensor]]]" = weakref.WeakKeyDictionary()
        self.refused: "weakref.WeakSet[Any]" = weakref.WeakSet()

    def batches(self, loader: Iterable[dict], split: str, keep: bool) -> Iterator[Optional[dict[str, Tensor]]]:
        """The batches of ``loader`` (``{"img", "label"}``; None for a batch whose images were all skipped): from
        memory when kept, else from the loader; ``keep``: this split will be evaluated again, keep its batches if
        they fit."""
        if loader in self.kept:
            kept, scaling = self.kept[loader]
            for item in kept:
                yield None if item is None else {"img": rebuild(item[0], *scaling), "label": item[1]}
            return
        scaling = None
        if keep and self.budget > 0 and loader not in self.refused:
            scaling = _pixel_scaling(getattr(getattr(loader, "dataset", None), "transform", None))
        if scaling is None:
            yield from loader
            return
        kept: Optional[list] = []
        for batch in loader:
            yield batch
            if kept is None:
                continue
            if batch is None:
                kept.append(None)
                continue
            images, (mean, std) = batch["img"], scaling
            if not kept:  # the first batch tells the split's size as uint8
                whole = len(loader.dataset) * images[0].numel()
                if self.used + whole > self.budget:
                    logger.info(f"Evaluation images of the {split} split are decoded at every evaluation: kept, they "
                                f"would take {whole / MB:,.0f} MiB, over DATALOADER.TEST.CACHE_MB {self.budget // MB}")
                    kept = None
                    continue
            pixels = images.mul(std).add_(mean).mul_(255).round_().clamp_(0, 255).to(torch.uint8)
            if not torch.equal(rebuild(pixels, mean, std), images):
                logger.info(f"Evaluation images of the {split} split are decoded at every evaluation: its test "
                            "transform's output is not uint8 pixels scaled by ToTensor and Normalize")
                kept = None
                continue
            kept.append((pixels, batch["label"]))
        if kept is None:
            self.refused.add(loader)
            return
        # a whole pass (an interrupted one never gets here)
        self.kept[loader] = (kept, scaling)
        size = sum(b[0].nbytes for b in kept if b is not None)
        self.used += size
        logger.info(f"Evaluation images of the {split} split are kept in memory for later evaluations "
                    f"({size / MB:,.1f} MiB, uint8)")
