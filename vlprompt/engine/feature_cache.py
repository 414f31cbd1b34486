"""Evaluation image features of a frozen, prompt-free image tower, computed once and reused.

A method whose test images pass only through the frozen image tower declares it by implementing
``Trainer.features_to_logits`` (ZeroshotCLIP, CoOp, CoCoOp, KgCoOp, MetaProto, InstancePrompt,
LinearProbeCLIP). Its evaluation then asks :meth:`FeatureCache.batches` for the features of each batch: from
memory (an earlier evaluation of the same split in this process: best-val evaluations, val and test), from a
file (another run: base and new, seeds, configs of the same dataset), or computed with the loader's own batches
and saved. The logits are the uncached loop's, bit for bit: the features are the tensors that loop computes
(the same batches of the same images on the same device in the same precision, kept in the dtype produced),
and ``features_to_logits`` sees the same batches.

A file is ``<dir>/<key>.pt`` (``{"features": [N, E], "labels": [N], ...}``, N = the split's images in order);
the key is the SHA-256 of everything the features depend on:

* a content digest of the image tower's parameters and buffers as used (after the precision cast; computed
  once per tower and process);
* the precision mode, the device (GPU model), the torch version and the float32 matmul settings;
* how the tower runs when that is not eagerly in the default layout: ``MODEL.COMPILE`` and channels_last
  (``vlprompt.engine.kernels.tower_mode``; compiled kernels may differ from eager ones in the last bits);
* the test transform (its ``repr``), the evaluation batch size and the number of processes (together: the
  batch boundaries);
* the bytes of every image file (SHA-256; never a path alone) and its label, in the split's order.

Files are written through a temporary file in the same folder and a rename, so two jobs that fill the same key
at once both compute and the last rename wins (identical content); a reader sees a whole file or none. A file
that cannot be read, or does not hold what its key says, is computed again (one log line), never an error.

Not cached (the evaluation loop runs as without the cache; logged once): ``DATALOADER.SKIP_BAD_IMAGES True``
(which images are skipped is known only while decoding them, so the key could not say), and a loader that does
not read the split in order (``DATALOADER.TEST.SAMPLER RandomSampler``).

With several processes (torchrun) evaluation is sharded: on a miss each process computes the features of its
slice and the slices are gathered (exactly, as raw bytes) so that process 0 writes the whole split; on a hit
each process takes its own slice. A hit counts only when every process has the features (one all-reduce).

Keys: ``MODEL.FEATURE_CACHE`` (train.py ``--no-feature-cache``), ``MODEL.FEATURE_CACHE_DIR`` ("" = the
``VLPROMPT_FEATURE_CACHE_DIR`` environment variable, else ``$XDG_CACHE_HOME/vlprompt/features``, else
``~/.cache/vlprompt/features``). Nothing evicts files: delete the folder to reclaim its space.
"""
from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Callable, Optional, Sequence

import numpy as np
import torch
from torch import Tensor, nn
from torch.utils.data import DataLoader, SequentialSampler
from tqdm import tqdm
from yacs.config import CfgNode

from vlprompt.data.manager import DatasetWrapper, available_cpus
from vlprompt.utils import distributed as dist
from vlprompt.utils.files import sha256_file

from .kernels import tower_mode

logger = logging.getLogger(__name__)
#: version of the file layout (part of every key)
FORMAT = 1
#: environment variable naming the default folder (used when MODEL.FEATURE_CACHE_DIR is "")
ENV_DIR = "VLPROMPT_FEATURE_CACHE_DIR"
_DIGEST_BYTES = 32

Batches = list[tuple[Tensor, Tensor]]


def default_dir() -> str:
    """``$VLPROMPT_FEATURE_CACHE_DIR``, else ``$XDG_CACHE_HOME/vlprompt/features``, else
    ``~/.cache/vlprompt/features``."""
    if os.environ.get(ENV_DIR):
        return os.environ[ENV_DIR]
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "vlprompt", "features")


