"""Oxford Flowers-102, CoOp's split (built from imagelabels.mat + cat_to_name.json when absent)."""
import json
import random
from collections import OrderedDict

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.folders import split_per_class
from vlprompt.data.matfile import loadmat
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class OxfordFlowers(SplitJsonDataset):
    dataset_dir = "oxford_flowers"
    image_subdir = "jpg"
    split_file = "split_zhou_OxfordFlowers.json"
    layout = """\
oxford_flowers/
  jpg/
    image_00001.jpg ...
  imagelabels.mat, cat_to_name.json  (only needed to rebuild the split)
  split_zhou_OxfordFlowers.json"""
    source = ("images and imagelabels.mat: https://www.robots.ox.ac.uk/~vgg/data/flowers/102/ (102flowers.tgz); "
              "cat_to_name.json and split_zhou_OxfordFlowers.json: linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        """Per label in image order, shuffled and cut 50/20/30 (labels 1-based in the .mat)."""
        self.require("imagelabels.mat", "cat_to_name.json")
        labels = loadmat(self.path("imagelabels.mat"))["labels"][0]
        with open(self.path("cat_to_name.json")) as f:
            lab2cname = json.load(f)
        by_label: OrderedDict[int, list[str]] = OrderedDict()
        for i, label in enumerate(labels):
            by_label.setdefault(int(label), []).append(self.path(self.image_subdir, f"image_{i + 1:05d}.jpg"))
        groups = OrderedDict((y - 1, (lab2cname[str(y)], paths)) for y, paths in by_label.items())
        return split_per_class(groups, rng)
