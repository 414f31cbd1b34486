"""Optimizers and the per-epoch LR schedule of Dassl (cosine / steps, constant or linear warm-up)."""
from __future__ import annotations

import math
from typing import Iterable

import torch
from torch.optim.lr_scheduler import LambdaLR
from yacs.config import CfgNode

from vlprompt.errors import ConfigError

OPTIMIZERS = ("sgd", "adam", "adamw", "rmsprop")
SCHEDULERS = ("single_step", "multi_step", "cosine")


def build_optimizer(params: Iterable[torch.nn.Parameter], optim_cfg: CfgNode) -> torch.optim.Optimizer:
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError("build_optimizer: no parameter requires grad; nothing to learn.")
    c = optim_cfg
    name = c.NAME.lower()
    if name == "sgd":
        return torch.optim.SGD(params, lr=c.LR, momentum=c.MOMENTUM, weight_decay=c.WEIGHT_DECAY,
                               dampening=c.SGD_DAMPNING, nesterov=c.SGD_NESTEROV)
    if name == "adam":
        return torch.optim.Adam(params, lr=c.LR, weight_decay=c.WEIGHT_DECAY, betas=(c.ADAM_BETA1, c.ADAM_BETA2))
    if name == "adamw":
        return torch.optim.AdamW(params, lr=c.LR, weight_decay=c.WEIGHT_DECAY, betas=(c.ADAM_BETA1, c.ADAM_BETA2))
    if name == "rmsprop":
        return torch.optim.RMSprop(params, lr=c.LR, momentum=c.MOMENTUM, weight_decay=c.WEIGHT_DECAY,
                                   alpha=c.RMSPROP_ALPHA)
    raise ConfigError(f"OPTIM.NAME must be one of {OPTIMIZERS}, got '{c.NAME}'. Set e.g. OPTIM.NAME sgd.")


def lr_factor(epoch: int, optim_cfg: CfgNode) -> float:
    """LR of ``epoch`` (0-based) relative to OPTIM.LR, following Dassl's schedulers stepped once per epoch:
    warm-up epochs first, then the main schedule restarted at 0 (WARMUP_RECOUNT)."""
    c = optim_cfg
    if c.LR_SCHEDULER not in SCHEDULERS:
        raise ConfigError(f"OPTIM.LR_SCHEDULER must be one of {SCHEDULERS}, got '{c.LR_SCHEDULER}'. "
                          "Set e.g. OPTIM.LR_SCHEDULER cosine.")
    warm = c.WARMUP_EPOCH if c.WARMUP_EPOCH > 0 else 0
    if epoch < warm:
        if c.WARMUP_TYPE == "constant":
            return c.WARMUP_CONS_LR / c.LR
        if c.WARMUP_TYPE == "linear":
            return (c.WARMUP_MIN_LR / c.LR) if epoch == 0 else epoch / warm
        raise ConfigError(f"OPTIM.WARMUP_TYPE must be constant or linear, got '{c.WARMUP_TYPE}'. "
                          "Set OPTIM.WARMUP_TYPE constant (or linear), or OPTIM.WARMUP_EPOCH -1 for no warm-up.")
    t = epoch - warm if c.WARMUP_RECOUNT else epoch
    if c.LR_SCHEDULER == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * t / c.MAX_EPOCH))
    steps = list(c.STEPSIZE) if isinstance(c.STEPSIZE, (list, tuple)) else [c.STEPSIZE]
    if c.LR_SCHEDULER == "single_step":
        size = steps[-1] if steps[-1] > 0 else c.MAX_EPOCH
        return c.GAMMA ** (t // size)
    return c.GAMMA ** sum(t >= s for s in steps)


def build_lr_scheduler(optimizer: torch.optim.Optimizer, optim_cfg: CfgNode) -> LambdaLR:
    """A scheduler to be stepped once at the end of every epoch."""
    lr_factor(0, optim_cfg)  # validate the config now, not at the end of the first epoch
    return LambdaLR(optimizer, lambda epoch: lr_factor(epoch, optim_cfg))
