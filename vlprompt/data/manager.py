"""DataManager: builds the dataset reader, the transforms and the three loaders of a run."""
from __future__ import annotations

import logging
import os
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import (BatchSampler, DataLoader, Dataset, RandomSampler, Sampler, SequentialSampler,
                              default_collate)
from yacs.config import CfgNode

from vlprompt.errors import BadImageError, ConfigError
from vlprompt.registry import DATASET_REGISTRY
from vlprompt.utils.distributed import rank, shard_bounds, world_size

from .dataset_base import DatasetBase
from .datum import Datum
from .decoded_images import DecodedImages
from .sharding import ShardedBatchSampler
from .transforms import build_transform

logger = logging.getLogger(__name__)


class DatasetWrapper(Dataset):
    """Reads one Datum: ``{"img": Tensor, "label": int, "index": int, "impath": str}``.

    An image that cannot be read or decoded (missing, corrupt, truncated) raises a BadImageError naming
    the file. With ``skip_bad_images`` (``DATALOADER.SKIP_BAD_IMAGES``) it is logged in one warning line
    and ``None`` is returned instead; :func:`collate_skipping_bad` drops such items from the batch.
    A key is a dataset index, or ``(index, seed)``: the transform then draws from that seed alone
    (per-image seeds, :mod:`vlprompt.data.sharding`), leaving the process's generator as it was.
    """

    def __init__(self, items: Sequence[Datum], transform: Callable | None, skip_bad_images: bool = False,
                 decoded: DecodedImages | None = None) -> None:
        self.items = list(items)
        self.transform = transform
        self.skip_bad_images = skip_bad_images
        self.decoded = decoded

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, key: int | tuple[int, int]) -> dict | None:
        index, seed = key if isinstance(key, tuple) else (key, None)
        item = self.items[index]
        img = self.decoded.get(item.impath) if self.decoded is not None else None
        if img is None:
            img = self._read(item)
            if img is None:
                return None
        if self.transform is not None and seed is not None:
            with torch.random.fork_rng(devices=[]):  # the transforms draw from torch's CPU generator only
                torch.manual_seed(seed)
                img = self.transform(img)
        elif self.transform is not None:
            img = self.transform(img)
        return {"img": img, "label": item.label, "index": index, "impath": item.impath}

    def _read(self, item: Datum) -> Image.Image | None:
        """The decoded RGB image of ``item``; None when it is unreadable and skipped."""
        try:
            with Image.open(item.impath) as f:  # PIL opens lazily: a corrupt or truncated file fails in convert
                img = f.convert("RGB")
        except Exception as e:  # noqa: BLE001 (any failure to read or decode the file is the file's fault)
            if isinstance(e, FileNotFoundError):
                reason = ("the file does not exist (it is listed by the dataset's split file: the dataset folder is "
                          "incomplete, or DATASET.ROOT points to another copy)")
            else:
                detail = str(e).replace(repr(item.impath), "").replace(item.impath, "").strip()  # named below
                reason = f"it is corrupt or truncated ({type(e).__name__}: {detail})"
            where = f"image {item.impath} (label {item.label}, class '{item.classname}')"
            if self.skip_bad_images:
                logger.warning(f"DATALOADER.SKIP_BAD_IMAGES: skipping unreadable {where}: {reason}")
                return None
            raise BadImageError(
                f"Cannot read {where}: {reason}. Replace or restore the file, or set "
                "DATALOADER.SKIP_BAD_IMAGES True to log and skip unreadable images."
            ) from e
        return img


def collate_skipping_bad(batch: Sequence[dict | None]) -> dict | None:
    """torch's ``default_collate`` of the items that were read; ``None`` items (images skipped by
    ``DATALOADER.SKIP_BAD_IMAGES``) are dropped, and a batch of only such items gives ``None``."""
    kept = [b for b in batch if b is not None]
    return default_collate(kept) if kept else None


def build_loader(items: Sequence[Datum], transform: Callable | None, batch_size: int, is_train: bool,
                 num_workers: int, sampler: str = "RandomSampler", skip_bad_images: bool = False,
                 per_image_seeds: bool = False, decoded: DecodedImages | None = None) -> DataLoader:
    """A training loader (this process's slice of every global batch of ``batch_size``) or an evaluation
    loader (this process's contiguous slice of the items, in order); ``decoded``: images decoded once."""
    dataset = DatasetWrapper(items, transform, skip_bad_images, decoded)
    if sampler == "RandomSampler":
        sampler_obj = RandomSampler(dataset)
    elif sampler == "SequentialSampler":
        sampler_obj = SequentialSampler(dataset)
    else:
        raise ConfigError(f"DATALOADER sampler '{sampler}' is unknown; use RandomSampler or SequentialSampler.")
    if is_train:
        batches = BatchSampler(sampler_obj, batch_size, drop_last=len(dataset) >= batch_size)  # as Dassl
        return train_loader(dataset, batches, num_workers, per_image_seeds)
    if world_size() > 1:  # the order of an evaluation does not matter: each process takes a contiguous slice
        sampler_obj = range(*shard_bounds(len(dataset)))
    return DataLoader(dataset, batch_size=batch_size, sampler=sampler_obj, **loader_options(False, num_workers))


