"""Renaming between a method's parameter names and the keys of its published checkpoints (the idea of timm's
``checkpoint_filter_fn``), so modules are named for what they are and files keep the published keys.

A key map is a sequence of ``(our prefix, published prefix)`` pairs; for each key the first pair whose prefix
matches is applied, and keys that match none are left as they are (e.g. the frozen CLIP weights a published
whole-model file also holds, which loading then reports and skips).
"""
from __future__ import annotations

from typing import Any, Iterable, Mapping, Sequence, TypeVar

from torch import nn

from .checkpoint import load_state_dict_checked

KeyMap = Sequence[tuple[str, str]]
V = TypeVar("V")


def rename(key: str, pairs: KeyMap, reverse: bool = False) -> str:
    for ours, published in pairs:
        src, dst = (published, ours) if reverse else (ours, published)
        if key.startswith(src):
            return dst + key[len(src):]
    return key


def to_published(state: Mapping[str, V], key_map: KeyMap) -> dict[str, V]:
    """Our state dict with the published keys."""
    return {rename(k, key_map): v for k, v in state.items()}


def from_published(state: Mapping[str, V], key_map: KeyMap) -> dict[str, V]:
    """A (published or ours) checkpoint's state dict with our keys."""
    return {rename(k, key_map, reverse=True): v for k, v in state.items()}


def load_published(module: nn.Module, state: Mapping[str, Any], key_map: KeyMap, source: str,
                   ignored: Iterable[str] = ()) -> None:
    """Load a checkpoint's state dict (published keys; ``ignored`` ones dropped first) into ``module``,
    checked by :func:`~vlprompt.engine.checkpoint.load_state_dict_checked`."""
    ignored = set(ignored)
    load_state_dict_checked(module, from_published({k: v for k, v in state.items() if k not in ignored}, key_map),
                            source)