_tower_digests: "weakref.WeakKeyDictionary[nn.Module, tuple[tuple, str]]" = weakref.WeakKeyDictionary()


def tower_digest(tower: nn.Module) -> str:
    """SHA-256 of ``tower``'s parameters and buffers (names, dtypes, shapes, bytes) as they are now, computed once
    per module and process; computed again if a tensor was replaced (a cast, a move) or written in place."""
    tensors = [*tower.named_parameters(), *tower.named_buffers()]
    state = tuple((name, t.data_ptr(), t.dtype, t.device, t._version) for name, t in tensors)
    memo = _tower_digests.get(tower)
    if memo is None or memo[0] != state:
        h = hashlib.sha256()
        for name, t in tensors:
            t = t.detach()
            h.update(f"{name}|{t.dtype}|{tuple(t.shape)}\n".encode())
            h.update(t.contiguous().reshape(-1).view(torch.uint8).cpu().numpy().data)
        memo = _tower_digests[tower] = state, h.hexdigest()
    return memo[1]


def file_digest(path: str) -> bytes:
    """SHA-256 (32 raw bytes) of the file's contents."""
    return bytes.fromhex(sha256_file(path))


def file_digests(paths: Sequence[str]) -> np.ndarray:
    """``[len(paths), 32]`` uint8: the files' SHA-256, read by a few threads (hashing releases the GIL)."""
    if not paths:
        return np.zeros((0, _DIGEST_BYTES), dtype=np.uint8)
    with ThreadPoolExecutor(max_workers=max(1, min(8, 2 * available_cpus()))) as pool:
        raw = b"".join(pool.map(file_digest, paths))
    return np.frombuffer(raw, dtype=np.uint8).reshape(-1, _DIGEST_BYTES)


def numeric_environment(device: torch.device) -> dict[str, Any]:
    """What, besides the weights and the inputs, decides the bits of a forward pass."""
    env: dict[str, Any] = {"device": device.type, "torch": torch.__version__,
                           "matmul_precision": torch.get_float32_matmul_precision()}
    if device.type == "cuda":
        env.update(gpu=torch.cuda.get_device_name(device), cuda=torch.version.cuda,
                   cudnn=torch.backends.cudnn.version(), tf32=(torch.backends.cuda.matmul.allow_tf32,
                                                              torch.backends.cudnn.allow_tf32))
    return env


def _everywhere(flag: bool, device: torch.device) -> bool:
    """``flag`` holds in every process (one all-reduce; no communication with one process)."""
    if dist.world_size() == 1:
        return flag
    return float(dist.all_reduce_sum(torch.tensor([0.0 if flag else 1.0], device=device)).item()) == 0.0


def _gather_exact(t: Tensor, device: torch.device) -> Tensor:
    """Every process's rows of ``t`` ``[n, ...]`` in rank order, bit for bit whatever the dtype and backend (the
    rows travel as bytes)."""
    if dist.world_size() == 1:
        return t
    raw = t.contiguous().view(torch.uint8) if t.dtype != torch.uint8 else t.contiguous()
    return dist.gather_rows(raw.to(device)).cpu().view(t.dtype)


@dataclass
class Entry:
    """The features ``[N, E]`` (dtype as computed) and labels ``[N]`` of a whole split, on the CPU, and how
    long computing them took (seconds)."""

    features: Tensor
    labels: Tensor
    seconds: float


def save_entry(path: str, entry: Entry, parts: dict[str, Any]) -> None:
    """Write ``entry`` to ``path`` atomically: a temporary file in the same folder, then a rename (two writers of
    the same key each rename a whole file of their own; the last one wins). Raises OSError."""
    folder = os.path.dirname(path)
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save({"format": FORMAT, "parts": parts, "features": entry.features.contiguous(),
                        "labels": entry.labels, "seconds": float(entry.seconds)}, f)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def load_entry(path: str, labels: Tensor) -> Entry:
    """The entry saved at ``path``, checked against the split's ``labels``; raises on anything else."""
    data = torch.load(path, map_location="cpu", weights_only=True)
    features, stored = data["features"], data["labels"]
    if data.get("format") != FORMAT or not isinstance(features, Tensor) or features.dim() != 2:
        raise ValueError("not a feature cache file of this version")
    if features.shape[0] != labels.shape[0] or not torch.equal(stored, labels):
        raise ValueError(f"it holds {features.shape[0]} rows for {labels.shape[0]} images")
    return Entry(features, stored, float(data.get("seconds", 0.0)))


