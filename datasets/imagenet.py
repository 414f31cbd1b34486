"""ImageNet-1k: ``images/train|val/<wnid>/`` with CoOp's classnames.txt; the val set is the test set."""
import random

from vlprompt.data.dataset_base import DatasetReader
from vlprompt.data.folders import read_class_folders, read_wnid_classnames
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class ImageNet(DatasetReader):
    dataset_dir = "imagenet"
    val_is_test = True  # as published: evaluate on the official val set, also used as the val split
    layout = """\
imagenet/
  images/
    train/n01440764/n01440764_10026.JPEG ...   (1000 wnid folders)
    val/n01440764/ILSVRC2012_val_00000293.JPEG ...   (1000 wnid folders)
  classnames.txt"""
    source = ("images: https://image-net.org/ (ILSVRC2012 train and val, val sorted into wnid folders); "
              "classnames.txt: linked in CoOp's DATASETS.md")

    def read(self, rng: random.Random):
        self.require("images/train", "images/val", "classnames.txt")
        classnames = read_wnid_classnames(self.path("classnames.txt"))
        train = read_class_folders(self.path("images", "train"), classnames)
        test = read_class_folders(self.path("images", "val"), classnames)
        return train, test, test
