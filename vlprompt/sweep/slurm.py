"""The SLURM executor (through ``submitit``): all jobs go out as one array job, each array task runs its job.

The task is a :class:`submitit.helpers.Checkpointable`: on preemption or timeout SLURM signals it (``--signal``),
its ``checkpoint`` stops the running step and requeues the same task, and running the steps again resumes each
run from its folder (``train.py`` does that by itself). ``cluster="local"``/``"debug"`` run the same path on this
machine (subprocesses / in-process), for tests and trials.
"""
from __future__ import annotations

import shutil
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import submitit

from vlprompt.errors import ConfigError
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.runner import JobResult, run_job, terminate_running

MAX_REQUEUE_ON_TIMEOUT = 20  # preemptions requeue without limit; timeouts this many times


@dataclass
class SlurmOptions:
    """sbatch settings of each array task; ``extra`` maps to ``#SBATCH --key=value`` lines."""
    folder: str
    partition: str = ""
    time_min: int = 720
    gpus_per_job: int = 1
    cpus_per_task: Optional[int] = None
    mem_gb: Optional[float] = None
    array_parallelism: Optional[int] = None
    extra: dict[str, str] = field(default_factory=dict)
    cluster: str = "auto"
    name: str = "vlprompt-sweep"


class SweepTask(submitit.helpers.Checkpointable):
    """One array task: run the job's unfinished steps; on preemption/timeout stop the step and requeue."""

    def __call__(self, job: Job) -> JobResult:
        return run_job(job)

    def checkpoint(self, job: Job) -> submitit.helpers.DelayedSubmission:
        terminate_running()
        return submitit.helpers.DelayedSubmission(self, job)


def resolve_cluster(cluster: str) -> str:
    """``auto`` -> ``slurm`` where ``sbatch`` and ``srun`` are on PATH; anything else is taken as given."""
    missing = [cmd for cmd in ("sbatch", "srun") if shutil.which(cmd) is None]
    if cluster == "slurm" or (cluster == "auto" and missing):
        if missing:
            raise ConfigError(f"--executor slurm but {' and '.join(missing)} not on PATH; run on a SLURM login "
                              "node, or pass --slurm-cluster local to try the SLURM path on this machine")
    return "slurm" if cluster == "auto" else cluster


def submit(jobs: list[Job], opts: SlurmOptions) -> list[submitit.Job]:
    """Submit ``jobs`` as one array (``--array=0-<n-1>%<array_parallelism>``); one submitit job per sweep job."""
    cluster = resolve_cluster(opts.cluster)
    executor = submitit.AutoExecutor(folder=opts.folder, cluster=cluster,
                                     slurm_max_num_timeout=MAX_REQUEUE_ON_TIMEOUT)
    params: dict[str, Any] = dict(name=opts.name, timeout_min=opts.time_min, gpus_per_node=opts.gpus_per_job,
                                  tasks_per_node=1, cpus_per_task=opts.cpus_per_task, mem_gb=opts.mem_gb,
                                  slurm_partition=opts.partition or None,
                                  slurm_array_parallelism=opts.array_parallelism,
                                  slurm_additional_parameters=dict(opts.extra) or None)
    executor.update_parameters(**{k: v for k, v in params.items() if v is not None})
    try:
        return executor.map_array(SweepTask(), jobs)
    except (submitit.core.utils.FailedJobError, submitit.core.utils.FailedSubmissionError) as e:
        first = (str(e).strip().splitlines() or ["no message"])[0]
        raise ConfigError(f"sbatch refused the array job ({first}); check --partition, --time, --gpus-per-job, "
                          "--mem-gb and --slurm-arg") from None


def wait(submitted: list[submitit.Job], jobs: list[Job], poll_s: float = 30,
         on_done: Optional[Callable[[JobResult], None]] = None) -> list[JobResult]:
    """Wait for the submitted jobs; a task that died outside ``train.py`` is a failure naming its stderr file."""
    by_id = {s.job_id: job for s, job in zip(submitted, jobs)}
    done: list[JobResult] = []
    for s in submitit.helpers.as_completed(submitted, poll_frequency=poll_s):
        job = by_id[s.job_id]
        try:
            result = s.result()
        except Exception as e:  # noqa: BLE001 - cancelled, node failure, out of memory: report, keep waiting
            first = (str(e).strip().splitlines() or [type(e).__name__])[0]
            result = JobResult(job.name, 1, str(s.paths.stderr), 0.0, 0, "", f"SLURM job {s.job_id}: {first}")
        done.append(result)
        if on_done is not None:
            on_done(result)
    return done
