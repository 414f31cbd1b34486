"""Run one job: its unfinished steps in sequence as subprocesses, their console appended to the job's log.

A finished step (``results.json``) is skipped; an unfinished one is simply run again with the same command, and
``train.py`` resumes it from its folder. The first failing step ends the job (later steps need its output).
"""
from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass
from typing import IO, Optional

from vlprompt.sweep.jobs import Job

_running: set[subprocess.Popen] = set()
_lock = threading.Lock()
ERROR_RE = re.compile(r"^(?:\[[^\]]*\]:?\s*)?(Error: .*)$", re.M)  # train.py's one-line user errors


@dataclass(frozen=True)
class JobResult:
    """How a job ended: ``returncode`` 0 when every step finished; else the failed step and its ``Error:`` line."""
    name: str
    returncode: int
    log: str
    seconds: float
    ran: int = 0
    failed_step: str = ""
    error: str = ""

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def run_job(job: Job, env: Optional[dict[str, str]] = None) -> JobResult:
    """Run the unfinished steps of ``job`` (environment ``env``, default this process's)."""
    start = time.time()
    os.makedirs(os.path.dirname(job.log), exist_ok=True)
    ran = 0
    with open(job.log, "a", encoding="utf-8") as log:
        offset = log.tell()
        log.write(f"=== {time.strftime('%Y-%m-%d %H:%M:%S')} job {job.name}\n")
        for step in job.steps:
            if step.finished:
                log.write(f"--- {step.name}: finished, skipped ({step.folder})\n")
                continue
            log.write(f"--- {step.name}: {step.state} ({step.folder})\n$ {' '.join(step.command)}\n")
            log.flush()
            code = _call(step.command, job.cwd, env, log)
            ran += 1
            if code != 0 or not step.finished:
                log.write(f"--- {step.name}: exit code {code}\n")
                log.flush()
                error = last_error(job.log, offset) or ("" if code else f"no results.json in {step.folder}")
                return JobResult(job.name, code or 1, job.log, time.time() - start, ran, step.name, error)
    return JobResult(job.name, 0, job.log, time.time() - start, ran)


def _call(command: list[str], cwd: str, env: Optional[dict[str, str]], log: IO[str]) -> int:
    proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=subprocess.STDOUT)
    with _lock:
        _running.add(proc)
    try:
        return proc.wait()
    finally:
        with _lock:
            _running.discard(proc)


def terminate_running() -> None:
    """SIGTERM the steps running in this process (on requeue or Ctrl-C); they resume from their folders."""
    with _lock:
        procs = list(_running)
    for proc in procs:
        proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def last_error(log_path: str, offset: int = 0) -> str:
    """The last ``Error: ...`` line written to ``log_path`` after byte ``offset`` ("" if none)."""
    try:
        with open(log_path, encoding="utf-8", errors="replace") as f:
            f.seek(offset)
            found = ERROR_RE.findall(f.read())
    except OSError:
        return ""
    return found[-1].strip() if found else ""
