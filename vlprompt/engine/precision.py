"""Precision modes in one place.

* ``fp32``: float32 everywhere.
* ``fp16`` / ``bf16``: the frozen CLIP's Linear/Conv/attention weights in half precision (LayerNorm in
  float32), as the published ``PREC fp16``. Unlike the published code, learnable parameters stay
  float32 (master weights) and are cast when used, so small SGD updates are not rounded away.
* ``amp``: float32 weights, autocast (float16 with a GradScaler on CUDA, bfloat16 on CPU).
"""
from __future__ import annotations

import contextlib
import logging
from typing import Callable, Optional

import torch

from vlprompt.errors import ConfigError

logger = logging.getLogger(__name__)
MODES = ("fp16", "fp32", "amp", "bf16")


def resolve_precision(requested: str, device: torch.device) -> str:
    if requested not in MODES:
        raise ConfigError(f"PREC must be one of {MODES}, got '{requested}'. Set the method's PREC key "
                          "(e.g. TRAINER.COOP.PREC fp32) to one of them.")
    if requested == "fp16" and device.type == "cpu":
        logger.warning("PREC fp16 on CPU is very slow and partly unsupported; using fp32 instead.")
        return "fp32"
    return requested


class Precision:
    """Autocast context and (scaled) backward + step for one precision mode."""

    def __init__(self, mode: str, device: torch.device) -> None:
        self.mode = mode
        self.device = device
        self.scaler = torch.amp.GradScaler("cuda") if (mode == "amp" and device.type == "cuda") else None

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.mode != "amp":
            return contextlib.nullcontext()
        dtype = torch.float16 if self.device.type == "cuda" else torch.bfloat16
        return torch.autocast(device_type=self.device.type, dtype=dtype)

    def backward_and_step(self, loss: Optional[torch.Tensor], optimizer: torch.optim.Optimizer,
                          before_step: Optional[Callable[[], None]] = None) -> None:
        """(Scaled) backward of ``loss`` (None: nothing to back-propagate, e.g. no images in this process's
        slice), ``before_step()`` (e.g. summing gradients across processes), then the optimizer step."""
        optimizer.zero_grad(set_to_none=True)
        if loss is not None:
            (self.scaler.scale(loss) if self.scaler is not None else loss).backward()
        if before_step is not None:
            before_step()
        if self.scaler is not None:
            self.scaler.step(optimizer)
            self.scaler.update()
        else:
            optimizer.step()
