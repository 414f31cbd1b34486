"""Classification metrics (accuracy, error, macro-F1, per-class accuracy) as a dict; prints nothing."""
from __future__ import annotations

from typing import Callable

import torch


class Classification:
    """Accumulates predictions; ``evaluate()`` returns a dict, the first key being accuracy (in %)."""

    def __init__(self, num_classes: int) -> None:
        self.num_classes = num_classes
        self.reset()

    def reset(self) -> None:
        self._pred: list[torch.Tensor] = []
        self._true: list[torch.Tensor] = []

    def process(self, logits: torch.Tensor, labels: torch.Tensor) -> None:
        self._pred.append(logits.argmax(dim=1).cpu())
        self._true.append(labels.cpu())

    def gather(self, gather_rows: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Replace this process's predictions by every process's (``gather_rows`` concatenates a tensor over
        processes), so that ``evaluate`` covers the whole split."""
        for name in ("_pred", "_true"):
            local = torch.cat(getattr(self, name)) if getattr(self, name) else torch.zeros(0, dtype=torch.long)
            setattr(self, name, [gather_rows(local)])

    def evaluate(self) -> dict[str, float | int | dict]:
        pred = torch.cat(self._pred) if self._pred else torch.zeros(0, dtype=torch.long)
        true = torch.cat(self._true) if self._true else torch.zeros(0, dtype=torch.long)
        total = int(true.numel())
        correct = int((pred == true).sum())
        acc = 100.0 * correct / max(total, 1)
        n = max(self.num_classes, int(pred.max()) + 1 if total else 0, int(true.max()) + 1 if total else 0)
        cmat = torch.zeros(n, n, dtype=torch.long)
        cmat.index_put_((true, pred), torch.ones_like(true), accumulate=True)
        tp = cmat.diag().double()
        support = cmat.sum(1).double()
        predicted = cmat.sum(0).double()
        present = support > 0  # macro over the classes present in the ground truth, as Dassl (sklearn labels=)
        denom = support + predicted
        f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
        macro_f1 = 100.0 * float(f1[present].mean()) if present.any() else 0.0
        per_class = {int(c): 100.0 * float(tp[c] / support[c]) for c in torch.nonzero(present).flatten()}
        return {
            "accuracy": acc,
            "error_rate": 100.0 - acc,
            "macro_f1": macro_f1,
            "total": total,
            "correct": correct,
            "perclass_accuracy": per_class,
        }
