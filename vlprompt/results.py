"""Collect run folders into Base/New/HM tables (mean ± spread over seeds).

    python -m vlprompt.results output/base2new [--format text|csv|markdown|latex] [--ddof 1] [--ci95]
                                               [--keyword accuracy|average|macro_f1|error]

A run is a folder with a ``log.txt`` holding ``* <keyword>: xx.x%`` lines (ours or the published code's;
``accuracy`` by default, ``average`` for the mean per-class accuracy that TEST.PER_CLASS_RESULT logs); its last
such line is the run's result. Base-to-new folders follow the published scripts:
``.../train_base/<dataset>/<...>/seed<N>`` gives Base, ``.../test_new/<dataset>/<...>/seed<N>`` gives New.
Other runs (few-shot, cross-dataset) are grouped by their folder without ``seed<N>`` and shown as accuracy.
The average row follows the papers: average HM = HM of the mean Base and the mean New.

The spread after ``±`` is, by default, the population standard deviation over seeds (numpy's default, ddof 0),
the number the published ``parse_test_res.py`` prints; ``--ddof 1`` gives the sample standard deviation, and
``--ci95`` the published 95% confidence interval, 1.96 * std / sqrt(n) (std with the chosen ddof; 0 by
default, as published). A footer line under the table says which (a ``#`` line in CSV).
"""
from __future__ import annotations

import argparse
import os
import re
import statistics
import sys
from dataclasses import dataclass, field
from typing import Iterable, Iterator, Optional

import numpy as np

from vlprompt.utils.logging import log_files

ACC_RE = re.compile(r"^\* accuracy: ([0-9.]+)%", re.M)
SEED_RE = re.compile(r"^seed(\d+)$")
BASE_DIRS = {"train_base": "base", "test_base": "base", "test_new": "new"}


def read_accuracy(log_path: str, keyword: str = "accuracy") -> Optional[float]:
    """The last ``* <keyword>: x%`` of a log (None if it has none). For a run folder's ``log.txt``, its later
    attempts' ``log.txt-<date-time>`` files are read after it (a resumed run ends in the newest one)."""
    pattern = ACC_RE if keyword == "accuracy" else re.compile(rf"^\* {re.escape(keyword)}: ([0-9.]+)%", re.M)
    paths = log_files(os.path.dirname(log_path)) if os.path.basename(log_path) == "log.txt" else [log_path]
    found = []
    for path in paths:
        with open(path, encoding="utf-8", errors="replace") as f:
            found += pattern.findall(f.read())
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


def collect(root: str, only: Optional[Iterable[str]] = None, keyword: str = "accuracy"
            ) -> dict[tuple[str, str], Group]:
    """``{(dataset or run group, method path): Group}`` for every finished run under ``root``, or only for the
    run folders ``only`` (folders under ``root``, e.g. the runs of one sweep); ``keyword``: the log line read."""
    groups: dict[tuple[str, str], Group] = {}
    for dirpath in _run_folders(root, only):
        acc = read_accuracy(os.path.join(dirpath, "log.txt"), keyword)
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


def spread(values: list[float], ddof: int = 0, ci95: bool = False) -> float:
    """The spread shown after ``±``: numpy's std with ``ddof`` (0: population, the published parser's; 1:
    sample; 0.0 for a single value), or with ``ci95`` the published 1.96 * std / sqrt(n)."""
    if len(values) <= ddof:
        return 0.0
    std = float(np.std(values, ddof=ddof))
    return 1.96 * std / float(np.sqrt(len(values))) if ci95 else std


def spread_note(ddof: int = 0, ci95: bool = False) -> str:
    """The footer line that says what ``±`` means."""
    std = "population std (ddof 0)" if ddof == 0 else f"sample std (ddof {ddof})"
    if ci95:
        return f"± = 95% confidence interval over seeds: 1.96 * {std} / sqrt(n)"
    return f"± = {std} over seeds" + (", as printed by the published parse_test_res.py" if ddof == 0 else "")


