"""``python -m vlprompt.sweep PROTOCOL --trainer T [flags] [KEY VALUE ...]``: a whole protocol from one command.

    python -m vlprompt.sweep base2new --trainer MaPLe --datasets all --seeds 1 2 3
    python -m vlprompt.sweep fewshot --trainer CoOp --datasets dtd eurosat --grid OPTIM.LR=0.002,0.001
    python -m vlprompt.sweep xd --trainer CoOp --executor slurm --partition gpu --time 240 --no-wait

Lists the jobs (``--dry-run``), runs the unfinished ones on a local pool or as a SLURM array, reports the failed
ones with their log, then prints the table and writes table.csv/.md/.png into ``<output>/sweeps/<name>/``.
"""
from __future__ import annotations

import argparse
import logging
import os
import shlex
import sys
from typing import TYPE_CHECKING, Callable, NoReturn, Optional, Sequence

from vlprompt.errors import ConfigError, VLPromptError, user_message
from vlprompt.sweep.jobs import KEY_RE, PROTOCOLS, Job, Sweep, SweepSpec, build_sweep
from vlprompt.sweep.report import write_report
from vlprompt.sweep.runner import JobResult
from vlprompt.utils.logging import setup_logger

if TYPE_CHECKING:
    from vlprompt.sweep.slurm import SlurmOptions

logger = logging.getLogger("vlprompt.sweep")


class ArgumentParser(argparse.ArgumentParser):
    """Bad arguments are one ``Error:`` line and exit code 2, like ``train.py``."""

    def error(self, message: str) -> NoReturn:
        raise ConfigError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    p = ArgumentParser(prog="python -m vlprompt.sweep", description=__doc__.replace("``", ""),
                formatter_class=argparse.RawDescriptionHelpFormatter,
                epilog="Trailing KEY VALUE pairs (after all flags) are passed to every train.py call. "
                       "docs/SCALING.md has the details.")
    p.add_argument("protocol", help=f"one of: {', '.join(PROTOCOLS)}")
    p.add_argument("--trainer", required=True, help="e.g. CoOp, CoCoOp, MaPLe (a folder of configs/trainers/)")
    p.add_argument("--config", default="", help="method config name (default: that of the trainer's scripts)")
    p.add_argument("--datasets", nargs="+", default=[],
                   help="'all' (default) or names of configs/datasets/; for xd/dg: the evaluation targets")
    p.add_argument("--shots", nargs="+", type=int, default=[], help="default 16 (fewshot: 1 2 4 8 16)")
    p.add_argument("--source", default="imagenet", help="xd/dg: the training dataset")
    p.add_argument("--grid", action="append", default=[], metavar="KEY=v1,v2",
                   help="sweep a config key (repeatable: cartesian product); each point gets its own folder")
    p.add_argument("--name", default="", help="sweep folder name (default <protocol>_<trainer>_<config>)")
    add_run_flags(p)
    return p


def add_run_flags(p: argparse.ArgumentParser) -> None:
    """The flags of every command that runs jobs (this one, ``vlprompt.sweep.paper``): seeds, folders, executor."""
    p.add_argument("--seeds", nargs="+", type=int, default=[1, 2, 3], help="default 1 2 3")
    p.add_argument("--root", default=os.environ.get("DATA", ""), help="dataset folder (default: $DATA)")
    p.add_argument("--output", default="output", help="output folder (default: ./output)")
    p.add_argument("--gpus-per-job", type=int, default=1, help="K > 1: each step runs under torchrun with K procs")
    p.add_argument("--dry-run", action="store_true", help="list the jobs, commands and folders; run nothing")
    p.add_argument("--table-only", action="store_true", help="only rebuild and print the table")
    p.add_argument("--executor", choices=["local", "slurm"], default="local")
    p.add_argument("--workers", type=int, default=None,
                   help="local: concurrent jobs (default: one per GPU group, or 1 without GPUs)")
    s = p.add_argument_group("slurm")
    s.add_argument("--partition", default="")
    s.add_argument("--time", type=int, default=720, help="minutes per array task (requeued on timeout)")
    s.add_argument("--cpus-per-task", type=int, default=None)
    s.add_argument("--mem-gb", type=float, default=None)
    s.add_argument("--array-parallelism", type=int, default=None, help="array tasks running at once")
    s.add_argument("--slurm-folder", default="", help="submitit files and logs (default <sweep folder>/slurm)")
    s.add_argument("--slurm-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="extra #SBATCH --KEY=VALUE, e.g. account=abc, qos=high, constraint=a100 (repeatable)")
    s.add_argument("--no-wait", action="store_true", help="submit, print the job ids and exit")
    s.add_argument("--slurm-cluster", choices=["auto", "slurm", "local", "debug"], default="auto",
                   help=argparse.SUPPRESS)


def split_opts(argv: Sequence[str], parser: argparse.ArgumentParser) -> tuple[list[str], list[str]]:
    """Flags vs trailing ``KEY VALUE`` overrides: these start at ``--`` or at the first config key (``SEED``,
    ``OPTIM.LR``) that is not the value of a flag (``--partition GPU``)."""
    argv = list(argv)
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1:]
    takes_value = {k for k, a in parser._option_string_actions.items() if a.nargs != 0}
    for i, a in enumerate(argv):
        if KEY_RE.match(a) and not (i and argv[i - 1] in takes_value):
            return argv[:i], argv[i:]
    return argv, []


