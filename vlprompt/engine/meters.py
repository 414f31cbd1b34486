"""Running averages for the training log line (Dassl's formats)."""
from __future__ import annotations


class AverageMeter:
    def __init__(self) -> None:
        self.val = self.avg = self.sum = 0.0
        self.count = 0

    def update(self, val: float, n: int = 1) -> None:
        self.val = val
        self.sum += val * n
        self.count += n
        self.avg = self.sum / self.count


class MetricMeter:
    """``loss 0.1234 (0.2345) acc 50.0000 (40.0000)``."""

    def __init__(self) -> None:
        self.meters: dict[str, AverageMeter] = {}

    def update(self, values: dict[str, float]) -> None:
        for k, v in values.items():
            self.meters.setdefault(k, AverageMeter()).update(float(v))

    def __str__(self) -> str:
        return " ".join(f"{k} {m.val:.4f} ({m.avg:.4f})" for k, m in self.meters.items())
