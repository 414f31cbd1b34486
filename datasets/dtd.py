"""Describable Textures (DTD): 47 texture classes, read through CoOp's split_zhou_DescribableTextures.json."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.folders import split_class_folders
from vlprompt.registry import DATASET_REGISTRY


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
    source = ("images: https://www.robots.ox.ac.uk/~vgg/data/dtd/ (dtd-r1.0.1.tar.gz, extracts to dtd/); "
              "split file: split_zhou_DescribableTextures.json, linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        """No split json: each class folder split 50/20/30, as the published reader."""
        return split_class_folders(self.path(self.image_subdir), rng)