def main(argv: Optional[Sequence[str]] = None) -> int:
    """Run the sweep ``argv`` describes -> exit code: 0 all jobs finished, 1 some failed (or, with
    ``--table-only``, nothing finished yet); bad input raises :class:`~vlprompt.errors.ConfigError`."""
    setup_logger()
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    flags, opts = split_opts(argv, parser)
    args = parser.parse_args(flags)
    spec = SweepSpec(args.protocol, args.trainer, args.config, tuple(args.datasets), tuple(args.seeds),
                     tuple(args.shots), tuple(args.grid), tuple(opts), args.root, args.output, args.source,
                     args.gpus_per_job, args.name)
    sweep = build_sweep(spec)
    if args.dry_run:
        return dry_run(sweep.jobs, sweep.folder)
    if args.table_only:
        return _report(sweep)
    later = shlex.join([sys.executable, "-m", "vlprompt.sweep", *[a for a in flags if a != "--no-wait"],
                        "--table-only", *opts])
    done = run_pending(sweep.jobs, args, sweep.folder, later)
    if done is None:
        return 0
    _report(sweep)
    return log_failures(done, len(sweep.jobs))


def run_pending(jobs: list[Job], args: argparse.Namespace, folder: str, later: str) -> Optional[list[JobResult]]:
    """Run the unfinished ``jobs`` on the executor of ``args`` (logs under ``folder``) -> their results; None
    when they were submitted to SLURM without waiting (``later``: the command that prints the table then)."""
    if not args.root or not os.path.isdir(args.root):
        raise ConfigError(f"dataset root '{args.root}' is not a folder; pass --root DIR or set DATA "
                          "(the folder holding dtd/, imagenet/, ...)")
    if args.workers is not None and args.workers < 1:
        raise ConfigError(f"--workers {args.workers} must be 1 or more")
    slurm_opts = _slurm_options(args, folder) if args.executor == "slurm" else None
    states = [job.state for job in jobs]
    pending = [job for job, state in zip(jobs, states) if state != "finished"]
    logger.info(f"{folder}: {len(jobs)} jobs, {states.count('finished')} finished (skipped), "
                f"{states.count('resumable')} to resume, {states.count('new')} new; "
                f"logs in {os.path.join(folder, 'logs')}")
    if not pending:
        return []
    if slurm_opts is None:
        from vlprompt.sweep.local import run_local

        return _progress(len(pending), lambda cb: run_local(pending, args.workers, args.gpus_per_job, cb))
    return _run_slurm(pending, slurm_opts, args.no_wait, later)


def log_failures(done: list[JobResult], total: int) -> int:
    """Log the failed jobs with their step, exit code, log and ``Error:`` line -> exit code (1 if any failed)."""
    failed = [r for r in done if not r.ok]
    if failed:
        logger.info(f"{len(failed)} of {total} jobs failed (fix the cause and re-run the same command: "
                    "finished steps are skipped, unfinished runs resume):")
        for r in failed:
            how = f"killed by signal {-r.returncode}" if r.returncode < 0 else f"exit code {r.returncode}"
            logger.info(f"  {r.name}: step {r.failed_step or '?'} {how}; log: {r.log}")
            if r.error:
                logger.info(f"    {r.error}")
    return 1 if failed else 0


