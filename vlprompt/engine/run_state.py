"""The state of a run, saved as one unit per epoch, and resuming it exactly.

Layout (Dassl's files, plus one manifest per epoch written last)::

    OUT/<module>/model.pth.tar-N    Dassl's dict for each checkpointed module (published code loads it)
    OUT/<module>/checkpoint         Dassl's pointer to the newest file
    OUT/<module>/model-best.pth.tar with TEST.FINAL_MODEL best_val
    OUT/run_state/state.pth.tar-N   the manifest: epoch, the SHA-256 of every module file of epoch N, the best
                                    val result, the RNG states (Python, NumPy, torch CPU/CUDA), the GradScaler
                                    and the method's extra state

An epoch exists for resuming only once its manifest is written and every file it names has the recorded hash,
so a kill between two module saves can never resume a half-saved epoch. Every random draw of an epoch
(sampler order, DataLoader worker seeds, augmentations, episodic tasks, picks) comes from the global
generators at or after the start of the epoch, and evaluation loaders draw from private generators, so
restoring the generators at an epoch boundary replays the next epochs bit for bit.
"""
from __future__ import annotations

import logging
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Optional

import numpy as np
import torch
from torch import nn

from vlprompt.errors import CheckpointError
from vlprompt.utils.files import atomic_write, sha256_file, torch_bytes

from .checkpoint import epoch_files, latest_checkpoint, load_checkpoint, save_checkpoint, write_pointer
from .failpoints import failpoint

logger = logging.getLogger(__name__)
STATE_DIR = "run_state"
STATE_FILE = re.compile(r"^state\.pth\.tar-(\d+)$")
FORMAT = 1


def capture_rng() -> dict[str, Any]:
    """The states of every global generator a run draws from."""
    np_state = np.random.get_state()
    state = {"python": random.getstate(),
             "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                       "has_gauss": int(np_state[3]), "cached_gaussian": float(np_state[4])},
             "torch": torch.get_rng_state()}
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def restore_rng(state: dict[str, Any]) -> None:
    random.setstate(_as_tuple(state["python"]))
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"],
                         n["cached_gaussian"]))
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _as_tuple(x: Any) -> Any:
    return tuple(_as_tuple(v) for v in x) if isinstance(x, (list, tuple)) else x


@dataclass
class ResumePoint:
    """What a run folder offers to resume from: the epoch, each module's checkpoint file, and (for runs
    saved by this version) the manifest with the run state; ``exact`` is False for Dassl-only folders."""
    epoch: int
    files: dict[str, str]
    manifest: dict[str, Any] = field(default_factory=dict)

    @property
    def exact(self) -> bool:
        return bool(self.manifest)


