"""Named points where tests kill the process (``kill -9``) to check that every interruption resumes exactly.

``VLPROMPT_FAILPOINT=<name>`` (e.g. ``step:2:3``, ``saved:prompt_learner:2``, ``manifest:2``, ``eval:test``)
makes the process SIGKILL itself when it reaches that point; unset, a failpoint is one dict lookup.
"""
from __future__ import annotations

import os
import signal

ENV = "VLPROMPT_FAILPOINT"


def failpoint(name: str) -> None:
    if os.environ.get(ENV) == name:
        os.kill(os.getpid(), signal.SIGKILL)
