"""DataManager: builds the dataset reader, the transforms and the three loaders of a run."""
from __future__ import annotations

import logging
from typing import Callable, Sequence

import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset, RandomSampler, SequentialSampler
from yacs.config import CfgNode

from vlprompt.registry import DATASET_REGISTRY

from .dataset_base import DatasetBase
from .datum import Datum
from .transforms import build_transform

logger = logging.getLogger(__name__)


class DatasetWrapper(Dataset):
    """Reads one Datum: ``{"img": Tensor, "label": int, "index": int, "impath": str}``."""

    def __init__(self, items: Sequence[Datum], transform: Callable | None) -> None:
        self.items = list(items)
        self.transform = transform

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict:
        item = self.items[index]
        try:
            img = Image.open(item.impath).convert("RGB")
        except FileNotFoundError as e:
            raise FileNotFoundError(
                f"Image {item.impath} (label {item.label}, class '{item.classname}') is listed by the dataset's "
                "split file but does not exist: the dataset folder is incomplete, or DATASET.ROOT points "
                "to another copy."
            ) from e
        if self.transform is not None:
            img = self.transform(img)
        return {"img": img, "label": item.label, "index": index, "impath": item.impath}


def build_loader(items: Sequence[Datum], transform: Callable | None, batch_size: int, is_train: bool,
                 num_workers: int, sampler: str = "RandomSampler") -> DataLoader:
    dataset = DatasetWrapper(items, transform)
    if sampler == "RandomSampler":
        sampler_obj = RandomSampler(dataset)
    elif sampler == "SequentialSampler":
        sampler_obj = SequentialSampler(dataset)
    else:
        raise ValueError(f"Unknown sampler '{sampler}'; use RandomSampler or SequentialSampler.")
    return DataLoader(
        dataset,
        batch_size=batch_size,
        sampler=sampler_obj,
        num_workers=num_workers,
        drop_last=is_train and len(dataset) >= batch_size,  # as Dassl
        pin_memory=torch.cuda.is_available(),
        persistent_workers=num_workers > 0,
    )


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
        self.train_loader_x = (
            build_loader(dataset.train_x, self.tfm_train, dl.TRAIN_X.BATCH_SIZE, True, workers, dl.TRAIN_X.SAMPLER)
            if dataset.train_x else None
        )
        self.val_loader = (
            build_loader(dataset.val, self.tfm_test, dl.TEST.BATCH_SIZE, False, workers, dl.TEST.SAMPLER)
            if dataset.val else None
        )
        self.test_loader = build_loader(dataset.test, self.tfm_test, dl.TEST.BATCH_SIZE, False, workers,
                                        dl.TEST.SAMPLER)
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
