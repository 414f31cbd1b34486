"""DatasetBase (the three Datum lists of a run) and the reader skeletons shared by the benchmark datasets."""
from __future__ import annotations

import logging
import os
import random
from typing import Sequence

from yacs.config import CfgNode

from .datum import Datum
from .splits import check_labels, generate_fewshot, read_split, save_split, subsample_classes
from vlprompt.errors import DatasetLayoutError  # noqa: F401 (re-exported)

logger = logging.getLogger(__name__)
Lists = tuple[list[Datum], list[Datum], list[Datum]]


class DatasetBase:
    """Holds ``train_x``, ``val`` and ``test`` (lists of Datum) and the class names.

    ``classnames[i]`` is the name of label ``i``, taken from ``train_x`` (from ``test`` when there
    is no training list), as Dassl does.
    """

    dataset_dir = ""

    def __init__(self, train_x: Sequence[Datum] = (), val: Sequence[Datum] = (), test: Sequence[Datum] = ()) -> None:
        self.train_x = list(train_x)
        self.val = list(val)
        self.test = list(test)
        source = self.train_x or self.test
        self.lab2cname = {d.label: d.classname for d in source}
        self.classnames = [self.lab2cname[y] for y in sorted(self.lab2cname)]
        self.num_classes = max(self.lab2cname) + 1 if self.lab2cname else 0


class DatasetReader(DatasetBase):
    """A benchmark reader: checks the layout, reads the full lists, then applies the run's few-shot
    sampling (``DATASET.NUM_SHOTS``, val with ``min(K, 4)``) and base/new subsampling, drawing from
    ``random.Random(SEED)`` exactly as the published code draws from its freshly seeded global ``random``.

    Subclasses set ``dataset_dir`` (the folder under DATASET.ROOT), ``layout`` (the expected tree,
    shown in errors), ``source`` (where the data and split files come from) and implement ``read``.
    Class attributes: ``val_is_test`` (ImageNet: the val list is the test list, only train is sampled),
    ``target_only`` (ImageNet-V2/-Sketch/-A/-R: one list, used as train_x and test, never sampled).
    """

    layout = ""
    source = ""
    val_is_test = False
    target_only = False

    def __init__(self, cfg: CfgNode) -> None:
        self.root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(self.root, type(self).dataset_dir)
        if not os.path.isdir(self.dataset_dir):
            raise self.layout_error(f"the folder {self.dataset_dir} does not exist")
        rng = random.Random(cfg.SEED) if cfg.SEED >= 0 else random.Random()
        train, val, test = self.read(rng)
        check_labels({"train": train, "val": val, "test": test},
                     f"Dataset {type(self).__name__} (lists read from {self.dataset_dir})",
                     "Compare the dataset's list files with the expected layout in docs/DATASETS.md, "
                     "or download them again.")
        if self.target_only:
            super().__init__(train_x=test, test=test)
            return
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots >= 1:
            train = generate_fewshot(train, num_shots, rng)
            if not self.val_is_test:
                val = generate_fewshot(val, min(num_shots, 4), rng)
        subsample = cfg.DATASET.SUBSAMPLE_CLASSES
        if self.val_is_test:
            train, test = subsample_classes(train, test, subsample=subsample)
            val = test
        else:
            train, val, test = subsample_classes(train, val, test, subsample=subsample)
        super().__init__(train_x=train, val=val, test=test)

    def read(self, rng: random.Random) -> Lists:
        """Full train/val/test lists before any sampling (``rng`` only for building a missing split)."""
        raise NotImplementedError

    def path(self, *parts: str) -> str:
        return os.path.join(self.dataset_dir, *parts)

    def require(self, *relpaths: str) -> None:
        """Raise a layout error naming the first of ``relpaths`` (relative to the dataset folder) that is missing."""
        for rel in relpaths:
            if not os.path.exists(self.path(rel)):
                raise self.layout_error(f"{self.path(rel)} does not exist")

    def label_of(self, cname2lab: dict[str, int], name: str, listed_in: str) -> int:
        """The label of class ``name`` found in the list file ``listed_in``; a class missing from the class list
        is a layout error naming both."""
        if name not in cname2lab:
            raise self.layout_error(f"{self.path(listed_in)} names the class '{name}', which is not in the "
                                    "dataset's class list (a mismatched or edited annotation file)")
        return cname2lab[name]

    def layout_error(self, what: str) -> DatasetLayoutError:
        return DatasetLayoutError.of(type(self).__name__, what, self.root, self.layout, self.source,
                                     type(self).dataset_dir)


class SplitJsonDataset(DatasetReader):
    """Datasets described by CoOp's ``split_zhou_<Name>.json`` (paths relative to ``image_subdir``).

    Without the json, ``build_split`` makes the lists from the raw files as the published reader does
    (drawing from the run's rng) and the json is saved in the published format.
    """

    image_subdir = "images"
    split_file = ""

    def read(self, rng: random.Random) -> Lists:
        image_dir = self.path(self.image_subdir)
        split_path = self.path(self.split_file)
        if not os.path.isdir(image_dir):
            raise self.layout_error(f"the image folder {image_dir} does not exist")
        if os.path.isfile(split_path):
            return read_split(split_path, image_dir)
        train, val, test = self.build_split(rng)
        save_split(train, val, test, split_path, image_dir)
        logger.info(f"Saved split to {split_path}")
        return train, val, test

    def build_split(self, rng: random.Random) -> Lists:
        raise self.layout_error(f"the split file {self.path(self.split_file)} is missing")
