"""stdlib logging to stdout and ``OUTPUT_DIR/log.txt``, message-only so lines keep the published formats."""
from __future__ import annotations

import logging
import os
import sys

LOGGER_NAME = "vlprompt"
_FORMAT = logging.Formatter("%(message)s")


def setup_logger(output_dir: str = "", level: int = logging.INFO) -> logging.Logger:
    """Log ``vlprompt.*`` (and plugin) messages to stdout and, if ``output_dir`` is given, append to its log.txt."""
    root = logging.getLogger()
    for h in list(root.handlers):
        if getattr(h, "_vlprompt", False):
            root.removeHandler(h)
            h.close()
    root.setLevel(level)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stdout)]
    if output_dir:
        os.makedirs(output_dir, exist_ok=True)
        handlers.append(logging.FileHandler(os.path.join(output_dir, "log.txt"), mode="a", encoding="utf-8"))
    for h in handlers:
        h.setFormatter(_FORMAT)
        h.setLevel(level)
        h._vlprompt = True  # type: ignore[attr-defined]
        root.addHandler(h)
    return logging.getLogger(LOGGER_NAME)
