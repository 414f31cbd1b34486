"""Collect run folders into Base/New/HM tables (mean ± std over seeds).

    python -m vlprompt.results output/base2new [--format text|csv|markdown|latex]

A run is a folder with a ``log.txt`` holding ``* accuracy: xx.x%`` (ours or the published code's);
its last such line is the run's result. Base-to-new folders follow the published scripts:
``.../train_base/<dataset>/<...>/seed<N>`` gives Base, ``.../test_new/<dataset>/<...>/seed<N>`` gives New.
Other runs (few-shot, cross-dataset) are grouped by their folder without ``seed<N>`` and shown as accuracy.
The average row follows the papers: average HM = HM of the mean Base and the mean New.
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

ACC_RE = re.compile(r"^\* accuracy: ([0-9.]+)%", re.M)
SEED_RE = re.compile(r"^seed(\d+)$")
BASE_DIRS = {"train_base": "base", "test_base": "base", "test_new": "new"}


def read_accuracy(log_path: str) -> Optional[float]:
    with open(log_path, encoding="utf-8", errors="replace") as f:
        found = ACC_RE.findall(f.read())
    return float(found[-1]) if found else None


def harmonic_mean(a: float, b: float) -> float:
    return 2 * a * b / (a + b) if a + b > 0 else 0.0


@dataclass
class Group:
    """Accuracies of one dataset/method over seeds."""
    base: dict[int, float] = field(default_factory=dict)
    new: dict[int, float] = field(default_factory=dict)
    acc: dict[int, float] = field(default_factory=dict)


def _run_folders(root: str, only: Optional[Iterable[str]]) -> Iterator[str]:
    if only is None:
        yield from (dirpath for dirpath, _, files in os.walk(root) if "log.txt" in files)
    else:
        yield from (d for d in only if os.path.isfile(os.path.join(d, "log.txt")))


def collect(root: str, only: Optional[Iterable[str]] = None) -> dict[tuple[str, str], Group]:
    """``{(dataset or run group, method path): Group}`` for every finished run under ``root``, or only for the
    run folders ``only`` (folders under ``root``, e.g. the runs of one sweep)."""
    groups: dict[tuple[str, str], Group] = {}
    for dirpath in _run_folders(root, only):
        acc = read_accuracy(os.path.join(dirpath, "log.txt"))
        if acc is None:
            continue
        parts = os.path.relpath(dirpath, root).split(os.sep)
        seed_pos = next((i for i in range(len(parts) - 1, -1, -1) if SEED_RE.match(parts[i])), None)
        seed = int(SEED_RE.match(parts[seed_pos]).group(1)) if seed_pos is not None else 0
        rest = parts[:seed_pos] + parts[seed_pos + 1:] if seed_pos is not None else parts
        kind_pos = next((i for i, p in enumerate(rest) if p in BASE_DIRS), None)
        if kind_pos is not None and kind_pos + 1 < len(rest):
            dataset = rest[kind_pos + 1]
            method = "/".join(rest[kind_pos + 2:])
            g = groups.setdefault((dataset, method), Group())
            getattr(g, BASE_DIRS[rest[kind_pos]])[seed] = acc
        else:
            g = groups.setdefault(("/".join(rest) or ".", ""), Group())
            g.acc[seed] = acc
    return groups


def _ms(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def build_rows(groups: dict[tuple[str, str], Group]) -> tuple[list[str], list[list[str]]]:
    b2n = {k: g for k, g in groups.items() if g.base or g.new}
    rows: list[list[str]] = []
    if b2n:
        header = ["dataset", "method", "seeds", "Base", "New", "HM"]
        means_b, means_n = [], []
        for (dataset, method), g in sorted(b2n.items()):
            cells = [dataset, method, ",".join(str(s) for s in sorted(set(g.base) | set(g.new)))]
            mb = mn = None
            for vals in (g.base, g.new):
                if vals:
                    m, s = _ms(list(vals.values()))
                    cells.append(f"{m:.2f} ± {s:.2f}")
                else:
                    m = None
                    cells.append("-")
                if vals is g.base:
                    mb = m
                else:
                    mn = m
            cells.append(f"{harmonic_mean(mb, mn):.2f}" if mb is not None and mn is not None else "-")
            if mb is not None and mn is not None:
                means_b.append(mb)
                means_n.append(mn)
            rows.append(cells)
        if len(means_b) > 1:
            ab, an = statistics.mean(means_b), statistics.mean(means_n)
            rows.append(["Average", "", f"{len(means_b)} datasets", f"{ab:.2f}", f"{an:.2f}",
                         f"{harmonic_mean(ab, an):.2f}"])
        others = {k: g for k, g in groups.items() if g.acc}
    else:
        header = ["run", "seeds", "Accuracy"]
        others = groups
    for (name, _), g in sorted(others.items()):
        if g.acc:
            m, s = _ms(list(g.acc.values()))
            row = [name, ",".join(str(x) for x in sorted(g.acc)), f"{m:.2f} ± {s:.2f}"]
            rows.append(row if not b2n else [name, "", row[1], row[2], "-", "-"])
    return header, rows


def render(header: list[str], rows: list[list[str]], fmt: str = "text") -> str:
    if fmt == "csv":
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue()
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows]) + "\n"
    if fmt == "latex":
        esc = lambda s: s.replace("±", r"$\pm$").replace("_", r"\_")  # noqa: E731
        lines = [r"\begin{tabular}{" + "l" * 2 + "r" * (len(header) - 2) + "}", r"\toprule",
                 " & ".join(header) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
        return "\n".join(lines + [r"\bottomrule", r"\end{tabular}"]) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    return "\n".join([fmt_row(header), "  ".join("-" * w for w in widths)] + [fmt_row(r) for r in rows]) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Base/New/HM (or accuracy) tables from run folders.")
    ap.add_argument("folder", help="a folder of runs, e.g. output/base2new")
    ap.add_argument("--format", choices=["text", "csv", "markdown", "latex"], default="text")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.folder):
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    groups = collect(args.folder)
    if not groups:
        print(f"No finished runs (log.txt with '* accuracy:') under {args.folder}", file=sys.stderr)
        return 1
    sys.stdout.write(render(*build_rows(groups), fmt=args.format))
    return 0


if __name__ == "__main__":
    sys.exit(main())
