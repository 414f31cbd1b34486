"""Checkpoints in Dassl's layout: ``OUT/<name>/model.pth.tar-<epoch>`` plus a ``checkpoint`` file naming the latest.

Writes are atomic (temporary file + rename), so a crash never leaves a truncated checkpoint.
"""
from __future__ import annotations

import logging
import os
import pickle
from typing import Any, Iterable

import torch
from torch import nn
from vlprompt.errors import CheckpointError  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)


def _atomic_write(path: str, write) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def save_checkpoint(state: dict[str, Any], directory: str, model_name: str = "") -> str:
    """Save ``state`` (``state_dict``, ``epoch`` (1-based), ``optimizer``, ``scheduler``, ``val_result``)."""
    os.makedirs(directory, exist_ok=True)
    fname = model_name or f"model.pth.tar-{state['epoch']}"
    path = os.path.join(directory, fname)
    _atomic_write(path, lambda tmp: torch.save(state, tmp))

    def write_pointer(tmp: str) -> None:
        with open(tmp, "w") as f:
            f.write(f"{fname}\n")

    _atomic_write(os.path.join(directory, "checkpoint"), write_pointer)
    logger.info(f"Checkpoint saved to {path}")
    return path


def load_checkpoint(path: str) -> dict[str, Any]:
    """Load a checkpoint dict. Published Dassl checkpoints pickle scheduler objects, which the safe
    ``weights_only`` loader refuses; those are loaded with the full unpickler."""
    if not os.path.isfile(path):
        raise CheckpointError(f"No checkpoint at {path}")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        logger.info(f"{path} holds pickled objects (published Dassl format); loading it with the full unpickler")
        return torch.load(path, map_location="cpu", weights_only=False)


def latest_checkpoint(directory: str) -> str | None:
    """The file named by ``directory/checkpoint``, if any."""
    pointer = os.path.join(directory, "checkpoint")
    if not os.path.isfile(pointer):
        return None
    with open(pointer) as f:
        name = f.readline().strip()
    path = os.path.join(directory, name)
    return path if os.path.isfile(path) else None


def load_state_dict_checked(module: nn.Module, state_dict: dict[str, torch.Tensor], source: str,
                            ignore: Iterable[str] = ()) -> None:
    """Load learnable weights, ignoring keys in ``ignore`` and the module's non-learnable ones.

    Shape mismatches raise a CheckpointError naming each parameter with both shapes; missing
    learnable parameters raise too, since evaluating with an untrained prompt would be silent garbage.
    """
    ignore = set(ignore)
    state_dict = {k[7:] if k.startswith("module.") else k: v for k, v in state_dict.items() if k not in ignore}
    own = module.state_dict()
    learnable = {n for n, p in module.named_parameters() if p.requires_grad}
    # tensors whose size the checkpoint decides (a submodule lists them in `checkpoint_sized` and resizes
    # itself in _load_from_state_dict), e.g. one prompt per training image of the run that saved it
    sized_by_checkpoint = {f"{name}.{key}" if name else key for name, m in module.named_modules()
                           for key in getattr(m, "checkpoint_sized", ())}
    mismatched = [f"  {k}: checkpoint {tuple(v.shape)} vs model {tuple(own[k].shape)}"
                  for k, v in state_dict.items()
                  if k in own and isinstance(v, torch.Tensor) and isinstance(own[k], torch.Tensor)
                  and k not in sized_by_checkpoint and tuple(v.shape) != tuple(own[k].shape)]
    if mismatched:
        raise CheckpointError(
            f"{source} does not fit this model (was it trained with another config, e.g. N_CTX, CSC, backbone "
            f"or number of classes?):\n" + "\n".join(mismatched))
    missing = sorted(learnable - set(state_dict))
    if missing:
        raise CheckpointError(f"{source} lacks the learnable parameter(s) {missing}; "
                              f"it holds {sorted(state_dict)}.")
    unexpected = sorted(k for k in state_dict if k not in own)
    if unexpected:
        groups: dict[str, int] = {}
        for k in unexpected:  # grouped by first name component: a whole saved model lists hundreds of frozen keys
            head = k.split(".", 1)[0] + (".*" if "." in k else "")
            groups[head] = groups.get(head, 0) + 1
        summary = ", ".join(f"{head} ({n})" if n > 1 else head for head, n in groups.items())
        logger.info(f"Ignoring {len(unexpected)} key(s) of {source} that this model does not have "
                    f"(not learned here, e.g. frozen CLIP weights saved with a whole model): {summary}")
    module.load_state_dict({k: v for k, v in state_dict.items() if k in own}, strict=False)
