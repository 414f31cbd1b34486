"""The sweep's table (``vlprompt.results`` over this sweep's own run folders) as text, CSV, Markdown and a PNG."""
from __future__ import annotations

import os
import statistics
from collections import defaultdict
from typing import Iterable

from vlprompt import results
from vlprompt.sweep.jobs import Step, Sweep


def table(sweep: Sweep) -> tuple[list[str], list[list[str]]]:
    """Header and rows of ``vlprompt.results`` restricted to the sweep's run folders (empty rows: none finished)."""
    folders = [step.folder for job in sweep.jobs for step in job.steps]
    return results.build_rows(results.collect(os.path.abspath(sweep.spec.output), only=folders))


def write_report(sweep: Sweep) -> tuple[str, list[str]]:
    """Write ``table.csv``, ``table.md`` and ``table.png`` into the sweep folder -> (text table, their paths)."""
    header, rows = table(sweep)
    if not rows:
        return "", []
    os.makedirs(sweep.folder, exist_ok=True)
    paths = [os.path.join(sweep.folder, name) for name in ("table.csv", "table.md", "table.png")]
    for path, fmt in zip(paths, ("csv", "markdown")):
        with open(path, "w", encoding="utf-8") as f:
            f.write(results.render(header, rows, fmt=fmt, note=results.spread_note()))
    plot(sweep, paths[2])
    return results.render(header, rows, note=results.spread_note()), paths


def step_accuracies(steps: Iterable[Step]) -> dict[tuple[str, str, int, str], dict[int, float]]:
    """``{(dataset, grid point, shots, kind): {seed: accuracy}}`` of the finished steps (their logs' result)."""
    accs: dict[tuple[str, str, int, str], dict[int, float]] = defaultdict(dict)
    for step in steps:
        log = os.path.join(step.folder, "log.txt")
        acc = results.read_accuracy(log) if step.finished and os.path.isfile(log) else None
        if acc is not None:
            accs[(step.label, step.point, step.shots, step.kind)][step.seed] = acc
    return accs


def _means(steps: list[Step]) -> dict[tuple[str, str, int, str], float]:
    """Mean accuracy over seeds of the finished steps, keyed by (dataset, grid point, shots, kind)."""
    return {k: statistics.mean(v.values()) for k, v in step_accuracies(steps).items()}


def plot(sweep: Sweep, path: str) -> None:
    """Grouped Base/New/HM bars per dataset (base2new), accuracy vs shots (fewshot) or per dataset (xd, dg)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    means = _means([step for job in sweep.jobs for step in job.steps])
    name = lambda label, point, shots: "\n".join(x for x in (label, point) if x) + (  # noqa: E731
        f"\n{shots} shots" if len({k[2] for k in means}) > 1 else "")
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(means) + 2), 4.5))
    if sweep.spec.protocol == "fewshot":
        for series in sorted({k[:2] for k in means}):
            xs = sorted(k[2] for k in means if k[:2] == series)
            ax.plot(xs, [means[(*series, x, "acc")] for x in xs], marker="o", label=" ".join(filter(None, series)))
        ax.set_xscale("log", base=2)
        ax.set_xlabel("shots per class")
        ax.legend(fontsize=7)
    else:
        kinds = ["base", "new"] if sweep.spec.protocol == "base2new" else ["acc"]
        cats = sorted({k[:3] for k in means})
        series: dict[str, list[float]] = {kind: [means.get((*c, kind), 0.0) for c in cats] for kind in kinds}
        if sweep.spec.protocol == "base2new":
            series["HM"] = [results.harmonic_mean(b, n) for b, n in zip(series["base"], series["new"])]
        width = 0.8 / len(series)
        for i, (kind, values) in enumerate(series.items()):
            ax.bar([x + (i - (len(series) - 1) / 2) * width for x in range(len(cats))], values, width,
                   label={"base": "Base", "new": "New", "acc": "Accuracy"}.get(kind, kind))
        ax.set_xticks(range(len(cats)), [name(*c) for c in cats], rotation=45, ha="right", fontsize=7)
        ax.legend()
    ax.set_ylabel("accuracy (%)")
    ax.set_title(os.path.basename(sweep.folder), fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
