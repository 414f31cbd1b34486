"""The local executor: a pool of slots, one job per slot at a time.

With CUDA GPUs visible (``torch.cuda.device_count()``, which respects ``CUDA_VISIBLE_DEVICES``) a slot is a group
of ``gpus_per_job`` GPUs handed to the job through ``CUDA_VISIBLE_DEVICES``; without, ``workers`` CPU slots.
"""
from __future__ import annotations

import os
import queue
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Callable, Optional

from vlprompt.errors import ConfigError
from vlprompt.sweep.jobs import Job
from vlprompt.sweep.runner import JobResult, run_job, terminate_running


def gpu_groups(gpus_per_job: int) -> list[str]:
    """``CUDA_VISIBLE_DEVICES`` values of the GPU slots, e.g. ``["0,1", "2,3"]``; ``[]`` without CUDA GPUs."""
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1"):
        return []
    import torch

    count = torch.cuda.device_count()
    if count == 0:
        return []
    ids = [x.strip() for x in visible.split(",")][:count] if visible else [str(i) for i in range(count)]
    if gpus_per_job > count:
        raise ConfigError(f"--gpus-per-job {gpus_per_job} but only {count} GPU(s) are visible; pass "
                          f"--gpus-per-job {count} or fewer")
    return [",".join(ids[i:i + gpus_per_job]) for i in range(0, count - count % gpus_per_job, gpus_per_job)]


def run_local(jobs: list[Job], workers: Optional[int] = None, gpus_per_job: int = 1,
              on_done: Optional[Callable[[JobResult], None]] = None) -> list[JobResult]:
    """Run ``jobs`` (in order) on the local slots; ``on_done`` is called as each one ends."""
    groups = gpu_groups(gpus_per_job)
    slots: list[Optional[str]] = list(groups[:workers] if workers else groups) or [None] * (workers or 1)
    free: queue.Queue = queue.Queue()
    for slot in slots:
        free.put(slot)

    def work(job: Job) -> JobResult:
        slot = free.get()
        try:
            env = dict(os.environ) if slot is None else dict(os.environ, CUDA_VISIBLE_DEVICES=slot)
            return run_job(job, env)
        finally:
            free.put(slot)

    done: list[JobResult] = []
    with ThreadPoolExecutor(len(slots)) as pool:
        futures = [pool.submit(work, job) for job in jobs]
        try:
            for future in as_completed(futures):
                done.append(future.result())
                if on_done is not None:
                    on_done(done[-1])
        except KeyboardInterrupt:
            for future in futures:
                future.cancel()
            terminate_running()
            raise
    return done
