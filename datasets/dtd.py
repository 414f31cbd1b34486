"""Describable Textures (DTD): 47 texture classes, read through CoOp's split_zhou_DescribableTextures.json."""
from __future__ import annotations

import os
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.datum import Datum
from vlprompt.data.splits import save_split
from vlprompt.registry import DATASET_REGISTRY


def split_class_folders(image_dir: str, rng: random.Random, p_trn: float = 0.5, p_val: float = 0.2,
                        ignored: tuple[str, ...] = ()) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Split ``image_dir/<class>/<image>`` folders per class into train/val/test, as CoOp's readers.

    Classes are sorted by name and labelled 0..; each class's files are shuffled with ``rng``.
    """
    categories = sorted(c for c in os.listdir(image_dir) if not c.startswith(".") and c not in ignored)
    train, val, test = [], [], []
    for label, category in enumerate(categories):
        folder = os.path.join(image_dir, category)
        images = [os.path.join(folder, f) for f in os.listdir(folder) if not f.startswith(".")]
        rng.shuffle(images)
        n_total = len(images)
        n_train = round(n_total * p_trn)
        n_val = round(n_total * p_val)
        n_test = n_total - n_train - n_val
        if min(n_train, n_val, n_test) <= 0:
            raise ValueError(f"{folder}: {n_total} images are too few to split into train/val/test.")
        make = lambda ims: [Datum(impath=im, label=label, classname=category) for im in ims]  # noqa: E731
        train += make(images[:n_train])
        val += make(images[n_train:n_train + n_val])
        test += make(images[n_train + n_val:])
    return train, val, test


@DATASET_REGISTRY.register()
class DescribableTextures(SplitJsonDataset):
    dataset_dir = "dtd"
    image_subdir = "images"
    split_file = "split_zhou_DescribableTextures.json"
    layout = """\
dtd/
  images/
    banded/banded_0002.jpg ...
    blotchy/ ...            (47 class folders)
  split_zhou_DescribableTextures.json"""
    source = ("images: https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd-r1.0.1.tar.gz, rename the extracted folder "
              "to dtd); split file: the split_zhou_DescribableTextures.json linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        """No split json: split the class folders 50/20/30 and save the json, as the published reader."""
        train, val, test = split_class_folders(self.image_dir, rng)
        save_split(train, val, test, self.split_path, self.image_dir)
        return train, val, test