def _run_slurm(pending: list[Job], opts: "SlurmOptions", no_wait: bool, later: str) -> Optional[list[JobResult]]:
    """Submit the array; wait for it (None with ``no_wait``: the ids and the command ``later`` are shown)."""
    from vlprompt.sweep import slurm

    submitted = slurm.submit(pending, opts)
    for s, job in zip(submitted, pending):
        logger.info(f"submitted {s.job_id}: {job.name}")
    if no_wait:
        logger.info(f"{len(submitted)} jobs submitted; when they are done, print the table with:\n{later}")
        return None
    poll = 30.0 if opts.cluster == "slurm" else 1.0
    return _progress(len(pending), lambda cb: slurm.wait(submitted, pending, poll, cb))


def _slurm_options(args: argparse.Namespace, folder: str) -> "SlurmOptions":
    """The ``SlurmOptions`` of the command line, checked (cluster found, ``--slurm-arg`` syntax)."""
    from vlprompt.sweep import slurm

    return slurm.SlurmOptions(args.slurm_folder or os.path.join(folder, "slurm"), args.partition, args.time,
                              args.gpus_per_job, args.cpus_per_task, args.mem_gb, args.array_parallelism,
                              _key_values(args.slurm_arg), slurm.resolve_cluster(args.slurm_cluster),
                              os.path.basename(folder))


def _key_values(items: list[str]) -> dict[str, str]:
    pairs = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--slurm-arg '{item}' is not KEY=VALUE; write e.g. --slurm-arg account=myproject")
        pairs[key.lstrip("-")] = value
    return pairs


def _progress(total: int, body: Callable[[Callable[[JobResult], None]], list[JobResult]]) -> list[JobResult]:
    """Run ``body(on_done)`` under a tqdm bar over jobs, logging one line per finished job."""
    from tqdm import tqdm
    from tqdm.contrib.logging import logging_redirect_tqdm

    with logging_redirect_tqdm(), tqdm(total=total, unit="job", desc="sweep", file=sys.stderr) as bar:
        def on_done(r: JobResult) -> None:
            state = "done" if r.ok else f"FAILED (log {r.log})"
            logger.info(f"{r.name}: {state}, {r.ran} step(s) run in {r.seconds:.0f} s")
            bar.update()

        return body(on_done)


def dry_run(jobs: list[Job], folder: str) -> int:
    steps = [step for job in jobs for step in job.steps]
    counts = {s: sum(step.state == s for step in steps) for s in ("finished", "resumable", "new")}
    logger.info(f"{len(jobs)} jobs, {len(steps)} steps ({', '.join(f'{n} {s}' for s, n in counts.items())}); "
                f"sweep folder {folder}")
    for job in jobs:
        logger.info(f"[{job.state}] job {job.name} (log {job.log})")
        for step in job.steps:
            logger.info(f"    [{step.state}] {step.name}: {shlex.join(step.command)}")
    return 0


def _report(sweep: Sweep) -> int:
    text, paths = write_report(sweep)
    if not text:
        logger.info(f"No finished runs yet for the {len(sweep.jobs)} jobs of {sweep.folder}")
        return 1
    logger.info(text.rstrip())
    for path in paths:
        logger.info(f"wrote {path}")
    return 0


def run(argv: Optional[Sequence[str]] = None, command: Optional[Callable[[Optional[Sequence[str]]], int]] = None
        ) -> None:
    """Entry point of ``command`` (default: this sweep's ``main``): a user error is one ``Error:`` line and exit
    code 2 (as ``train.py``)."""
    try:
        sys.exit((command or main)(argv))
    except VLPromptError as e:
        logger.error(f"Error: {user_message(e)}")
        sys.exit(2)
    except KeyboardInterrupt:
        logger.error("Interrupted: the running steps were stopped; re-run the same command to resume them")
        sys.exit(130)
