"""Food-101: 101 dishes, CoOp's split."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.folders import split_class_folders
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class Food101(SplitJsonDataset):
    dataset_dir = "food-101"
    image_subdir = "images"
    split_file = "split_zhou_Food101.json"
    layout = """\
food-101/
  images/
    apple_pie/1005649.jpg ...
    baby_back_ribs/ ...     (101 class folders)
  split_zhou_Food101.json"""
    source = ("images: https://data.vision.ee.ethz.ch/cvl/datasets_extra/food-101/ (food-101.tar.gz); "
              "split file: split_zhou_Food101.json, linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        return split_class_folders(self.path(self.image_subdir), rng)
