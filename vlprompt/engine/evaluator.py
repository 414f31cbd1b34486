"""Classification metrics (accuracy, error, macro-F1, per-class accuracy, confusion matrix); prints nothing.

``evaluate()`` returns a dict; :func:`result_lines` turns it into Dassl's log lines (``=> result``,
``* accuracy: x%``, ..., and with TEST.PER_CLASS_RESULT ``* class: ...`` lines and ``* average: x%``), which the
published ``parse_test_res.py`` reads; :func:`save_confusion_matrix` writes TEST.COMPUTE_CMAT's files.
"""
from __future__ import annotations

import csv
import io
import os
from typing import Callable, Mapping

import torch

from vlprompt.utils.files import atomic_write, torch_bytes


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
        processes), so that ``evaluate`` (and the per-class lines and confusion matrix) cover the whole split."""
        for name in ("_pred", "_true"):
            local = torch.cat(getattr(self, name)) if getattr(self, name) else torch.zeros(0, dtype=torch.long)
            setattr(self, name, [gather_rows(local)])

    def counts(self) -> torch.Tensor:
        """Confusion counts ``[n, n]`` (int64): row = true label, column = predicted label; ``n`` is the number
        of classes (or more, if a label or prediction lies beyond it)."""
        pred = torch.cat(self._pred) if self._pred else torch.zeros(0, dtype=torch.long)
        true = torch.cat(self._true) if self._true else torch.zeros(0, dtype=torch.long)
        n = max(self.num_classes, int(pred.max()) + 1 if pred.numel() else 0,
                int(true.max()) + 1 if true.numel() else 0)
        cmat = torch.zeros(n, n, dtype=torch.long)
        cmat.index_put_((true, pred), torch.ones_like(true), accumulate=True)
        return cmat

    def confusion_matrix(self) -> torch.Tensor:
        """The confusion matrix normalised over each true class (Dassl's ``confusion_matrix(normalize="true")``):
        ``[n, n]`` float64, row ``i`` = the share of class ``i``'s images predicted as each class (a row of
        zeros for a class without images)."""
        cmat = self.counts().double()
        return cmat / cmat.sum(1, keepdim=True).clamp(min=1)

    def evaluate(self) -> dict[str, float | int | dict]:
        """``accuracy``, ``error_rate``, ``macro_f1`` (in %), ``total``, ``correct``; per class present in the
        ground truth: ``perclass_accuracy`` {label: %}, ``perclass_total`` {label: images},
        ``perclass_correct`` {label: images}; ``perclass_average``: the mean of the per-class accuracies
        (Dassl's ``* average``)."""
        cmat = self.counts()
        total = int(cmat.sum())
        correct = int(cmat.diag().sum())
        acc = 100.0 * correct / max(total, 1)
        tp = cmat.diag().double()
        support = cmat.sum(1).double()
        predicted = cmat.sum(0).double()
        present = support > 0  # macro over the classes present in the ground truth, as Dassl (sklearn labels=)
        denom = support + predicted
        f1 = torch.where(denom > 0, 2 * tp / denom.clamp(min=1), torch.zeros_like(tp))
        macro_f1 = 100.0 * float(f1[present].mean()) if present.any() else 0.0
        labels = torch.nonzero(present).flatten().tolist()
        per_class = {c: 100.0 * float(tp[c] / support[c]) for c in labels}
        return {
            "accuracy": acc,
            "error_rate": 100.0 - acc,
            "macro_f1": macro_f1,
            "total": total,
            "correct": correct,
            "perclass_accuracy": per_class,
            "perclass_total": {c: int(support[c]) for c in labels},
            "perclass_correct": {c: int(tp[c]) for c in labels},
            "perclass_average": sum(per_class.values()) / len(per_class) if per_class else 0.0,
        }


def result_lines(r: Mapping, lab2cname: Mapping[int, str], per_class: bool = False) -> list[str]:
    """Dassl's result lines of ``evaluate()``'s dict; ``per_class`` (TEST.PER_CLASS_RESULT) adds one line per
    class and ``* average: x%`` (the mean of the per-class accuracies), in Dassl's format."""
    lines = ["=> result", f"* total: {r['total']:,}", f"* correct: {r['correct']:,}",
             f"* accuracy: {r['accuracy']:.1f}%", f"* error: {r['error_rate']:.1f}%",
             f"* macro_f1: {r['macro_f1']:.1f}%"]
    if per_class:
        lines.append("=> per-class result")
        for label, acc in sorted(r["perclass_accuracy"].items()):
            lines.append(f"* class: {label} ({lab2cname.get(label, '')})\ttotal: {r['perclass_total'][label]:,}\t"
                         f"correct: {r['perclass_correct'][label]:,}\tacc: {acc:.1f}%")
        lines.append(f"* average: {r['perclass_average']:.1f}%")
    return lines


def save_confusion_matrix(cmat: torch.Tensor, lab2cname: Mapping[int, str], directory: str) -> tuple[str, str]:
    """Write ``cmat.pt`` (the ``[n, n]`` float tensor of :meth:`Classification.confusion_matrix`; Dassl's file
    name, loadable with ``torch.load``) and ``cmat.csv`` (the same numbers with class names: one row per true
    class, one column per predicted class) into ``directory``; returns both paths."""
    os.makedirs(directory, exist_ok=True)
    pt, csv_path = os.path.join(directory, "cmat.pt"), os.path.join(directory, "cmat.csv")
    atomic_write(pt, torch_bytes(cmat))
    names = [lab2cname.get(i, str(i)) for i in range(cmat.shape[0])]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["true \\ predicted", *names])
    for name, row in zip(names, cmat.tolist()):
        w.writerow([name, *(f"{v:.6g}" for v in row)])
    atomic_write(csv_path, buf.getvalue())
    return pt, csv_path