def _ms(values: list[float], ddof: int = 0, ci95: bool = False) -> tuple[float, float]:
    return float(np.mean(values)), spread(values, ddof, ci95)


def build_rows(groups: dict[tuple[str, str], Group], ddof: int = 0, ci95: bool = False
               ) -> tuple[list[str], list[list[str]]]:
    """Header and rows of the table; cells ``mean ± spread`` (see :func:`spread`)."""
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
                    m, s = _ms(list(vals.values()), ddof, ci95)
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
            m, s = _ms(list(g.acc.values()), ddof, ci95)
            row = [name, ",".join(str(x) for x in sorted(g.acc)), f"{m:.2f} ± {s:.2f}"]
            rows.append(row if not b2n else [name, "", row[1], row[2], "-", "-"])
    return header, rows


def render(header: list[str], rows: list[list[str]], fmt: str = "text", note: str = "") -> str:
    """The table as text, csv, markdown or latex; ``note`` (e.g. :func:`spread_note`) is a footer line
    (in CSV a last line starting with ``#``, in LaTeX a last row)."""
    if fmt == "csv":
        import csv
        import io
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(header)
        w.writerows(rows)
        return buf.getvalue() + (f"# {note}\n" if note else "")
    if fmt == "markdown":
        lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
        lines += ["| " + " | ".join(r) + " |" for r in rows]
        return "\n".join(lines + (["", note] if note else [])) + "\n"
    if fmt == "latex":
        esc = lambda s: s.replace("±", r"$\pm$").replace("_", r"\_")  # noqa: E731
        lines = [r"\begin{tabular}{" + "l" * 2 + "r" * (len(header) - 2) + "}", r"\toprule",
                 " & ".join(header) + r" \\", r"\midrule"]
        lines += [" & ".join(esc(c) for c in r) + r" \\" for r in rows]
        lines.append(r"\bottomrule")
        if note:
            lines.append(rf"\multicolumn{{{len(header)}}}{{l}}{{\footnotesize {esc(note)}}} \\")
        return "\n".join(lines + [r"\end{tabular}"]) + "\n"
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt_row = lambda r: "  ".join(str(c).ljust(w) for c, w in zip(r, widths)).rstrip()  # noqa: E731
    lines = [fmt_row(header), "  ".join("-" * w for w in widths)] + [fmt_row(r) for r in rows]
    return "\n".join(lines + ([note] if note else [])) + "\n"


def main(argv: Optional[list[str]] = None) -> int:
    ap = argparse.ArgumentParser(description="Base/New/HM (or accuracy) tables from run folders.")
    ap.add_argument("folder", help="a folder of runs, e.g. output/base2new")
    ap.add_argument("--format", choices=["text", "csv", "markdown", "latex"], default="text")
    ap.add_argument("--ddof", type=int, choices=[0, 1], default=0,
                    help="std over seeds: 0 = population std (default, as the published parse_test_res.py), "
                         "1 = sample std")
    ap.add_argument("--ci95", action="store_true",
                    help="show the 95%% confidence interval 1.96 * std / sqrt(n) instead of the std (as published)")
    ap.add_argument("--keyword", default="accuracy",
                    help="the log line read, '* <keyword>: x%%' (default accuracy; average = mean per-class "
                         "accuracy of TEST.PER_CLASS_RESULT runs)")
    args = ap.parse_args(argv)
    if not os.path.isdir(args.folder):
        print(f"error: {args.folder} is not a folder", file=sys.stderr)
        return 2
    groups = collect(args.folder, keyword=args.keyword)
    if not groups:
        print(f"No finished runs (log.txt with '* {args.keyword}:') under {args.folder}", file=sys.stderr)
        return 1
    note = spread_note(args.ddof, args.ci95)
    if args.keyword != "accuracy":
        note = f"values: the last '* {args.keyword}: x%' line of each log; {note}"
    sys.stdout.write(render(*build_rows(groups, args.ddof, args.ci95), fmt=args.format, note=note))
    return 0


if __name__ == "__main__":
    sys.exit(main())
