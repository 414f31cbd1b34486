"""DatasetBase: the three Datum lists of a run, and the reader skeleton shared by the split-json datasets."""
from __future__ import annotations

import logging
import os
import random
from typing import Sequence

from yacs.config import CfgNode

from .datum import Datum
from .splits import generate_fewshot, read_split, subsample_classes

logger = logging.getLogger(__name__)


class DatasetLayoutError(FileNotFoundError):
    """A dataset folder is missing or incomplete."""


class DatasetBase:
    """Holds ``train_x``, ``val`` and ``test`` (lists of Datum) and the class names.

    Readers subclass it and call ``super().__init__(train_x=..., val=..., test=...)``.
    ``classnames[i]`` is the name of label ``i``, taken from ``train_x`` (from ``test``
    for target-only datasets), as Dassl does.
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


class SplitJsonDataset(DatasetBase):
    """A reader for datasets described by a ``split_zhou_<Name>.json`` file (DTD, EuroSAT, ...).

    Subclasses set ``dataset_dir``, ``image_subdir``, ``split_file``, ``layout`` (the expected
    tree, shown when something is missing) and ``source`` (where the data and split come from),
    and may override ``build_split`` for datasets whose published reader creates the split json
    when it is absent.
    """

    image_subdir = "images"
    split_file = ""
    layout = ""
    source = ""

    def __init__(self, cfg: CfgNode) -> None:
        root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
        self.dataset_dir = os.path.join(root, type(self).dataset_dir)
        self.image_dir = os.path.join(self.dataset_dir, self.image_subdir)
        self.split_path = os.path.join(self.dataset_dir, self.split_file)
        # the published code draws from the global `random` right after seeding; same stream here
        rng = random.Random(cfg.SEED) if cfg.SEED >= 0 else random.Random()
        self.check_layout()
        if os.path.isfile(self.split_path):
            train, val, test = read_split(self.split_path, self.image_dir)
        else:
            train, val, test = self.build_split(rng)
        num_shots = cfg.DATASET.NUM_SHOTS
        if num_shots >= 1:
            train = generate_fewshot(train, num_shots, rng)
            val = generate_fewshot(val, min(num_shots, 4), rng)
        train, val, test = subsample_classes(train, val, test, subsample=cfg.DATASET.SUBSAMPLE_CLASSES)
        super().__init__(train_x=train, val=val, test=test)

    def build_split(self, rng: random.Random) -> tuple[list[Datum], list[Datum], list[Datum]]:
        raise self.layout_error(f"the split file {self.split_path} is missing")

    def check_layout(self) -> None:
        if not os.path.isdir(self.dataset_dir):
            raise self.layout_error(f"the folder {self.dataset_dir} does not exist")
        if not os.path.isdir(self.image_dir):
            raise self.layout_error(f"the image folder {self.image_dir} does not exist")

    def layout_error(self, what: str) -> DatasetLayoutError:
        name = type(self).__name__
        return DatasetLayoutError(
            f"Dataset {name}: {what}.\n"
            f"Expected layout under DATASET.ROOT ({os.path.dirname(self.dataset_dir)}):\n{self.layout.rstrip()}\n"
            f"Where to get it: {self.source}\n"
            "Set DATASET.ROOT (train.py --root) to the folder that holds "
            f"'{type(self).dataset_dir}/'. See docs/DATASETS.md."
        )
