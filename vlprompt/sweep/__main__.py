"""``python -m vlprompt.sweep``: see :mod:`vlprompt.sweep.cli`."""
import logging

from vlprompt.sweep.cli import run

if __name__ == "__main__":
    logging.raiseExceptions = False  # `--dry-run | head`: no traceback per line once the pipe is closed
    run()
