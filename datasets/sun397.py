"""SUN397: 397 scene classes, CoOp's split (built from ClassName.txt and Training_01/Testing_01 when absent)."""
import os
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.datum import Datum
from vlprompt.data.folders import split_trainval
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class SUN397(SplitJsonDataset):
    dataset_dir = "sun397"
    image_subdir = "SUN397"
    split_file = "split_zhou_SUN397.json"
    layout = """\
sun397/
  SUN397/
    a/abbey/sun_aaalbzqrimafwbiv.jpg ...
  ClassName.txt, Training_01.txt, Testing_01.txt  (only needed to rebuild the split)
  split_zhou_SUN397.json"""
    source = ("images: https://vision.princeton.edu/projects/2010/SUN/ (SUN397.tar.gz; Partitions.zip has the "
              "txt files); split file: split_zhou_SUN397.json, linked in CoOp's DATASETS.md")

    def read_list(self, cname2lab: dict[str, int], text_file: str) -> list[Datum]:
        items = []
        with open(self.path(text_file)) as f:
            for line in f:
                imname = line.strip()[1:]  # drop the leading "/"
                folder = os.path.dirname(imname)
                words = folder.split("/")[1:][::-1]  # drop the letter folder; "indoor"/"outdoor" first
                items.append(Datum(impath=self.path(self.image_subdir, imname), label=self.label_of(cname2lab, folder, text_file),
                                   classname=" ".join(words)))
        return items

    def build_split(self, rng: random.Random):
        self.require("ClassName.txt", "Training_01.txt", "Testing_01.txt")
        with open(self.path("ClassName.txt")) as f:
            classnames = [line.strip()[1:] for line in f if line.strip()]
        cname2lab = {c: i for i, c in enumerate(classnames)}
        trainval = self.read_list(cname2lab, "Training_01.txt")
        test = self.read_list(cname2lab, "Testing_01.txt")
        train, val = split_trainval(trainval, rng)
        return train, val, test
