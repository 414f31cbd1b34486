"""Checkpoint files in Dassl's layout: ``OUT/<name>/model.pth.tar-<epoch>`` plus a ``checkpoint`` file naming
the latest. Writes are atomic (temporary file + rename), so a crash never leaves a truncated checkpoint; reads
turn an empty, truncated or non-finite file into a CheckpointError naming it.
"""
from __future__ import annotations

import logging
import os
import pickle
import re
import zipfile
from typing import Any, Iterable

import torch
from torch import nn

from vlprompt.errors import CheckpointError, ConfigError
from vlprompt.utils.files import atomic_write, sha256_bytes, torch_bytes

logger = logging.getLogger(__name__)
EPOCH_FILE = re.compile(r"^model\.pth\.tar-(\d+)$")


def save_checkpoint(state: dict[str, Any], directory: str, model_name: str = "", pointer: bool = True) -> str:
    """Save ``state`` (``state_dict``, ``epoch`` (1-based), ``optimizer``, ``scheduler``, ``val_result``) as
    ``directory/model_name`` (default ``model.pth.tar-<epoch>``); returns the SHA-256 of the bytes written.
    ``pointer``: also point ``directory/checkpoint`` at it (Dassl's "latest" file)."""
    os.makedirs(directory, exist_ok=True)
    fname = model_name or f"model.pth.tar-{state['epoch']}"
    data = torch_bytes(state)
    atomic_write(os.path.join(directory, fname), data)
    if pointer:
        write_pointer(directory, fname)
    logger.info(f"Checkpoint saved to {os.path.join(directory, fname)}")
    return sha256_bytes(data)


def write_pointer(directory: str, fname: str) -> None:
    atomic_write(os.path.join(directory, "checkpoint"), f"{fname}\n")


def load_checkpoint(path: str, check_finite: bool = True) -> dict[str, Any]:
    """Load a checkpoint dict. Published Dassl checkpoints pickle scheduler objects, which the safe
    ``weights_only`` loader refuses; those are loaded with the full unpickler."""
    if not os.path.isfile(path):
        raise CheckpointError(f"No checkpoint at {path}")
    if os.path.getsize(path) == 0:
        raise CheckpointError(f"Checkpoint {path} is empty (0 bytes), e.g. from a copy or save that was cut off; "
                              "delete it (or restore it from a backup) and re-run.")
    try:
        try:
            ckpt = torch.load(path, map_location="cpu", weights_only=True)
        except pickle.UnpicklingError as e:
            if "weights_only" not in str(e):
                raise
            logger.info(f"{path} holds pickled objects (published Dassl format); loading it with the full unpickler")
            ckpt = torch.load(path, map_location="cpu", weights_only=False)
    except (EOFError, OSError, RuntimeError, pickle.UnpicklingError, zipfile.BadZipFile) as e:
        raise CheckpointError(f"Checkpoint {path} is truncated or not a PyTorch checkpoint ({type(e).__name__}: "
                              f"{str(e).splitlines()[0][:120]}); delete it (or restore it from a backup) and re-run."
                              ) from None
    if not isinstance(ckpt, dict):
        raise CheckpointError(f"Checkpoint {path} holds a {type(ckpt).__name__}, not a checkpoint dict.")
    if check_finite and isinstance(ckpt.get("state_dict"), dict):
        bad = [k for k, v in ckpt["state_dict"].items()
               if isinstance(v, torch.Tensor) and v.is_floating_point() and not torch.isfinite(v).all()]
        if bad:
            raise CheckpointError(f"Checkpoint {path} holds non-finite values (NaN/inf) in {bad}: the run that saved "
                                  "it diverged. Use an earlier checkpoint (--load-epoch) or retrain with a lower "
                                  "OPTIM.LR / another PREC.")
    return ckpt


def epoch_files(directory: str) -> dict[int, str]:
    """``{epoch: path}`` of the ``model.pth.tar-<epoch>`` files in ``directory``."""
    if not os.path.isdir(directory):
        return {}
    return {int(m.group(1)): os.path.join(directory, f)
            for f in os.listdir(directory) if (m := EPOCH_FILE.match(f))}


def latest_checkpoint(directory: str) -> str | None:
    """The file named by ``directory/checkpoint``; if that pointer is missing or dangling, the newest
    ``model.pth.tar-<epoch>`` of the folder (None if there is none)."""
    pointer = os.path.join(directory, "checkpoint")
    if os.path.isfile(pointer):
        with open(pointer) as f:
            path = os.path.join(directory, f.readline().strip())
        if os.path.isfile(path):
            return path
        logger.warning(f"{pointer} names {path}, which does not exist; using the newest checkpoint of the folder")
    files = epoch_files(directory)
    return files[max(files)] if files else None


def init_weight_files(path: str, modules: Iterable[str], required: Iterable[str] = ()) -> dict[str, str]:
    """The checkpoint file of each module that MODEL.INIT_WEIGHTS ``path`` gives: ``{module name: file}``.

    ``path`` is a checkpoint file (loaded into the module named by its folder, e.g. ``<run>/prompt_learner/
    model.pth.tar-5``, or into the only module), a run folder (each ``<run>/<module>/`` gives its newest epoch,
    the file named by its ``checkpoint`` pointer) or a module folder. ``required`` modules must be found.
    """
    modules, key = list(modules), "MODEL.INIT_WEIGHTS"
    if os.path.isfile(path):
        parent = os.path.basename(os.path.dirname(os.path.abspath(path)))
        if parent in modules:
            return {parent: path}
        if len(modules) == 1:
            return {modules[0]: path}
        raise ConfigError(f"{key} {path} is one file, but this method checkpoints several modules ({modules}): "
                          f"give the run folder, or a file inside <run>/<module>/.")
    if not os.path.isdir(path):
        raise ConfigError(f"{key} {path}: no such file or folder; give a checkpoint file (e.g. "
                          f"<run>/{modules[0] if modules else 'prompt_learner'}/model.pth.tar-<epoch>) or the output "
                          "folder of a training run.")
    found = {name: f for name in modules if (f := latest_checkpoint(os.path.join(path, name)))}
    if not found and (os.path.basename(os.path.abspath(path)) in modules or len(modules) == 1):
        name = os.path.basename(os.path.abspath(path))
        name = name if name in modules else modules[0]
        found = {name: f} if (f := latest_checkpoint(path)) else {}
    missing = [name for name in required if name not in found]
    if not found or missing:
        expected = ", ".join(f"{name}/model.pth.tar-<epoch>" for name in (missing or modules))
        raise ConfigError(f"{key} {path}: no checkpoint of {missing or modules} in this folder (expected {expected} "
                          f"under it); it holds {sorted(os.listdir(path)) or 'nothing'}.")
    return found


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
