"""Losses shared by methods."""
from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor

from vlprompt.clip.prompts import cosine_logits

__all__ = ["classification_loss", "cosine_logits", "kl_divergence"]


def classification_loss(logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """``{"loss": cross-entropy, "acc": accuracy in %}`` of ``logits`` ``[B, C]``."""
    return {"loss": F.cross_entropy(logits, labels), "acc": (logits.argmax(dim=1) == labels).float().mean() * 100.0}


def kl_divergence(logits_p: Tensor, logits_q: Tensor, detach_p: bool = False) -> Tensor:
    """Mean over rows of KL(P || Q) = sum_i P_i (log P_i - log Q_i), P and Q the softmax of the logits
    (``detach_p``: P is a fixed target)."""
    log_p = F.log_softmax(logits_p, dim=-1)
    if detach_p:
        log_p = log_p.detach()
    log_q = F.log_softmax(logits_q, dim=-1)
    return (log_p.exp() * (log_p - log_q)).sum(-1).mean()
