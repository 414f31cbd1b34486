"""The exceptions that mean "the user's input is wrong": shown by train.py as one line (exit code 2).

Everything here derives from :class:`VLPromptError`; the command line catches only that base, so a real
bug (a bare ``KeyError``, ``ValueError``, ...) still shows its traceback. Each class also derives from the
builtin it refines, so ``except ValueError`` around library calls keeps working. This module imports
nothing from the package: every other module may import it.
"""
from __future__ import annotations


class VLPromptError(Exception):
    """Base of every user-facing error: the message names the file/key/value and says how to fix it."""


class ConfigError(VLPromptError, ValueError):
    """A config file, config key or value is wrong."""


class RegistryError(VLPromptError, KeyError):
    """An unknown (or duplicate) trainer or dataset name."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0]) if self.args else ""


class DatasetLayoutError(VLPromptError, FileNotFoundError):
    """A dataset folder is missing or incomplete."""

    @classmethod
    def of(cls, dataset: str, what: str, root: str, layout: str, source: str, folder: str) -> "DatasetLayoutError":
        """The message of a reader (``dataset``, its ``layout``, ``source`` and ``folder``) missing ``what``."""
        return cls(f"Dataset {dataset}: {what}.\n"
                   f"Expected layout under DATASET.ROOT ({root}):\n{layout.rstrip()}\n"
                   f"Where to get it: {source}\n"
                   f"Set DATASET.ROOT (train.py --root, DATA= in the scripts) to the folder that holds '{folder}/'. "
                   "See docs/DATASETS.md.")


class SplitFileError(VLPromptError, ValueError):
    """A split file is malformed or inconsistent."""


class BadImageError(VLPromptError, OSError):
    """An image listed by the dataset cannot be read (missing, corrupt or truncated)."""


class BackboneNotFoundError(VLPromptError, FileNotFoundError):
    """CLIP weights cannot be found or read."""


class CheckpointError(VLPromptError, RuntimeError):
    """A checkpoint is missing, unreadable, non-finite or does not fit the model."""


class RunFolderError(VLPromptError, RuntimeError):
    """The output folder holds another run, is in use, cannot be written, or --resume names nothing."""


class TrainingDivergedError(VLPromptError, FloatingPointError):
    """The loss or the learnable parameters became non-finite or exploded."""


def user_message(error: BaseException) -> str:
    """The message to show for ``error``. An error raised in a DataLoader worker is re-raised by torch
    with the worker's traceback folded into its message; keep only the original message."""
    text = str(error)
    marker = f"{type(error).__name__}: "
    if "Original Traceback" in text and marker in text:
        text = text.rsplit(marker, 1)[1]
    return text.strip()
