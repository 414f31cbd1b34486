"""Reading the raw layouts of the benchmark datasets the way the published readers do.

Every directory listing goes through ``listdir`` so that order-dependent readers (class folders
listed by the filesystem, as the published code does) have one place to look at.
"""
from __future__ import annotations

import os
import random
from collections import OrderedDict
from typing import Callable, Optional, Sequence

from vlprompt.errors import DatasetLayoutError

from .datum import Datum


def listdir(path: str, sort: bool = False) -> list[str]:
    """Non-hidden entries of ``path`` in the filesystem's order (or sorted), as Dassl's ``listdir_nohidden``."""
    items = [f for f in os.listdir(path) if not f.startswith(".")]
    return sorted(items) if sort else items


def split_per_class(groups: "OrderedDict[int, tuple[str, list[str]]]", rng: random.Random, p_trn: float = 0.5,
                    p_val: float = 0.2) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Shuffle each class's images with ``rng`` and cut them into train/val/test (rounded shares)."""
    train, val, test = [], [], []
    for label, (classname, impaths) in groups.items():
        impaths = list(impaths)
        rng.shuffle(impaths)
        n_total = len(impaths)
        n_train, n_val = round(n_total * p_trn), round(n_total * p_val)
        if min(n_train, n_val, n_total - n_train - n_val) <= 0:
            raise DatasetLayoutError(f"class '{classname}' has {n_total} images: too few to split into "
                                     "train/val/test. The dataset folder is incomplete (or DATASET.ROOT points to a "
                                     "partial copy): download the full dataset, or the published split file.")
        make = lambda ims: [Datum(impath=im, label=label, classname=classname) for im in ims]  # noqa: E731
        train += make(impaths[:n_train])
        val += make(impaths[n_train:n_train + n_val])
        test += make(impaths[n_train + n_val:])
    return train, val, test


def split_class_folders(image_dir: str, rng: random.Random, p_trn: float = 0.5, p_val: float = 0.2,
                        ignored: Sequence[str] = (), new_cnames: Optional[dict[str, str]] = None
                        ) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """``image_dir/<class>/<image>``: classes sorted by folder name and labelled 0..; images in listing order."""
    categories = sorted(c for c in listdir(image_dir) if c not in ignored)
    groups: OrderedDict[int, tuple[str, list[str]]] = OrderedDict()
    for label, category in enumerate(categories):
        folder = os.path.join(image_dir, category)
        name = (new_cnames or {}).get(category, category)
        groups[label] = (name, [os.path.join(folder, im) for im in listdir(folder)])
    return split_per_class(groups, rng, p_trn, p_val)


def split_trainval(trainval: Sequence[Datum], rng: random.Random, p_val: float = 0.2) -> tuple[list[Datum], list[Datum]]:
    """Per label (in first-appearance order), a shuffled ``p_val`` share goes to val, the rest to train."""
    tracker: dict[int, list[int]] = {}
    for idx, item in enumerate(trainval):
        tracker.setdefault(item.label, []).append(idx)
    train, val = [], []
    for label, idxs in tracker.items():
        n_val = round(len(idxs) * p_val)
        if n_val <= 0:
            raise DatasetLayoutError(f"label {label} has {len(idxs)} train+val images: too few to hold out a val "
                                     "share. The dataset's lists are incomplete (or DATASET.ROOT points to a partial "
                                     "copy): download the full dataset, or the published split file.")
        rng.shuffle(idxs)
        for n, idx in enumerate(idxs):
            (val if n < n_val else train).append(trainval[idx])
    return train, val


def read_wnid_classnames(path: str) -> "OrderedDict[str, str]":
    """ImageNet's ``classnames.txt``: ``<wnid> <class name>`` per line -> {wnid: name} in file order."""
    names: OrderedDict[str, str] = OrderedDict()
    with open(path, encoding="utf-8") as f:
        for line in f:
            parts = line.strip().split(" ")
            if parts and parts[0]:
                names[parts[0]] = " ".join(parts[1:])
    return names


def read_class_folders(image_dir: str, classnames: dict[str, str], folders: Optional[Sequence[str]] = None,
                       folder_to_label: Optional[Callable[[int, str], int]] = None) -> list[Datum]:
    """One Datum per file of ``image_dir/<folder>/``; folders sorted by name (label = position) unless given."""
    folders = sorted(f for f in listdir(image_dir) if os.path.isdir(os.path.join(image_dir, f))) \
        if folders is None else folders
    items = []
    for label, folder in enumerate(folders):
        if folder not in classnames:
            raise DatasetLayoutError(f"{os.path.join(image_dir, folder)}: folder '{folder}' is not in classnames.txt. "
                                     "Use the ImageNet classnames.txt linked in CoOp's DATASETS.md, or remove the "
                                     "stray folder.")
        classname = classnames[folder]
        path = os.path.join(image_dir, folder)
        items += [Datum(impath=os.path.join(path, im), label=label, classname=classname) for im in listdir(path)]
    return items