class FeatureCache:
    """The feature cache of one trainer: its image tower, precision and device, and the entries of this run.

    Args:
        cfg: the run's config (``MODEL.FEATURE_CACHE``, ``MODEL.FEATURE_CACHE_DIR``, ``DATALOADER.SKIP_BAD_IMAGES``).
        tower: the frozen image tower whose weights the features depend on.
        precision: the precision mode (``fp16``, ``fp32``, ``amp``, ``bf16``) the tower runs in.
        device: where the features are computed.
    """

    def __init__(self, cfg: CfgNode, tower: nn.Module, precision: str, device: torch.device) -> None:
        self.enabled = bool(cfg.MODEL.FEATURE_CACHE)
        self.directory = os.path.abspath(os.path.expanduser(cfg.MODEL.FEATURE_CACHE_DIR or default_dir()))
        self.skip_bad_images = bool(cfg.DATALOADER.SKIP_BAD_IMAGES)
        self.tower, self.precision, self.device = tower, precision, device
        self._memory: dict[str, Entry] = {}
        self._keys: "weakref.WeakKeyDictionary[DataLoader, tuple[str, dict]]" = weakref.WeakKeyDictionary()
        self._told: set[str] = set()

    def path(self, key: str) -> str:
        return os.path.join(self.directory, f"{key}.pt")

    def unusable(self, loader: DataLoader) -> Optional[str]:
        """Why the features of ``loader`` cannot be cached, or None."""
        if not self.enabled:
            return "MODEL.FEATURE_CACHE False"
        if self.skip_bad_images:
            return ("DATALOADER.SKIP_BAD_IMAGES True: which images are skipped is known only while reading them")
        data = loader.dataset
        if not isinstance(data, DatasetWrapper) or data.transform is None or len(data) == 0:
            return "the loader does not read a list of images through a transform"
        if not isinstance(loader.sampler, (SequentialSampler, range)) or loader.batch_size is None or loader.drop_last:
            return "the loader does not read the images in order (DATALOADER.TEST.SAMPLER SequentialSampler does)"
        return None

    def key(self, loader: DataLoader) -> Optional[tuple[str, dict[str, Any]]]:
        """The key of ``loader``'s features and what it hashes, memoised per loader; None when some image file
        cannot be read (the evaluation loop then reports it as without the cache)."""
        if loader in self._keys:
            return self._keys[loader]
        items = loader.dataset.items
        start, stop = dist.shard_bounds(len(items))
        try:  # each process hashes its slice of the files
            local, ok = file_digests([d.impath for d in items[start:stop]]), True
        except OSError:
            local, ok = np.zeros((stop - start, _DIGEST_BYTES), dtype=np.uint8), False
        if not _everywhere(ok, self.device):
            return None
        digests = _gather_exact(torch.from_numpy(local.copy()), self.device)
        images = hashlib.sha256(digests.numpy().tobytes())
        images.update(json.dumps([d.label for d in items]).encode())
        parts = {"format": FORMAT, "tower": tower_digest(self.tower), **tower_mode(self.tower),
                 "precision": self.precision, **numeric_environment(self.device),
                 "transform": repr(loader.dataset.transform),
                 "batch_size": loader.batch_size, "processes": dist.world_size(), "images": images.hexdigest(),
                 "count": len(items)}
        parts = json.loads(json.dumps(parts, sort_keys=True))  # plain types (torch.__version__ is a str subclass)
        key = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
        self._keys[loader] = key, parts
        return key, parts

    def batches(self, loader: DataLoader, split: str, compute: Callable[[Tensor], Tensor]) -> Optional[Batches]:
        """This process's evaluation batches of ``loader`` as ``(features, labels)`` CPU tensors, the batches the
        loader yields; None when the features of ``loader`` are not cached (the caller runs its loop).

        ``compute(images)`` gives the features ``[B, E]`` of a batch of images on the device; it is called, in
        the caller's autocast and no-grad context, for every batch of the loader when no process has them yet.
        """
        why = self.unusable(loader)
        if why is not None:
            if self.enabled and why not in self._told:
                self._told.add(why)
                logger.info(f"Feature cache: not used ({why})")
            return None
        started = time.time()
        keyed = self.key(loader)
        if keyed is None:
            return None
        key, parts = keyed
        items = loader.dataset.items
        labels = torch.tensor([d.label for d in items], dtype=torch.long)
        path = self.path(key)
        entry, source = self._memory.get(key), "memory"
        if entry is None and os.path.exists(path):
            source = "file"
            try:
                entry = load_entry(path, labels)
            except Exception as e:  # noqa: BLE001 (any unreadable or foreign file is computed again)
                why = f"{type(e).__name__}: {e}".splitlines()[0][:200]
                logger.warning(f"Feature cache: {path} is unreadable ({why}); computing the features again")
        if not _everywhere(entry is not None, self.device):
            entry = self._compute(loader, split, compute, labels)
            saved = self._save(path, entry, parts) if dist.is_main() else True
            where = f"saved to {path}" if saved else "kept for this run only"
            logger.info(f"Feature cache miss: computed the {split} features of {len(items):,} images in "
                        f"{entry.seconds:.1f}s; {where}")
        else:
            took = time.time() - started
            shown = f"read from {path}" if source == "file" else "reused from memory"
            logger.info(f"Feature cache hit ({source}): the {split} features of {len(items):,} images {shown} in "
                        f"{took:.2f}s (computing them took {entry.seconds:.1f}s; saved {entry.seconds - took:.1f}s)")
        self._memory[key] = entry
        start, stop = dist.shard_bounds(len(items))
        size = loader.batch_size
        return list(zip(entry.features[start:stop].split(size), entry.labels[start:stop].split(size)))

    def _compute(self, loader: DataLoader, split: str, compute: Callable[[Tensor], Tensor], labels: Tensor) -> Entry:
        """The features of every image of the split, each process computing its slice with the loader's batches."""
        started = time.time()
        feats = []
        for batch in tqdm(loader, desc=f"features {split}", leave=False, disable=None if dist.is_main() else True):
            if batch is None:  # only with DATALOADER.SKIP_BAD_IMAGES, which is not cached
                raise RuntimeError("an evaluation batch without images reached the feature cache")
            feats.append(compute(batch["img"].to(self.device, non_blocking=True)).detach().cpu())
        if dist.world_size() > 1:  # a process without images (fewer images than processes) needs the row layout
            layout = dist.broadcast_object((feats[0].dtype, tuple(feats[0].shape[1:])) if dist.is_main() else None)
            local = torch.cat(feats) if feats else torch.empty((0, *layout[1]), dtype=layout[0])
            features = _gather_exact(local, self.device)
        else:
            features = torch.cat(feats)
        if features.dim() != 2 or features.shape[0] != labels.shape[0]:
            raise RuntimeError(f"the feature cache got features of shape {tuple(features.shape)} for "
                               f"{labels.shape[0]} images")
        return Entry(features, labels, time.time() - started)

    def _save(self, path: str, entry: Entry, parts: dict[str, Any]) -> bool:
        try:
            save_entry(path, entry, parts)
            return True
        except OSError as e:
            logger.warning(f"Feature cache: cannot write {path} ({e.strerror or e}); set MODEL.FEATURE_CACHE_DIR to a "
                           "writable folder")
            return False
