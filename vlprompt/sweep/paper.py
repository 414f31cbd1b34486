"""``python -m vlprompt.sweep.paper TABLE [flags] [KEY VALUE ...]``: one of our papers' tables from one command.

    python -m vlprompt.sweep.paper metaproto --root $DATA
    python -m vlprompt.sweep.paper instance_prompt --seeds 1 --executor slurm --partition gpu

TABLE: metaproto (DTD base-to-new, ViT-B/16) or instance_prompt (4-shot RN50 on four datasets). Every row runs as
the paper ran it, through the sweep runner (finished runs are skipped, unfinished ones resume; --dry-run lists
them). Runs go under <output>/paper/<TABLE>/; the table (ours as the mean over seeds, the paper's number and the
difference, column by column) is printed and written there as table.txt, table.md and table.csv.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import statistics
import sys
from dataclasses import replace
from typing import Optional, Sequence

from vlprompt import results
from vlprompt.errors import ConfigError
from vlprompt.sweep import cli
from vlprompt.sweep.cli import ArgumentParser, add_run_flags, dry_run, log_failures, run_pending, split_opts
from vlprompt.sweep.jobs import Job, SweepSpec, build_sweep
from vlprompt.sweep.paper_tables import METHOD_NOT_IMPLEMENTED, TABLES, PaperTable, Row
from vlprompt.sweep.report import step_accuracies
from vlprompt.utils.logging import setup_logger

logger = logging.getLogger("vlprompt.sweep")


def build_parser() -> ArgumentParser:
    p = ArgumentParser(prog="python -m vlprompt.sweep.paper", description=__doc__.replace("``", ""),
                       formatter_class=argparse.RawDescriptionHelpFormatter,
                       epilog="Trailing KEY VALUE pairs (after all flags) are passed to every train.py call, e.g. "
                              "MODEL.BACKBONE.CACHE_DIR /weights OPTIM.MAX_EPOCH 2.")
    p.add_argument("table", choices=sorted(TABLES), help="the paper table")
    p.add_argument("--datasets", nargs="+", default=[],
                   help="run only these of the table's datasets (default: all; the others show '-')")
    add_run_flags(p)
    return p


def table_folder(table: PaperTable, output: str) -> str:
    return os.path.join(os.path.abspath(output), "paper", table.name)


def datasets(table: PaperTable, chosen: Sequence[str]) -> tuple[str, ...]:
    """The table's datasets, or those of ``chosen`` (``--datasets``), checked against the table."""
    wrong = [d for d in chosen if d not in table.datasets]
    if wrong:
        raise ConfigError(f"--datasets {' '.join(wrong)}: the {table.name} table has {', '.join(table.datasets)}; "
                          "pass some of those")
    return tuple(d for d in table.datasets if d in chosen) if chosen else table.datasets


def row_jobs(table: PaperTable, row: Row, args: argparse.Namespace, opts: list[str]) -> list[Job]:
    """The jobs of one row: a sweep of its trainer and config over the table's datasets and ``--seeds``; the
    row's keys come first so that the command line's ``KEY VALUE`` pairs win."""
    spec = SweepSpec(table.protocol, row.trainer, row.config, datasets(table, args.datasets), tuple(args.seeds),
                     (table.shots,), (), tuple(row.opts) + tuple(opts), args.root, table_folder(table, args.output),
                     gpus_per_job=args.gpus_per_job, name=row.slug)
    return [replace(job, name=f"{row.slug}/{job.name}") for job in build_sweep(spec).jobs]