class RunCheckpointer:
    """Saves and finds the per-epoch unit of a run folder (see the module docstring)."""

    def __init__(self, output_dir: str, modules: Callable[[], dict[str, nn.Module]],
                 state_of: Callable[[str, nn.Module], dict[str, Any]] = lambda name, module: module.state_dict()
                 ) -> None:
        self.output_dir = output_dir
        self.modules = modules
        self.state_of = state_of  # what a module's file holds as its state_dict (published keys)

    # ---------------------------------------------------------------- saving
    def save_epoch(self, epoch: int, common: dict[str, Any], run_state: dict[str, Any]) -> None:
        """Save every module for ``epoch`` (1-based), then the manifest naming them, then Dassl's pointers.
        ``common``: what each Dassl module file also holds (optimizer, scheduler, val_result)."""
        files = {}
        for name, module in self.modules().items():
            digest = save_checkpoint({"state_dict": self.state_of(name, module), "epoch": epoch, **common},
                                     os.path.join(self.output_dir, name), pointer=False)
            files[name] = {"path": f"{name}/model.pth.tar-{epoch}", "sha256": digest}
            failpoint(f"saved:{name}:{epoch}")
        manifest = {"format": FORMAT, "epoch": epoch, "files": files, **run_state}
        os.makedirs(os.path.join(self.output_dir, STATE_DIR), exist_ok=True)
        atomic_write(self._state_path(self.output_dir, epoch), torch_bytes(manifest))
        failpoint(f"manifest:{epoch}")
        for name in files:
            write_pointer(os.path.join(self.output_dir, name), f"model.pth.tar-{epoch}")

    def save_best(self, epoch: int, common: dict[str, Any]) -> None:
        for name, module in self.modules().items():
            save_checkpoint({"state_dict": self.state_of(name, module), "epoch": epoch, **common},
                            os.path.join(self.output_dir, name), "model-best.pth.tar", pointer=False)

    def prune(self, keep: Callable[[int], bool]) -> None:
        """Remove the files of complete epochs older than the newest that ``keep`` does not want: the manifest
        first, so that a kill in between leaves only unreferenced module files (removed on a later call)."""
        states = self._state_files(self.output_dir)
        if not states:
            return
        newest = max(states)
        for epoch in sorted(states):
            if epoch < newest and not keep(epoch):
                os.remove(states.pop(epoch))
        for name in self.modules():
            for epoch, path in epoch_files(os.path.join(self.output_dir, name)).items():
                if epoch < newest and not keep(epoch) and epoch not in states:
                    os.remove(path)

    # ---------------------------------------------------------------- finding a resume point
    def find(self, directory: str) -> Optional[ResumePoint]:
        """The newest complete epoch of ``directory``, else the newest epoch that every module has a Dassl
        checkpoint of (a published run or a folder without manifests), else None."""
        states = self._state_files(directory)
        rejected = []
        for epoch in sorted(states, reverse=True):
            manifest, problem = self._check_manifest(directory, states[epoch])
            if problem is None:
                if rejected:
                    logger.warning(f"Skipped incomplete saves in {directory}: {'; '.join(rejected)}")
                return ResumePoint(epoch, {n: os.path.join(directory, f["path"]) for n, f in
                                           manifest["files"].items()}, manifest)
            rejected.append(problem)
        if rejected:
            raise CheckpointError(f"No complete checkpoint to resume in {directory}: {'; '.join(rejected)}. Restore "
                                  "the files, or start over with --overwrite (deletes this run's checkpoints).")
        return self._find_dassl(directory)

    def _check_manifest(self, directory: str, path: str) -> tuple[dict[str, Any], Optional[str]]:
        """The manifest at ``path`` and what makes it unusable (None if every file it names is intact)."""
        try:
            manifest = load_checkpoint(path, check_finite=False)
        except CheckpointError as e:
            return {}, str(e)
        names = set(self.modules())
        if set(manifest.get("files", {})) != names:
            return manifest, f"{path} names modules {sorted(manifest.get('files', {}))}, this trainer has {sorted(names)}"
        for f in manifest["files"].values():
            full = os.path.join(directory, f["path"])
            if not os.path.isfile(full):
                return manifest, f"{full} (named by {path}) is missing"
            if sha256_file(full) != f["sha256"]:
                return manifest, f"{full} differs from what {path} recorded (modified or partly written)"
        return manifest, None

    def _find_dassl(self, directory: str) -> Optional[ResumePoint]:
        names = list(self.modules())
        if not names:
            return None
        latest = {n: latest_checkpoint(os.path.join(directory, n)) for n in names}
        if any(p is None for p in latest.values()):
            return None
        per_module = [set(epoch_files(os.path.join(directory, n))) for n in names]
        common = set.intersection(*per_module)
        pointed = {int(p.rsplit("-", 1)[1]) for p in latest.values() if p.rsplit("-", 1)[1].isdigit()}
        if len(pointed) == 1 and pointed <= common:
            epoch = pointed.pop()
        elif common:  # modules saved at different epochs (a kill between two saves): the newest they share
            epoch = max(common)
        else:
            return None
        return ResumePoint(epoch, {n: os.path.join(directory, n, f"model.pth.tar-{epoch}") for n in names})

    @staticmethod
    def _state_path(directory: str, epoch: int) -> str:
        return os.path.join(directory, STATE_DIR, f"state.pth.tar-{epoch}")

    @staticmethod
    def _state_files(directory: str) -> dict[int, str]:
        folder = os.path.join(directory, STATE_DIR)
        if not os.path.isdir(folder):
            return {}
        return {int(m.group(1)): os.path.join(folder, f) for f in os.listdir(folder) if (m := STATE_FILE.match(f))}
