"""stdlib logging to stdout and ``OUTPUT_DIR/log.txt`` (later attempts: ``log.txt-<date-time>``, as Dassl),
message-only so lines keep the published formats."""
from __future__ import annotations

import logging
import os
import sys
import time

LOGGER_NAME = "vlprompt"
_FORMAT = logging.Formatter("%(message)s")


def new_log_path(output_dir: str) -> str:
    """``output_dir/log.txt``, or, when that exists (an earlier attempt), a new ``log.txt-<date-time>`` as Dassl
    writes: one file per attempt, none appended to."""
    path = os.path.join(output_dir, "log.txt")
    if not os.path.exists(path):
        return path
    stamped = f"{path}-{time.strftime('%Y-%m-%d-%H-%M-%S')}"
    n = 1
    while os.path.exists(stamped if n == 1 else f"{stamped}-{n}"):  # two attempts within one second
        n += 1
    return stamped if n == 1 else f"{stamped}-{n}"


def log_files(folder: str) -> list[str]:
    """A run folder's log files, oldest attempt first: ``log.txt`` then the ``log.txt-<date-time>`` ones."""
    first = os.path.join(folder, "log.txt")
    later = sorted(f for f in os.listdir(folder) if f.startswith("log.txt-")) if os.path.isdir(folder) else []
    return ([first] if os.path.isfile(first) else []) + [os.path.join(folder, f) for f in later]


def setup_logger(output_dir: str = "", level: int = logging.INFO) -> logging.Logger:
    """Log ``vlprompt.*`` (and plugin) messages to stdout and, if ``output_dir`` is given, to a new log file there
    (:func:`new_log_path`)."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_vlprompt", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(new_log_path(output_dir), mode="w", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(_FORMAT)
        h.setLevel(level)
        h._vlprompt = True  # type: ignore[attr-defined]
        root.addHandler(h)
    return logging.getLogger(LOGGER_NAME)