def row_means(table: PaperTable, jobs: list[Job]) -> tuple[list[Optional[float]], list[int]]:
    """A row's numbers, one per column (None: not run yet), and the seeds they average. base2new: the mean Base,
    the mean New and H of those two means (the papers' rule); fewshot: the mean accuracy per dataset."""
    steps = [s for job in jobs for s in job.steps]  # one grid point and shot count per row
    accs = {(label, kind): seeds for (label, _, _, kind), seeds in step_accuracies(steps).items()}
    mean = lambda key: statistics.mean(accs[key].values()) if accs.get(key) else None  # noqa: E731
    seeds = sorted({seed for values in accs.values() for seed in values})
    if table.protocol == "base2new":
        base, new = mean((table.datasets[0], "base")), mean((table.datasets[0], "new"))
        h = results.harmonic_mean(base, new) if base is not None and new is not None else None
        return [base, new, h], seeds
    return [mean((d, "acc")) for d in table.datasets], seeds


def render(table: PaperTable, cells: list[tuple[Row, list[Optional[float]], list[int]]], fmt: str) -> str:
    """The table in the paper's layout: per column ours, the paper's and the difference (ours - paper)."""
    from tabulate import tabulate

    header = ["Method"] + [h for c in table.columns for h in (c, f"{c} (paper)", "Δ")] + ["seeds"]
    num = lambda x: "-" if x is None else f"{x:.2f}"  # noqa: E731
    rows = []
    for row, ours, seeds in cells:
        line = [row.label]
        for i in range(len(table.columns)):
            paper = row.paper[i] if i < len(row.paper) else None
            mine = ours[i] if ours else None
            delta = f"{mine - paper:+.2f}" if mine is not None and paper is not None else "-"
            line += [METHOD_NOT_IMPLEMENTED if not row.trainer else num(mine), num(paper), delta]
        rows.append(line + [",".join(map(str, seeds)) or "-"])
    if fmt == "csv":
        import csv
        import io

        buf = io.StringIO()
        csv.writer(buf).writerows([header] + rows)
        return buf.getvalue()
    body = tabulate(rows, headers=header, tablefmt="github" if fmt == "markdown" else "simple",
                    disable_numparse=True)
    lines = [f"{table.title}", "", body, ""]
    if table.note:
        lines.append(f"Note: {table.note}")
    lines.append(f"Ours: mean over the seeds listed ({table.shots} shots); '-': not run yet (ours) or not given (paper).")
    return "\n".join(lines) + "\n"


def write_tables(table: PaperTable, cells: list, folder: str) -> tuple[str, list[str]]:
    """Write table.txt/.md/.csv into ``folder`` -> (the text table, the paths)."""
    os.makedirs(folder, exist_ok=True)
    paths = []
    for name, fmt in (("table.txt", "text"), ("table.md", "markdown"), ("table.csv", "csv")):
        paths.append(os.path.join(folder, name))
        with open(paths[-1], "w", encoding="utf-8") as f:
            f.write(render(table, cells, fmt))
    return render(table, cells, "text"), paths


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run ``argv``'s paper table -> exit code: 0 every row finished, 1 some job failed."""
    setup_logger()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    flags, opts = split_opts(argv, parser)
    args = parser.parse_args(flags)
    table = TABLES[args.table]
    folder = table_folder(table, args.output)
    per_row = [(row, row_jobs(table, row, args, opts) if row.trainer else []) for row in table.rows]
    jobs = [job for _, row_jobs_ in per_row for job in row_jobs_]
    if args.dry_run:
        return dry_run(jobs, folder)
    done = []
    if not args.table_only:
        later = shlex.join([sys.executable, "-m", "vlprompt.sweep.paper",
                            *[a for a in flags if a != "--no-wait"], "--table-only", *opts])
        done = run_pending(jobs, args, folder, later)
        if done is None:
            return 0
    cells = [(row, *row_means(table, row_jobs_)) for row, row_jobs_ in per_row]
    text, paths = write_tables(table, cells, folder)
    logger.info("\n" + text.rstrip())
    for path in paths:
        logger.info(f"wrote {path}")
    return log_failures(done, len(jobs))


def run(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point: a user error is one ``Error:`` line and exit code 2."""
    cli.run(argv, main)


if __name__ == "__main__":
    logging.raiseExceptions = False  # `--dry-run | head`: no traceback per line once the pipe is closed
    run()
