"""The engine: ``Trainer`` and what runs it. ``Trainer`` is imported on first use, so that the torch-free modules
here (``run_folder``) serve ``train.py``'s checks before torch is imported."""
from typing import Any

__all__ = ["Trainer", "classification_loss"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from . import trainer

        return getattr(trainer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