def train_loader(dataset: Dataset, batches: Sampler, num_workers: int, per_image_seeds: bool = False,
                 unit: int = 1) -> DataLoader:
    """The training loader of ``batches`` (a sampler of global batches of dataset indices): with several
    processes, or per-image seeds, each process loads its slice of each batch (``unit``: indices that stay
    together, e.g. an episodic task); otherwise exactly the batches, as a single process always did."""
    if world_size() > 1 or per_image_seeds:
        batches = ShardedBatchSampler(batches, unit, world_size(), rank(), per_image_seeds)
    return DataLoader(dataset, batch_sampler=batches, **loader_options(True, num_workers))


def loader_options(is_train: bool, num_workers: int) -> dict:
    """DataLoader options shared by every loader, chosen so that a run resumes exactly: a training loader
    draws its order and its workers' seeds from the global torch generator when an epoch starts, with fresh
    workers every epoch (persistent workers would carry their RNG state across epochs, which no checkpoint
    can restore); evaluation loaders draw from a private generator, so evaluating never shifts training."""
    num_workers = capped_workers(num_workers)
    return dict(num_workers=num_workers, pin_memory=torch.cuda.is_available(),
                persistent_workers=num_workers > 0 and not is_train,
                generator=None if is_train else torch.Generator(), collate_fn=collate_skipping_bad)


def available_cpus() -> int:
    """CPUs this process may run on (its affinity mask, e.g. a SLURM allocation), else the machine's count."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


_capped_logged: set[tuple[int, int]] = set()


def capped_workers(requested: int) -> int:
    """``DATALOADER.NUM_WORKERS`` capped at the CPUs available, logged once (the published configs ask for 8
    workers, which on a small machine only adds processes and torch's warning)."""
    cpus = available_cpus()
    if requested <= cpus:
        return requested
    if (requested, cpus) not in _capped_logged:
        _capped_logged.add((requested, cpus))
        logger.info(f"DATALOADER.NUM_WORKERS {requested} capped at the {cpus} CPUs available (without "
                    "DATALOADER.PER_IMAGE_SEEDS True, training augmentations depend on the number of workers)")
    return cpus


class DataManager:
    """The dataset of ``cfg.DATASET.NAME`` with its loaders.

    Attributes: ``dataset``, ``train_loader_x``, ``val_loader`` (None without a val split),
    ``test_loader``, ``num_classes``, ``lab2cname``, ``classnames``.
    """

    def __init__(self, cfg: CfgNode, dataset: DatasetBase | None = None) -> None:
        if dataset is None:
            logger.info(f"Loading dataset: {cfg.DATASET.NAME}")
            dataset = DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
        self.dataset = dataset
        self.cfg = cfg
        self.tfm_train = build_transform(cfg, is_train=True)
        self.tfm_test = build_transform(cfg, is_train=False)
        dl = cfg.DATALOADER
        workers = dl.NUM_WORKERS
        if dl.CACHE_DECODED and dl.CACHE_DECODED_MB <= 0:
            raise ConfigError(f"DATALOADER.CACHE_DECODED_MB must be a positive number of MiB, got "
                              f"{dl.CACHE_DECODED_MB}; set e.g. DATALOADER.CACHE_DECODED_MB 4096.")
        #: the training images decoded once (DATALOADER.CACHE_DECODED), or None
        self.decoded = (DecodedImages(dataset.train_x, dl.CACHE_DECODED_MB, available_cpus())
                        if dl.CACHE_DECODED and dataset.train_x else None)
        self.train_loader_x = (
            build_loader(dataset.train_x, self.tfm_train, dl.TRAIN_X.BATCH_SIZE, True, workers, dl.TRAIN_X.SAMPLER,
                         dl.SKIP_BAD_IMAGES, dl.PER_IMAGE_SEEDS, self.decoded)
            if dataset.train_x else None
        )
        self.val_loader = (
            build_loader(dataset.val, self.tfm_test, dl.TEST.BATCH_SIZE, False, workers, dl.TEST.SAMPLER,
                         dl.SKIP_BAD_IMAGES)
            if dataset.val else None
        )
        self.test_loader = build_loader(dataset.test, self.tfm_test, dl.TEST.BATCH_SIZE, False, workers,
                                        dl.TEST.SAMPLER, dl.SKIP_BAD_IMAGES)
        self.num_classes = dataset.num_classes
        self.lab2cname = dataset.lab2cname
        self.classnames = dataset.classnames
        self.log_summary()

    def log_summary(self) -> None:
        d = self.dataset
        rows = [("Dataset", self.cfg.DATASET.NAME), ("# classes", f"{self.num_classes:,}"),
                ("# train_x", f"{len(d.train_x):,}"), ("# val", f"{len(d.val):,}"), ("# test", f"{len(d.test):,}")]
        width = max(len(k) for k, _ in rows)
        logger.info("\n".join(["---------  ----------"] + [f"{k:<{width}}  {v}" for k, v in rows]
                              + ["---------  ----------"]))
