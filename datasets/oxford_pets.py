"""Oxford-IIIT Pets: 37 cat and dog breeds, CoOp's split (built from the annotations when absent)."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.datum import Datum
from vlprompt.data.folders import split_trainval
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class OxfordPets(SplitJsonDataset):
    dataset_dir = "oxford_pets"
    image_subdir = "images"
    split_file = "split_zhou_OxfordPets.json"
    layout = """\
oxford_pets/
  images/
    Abyssinian_1.jpg ...
  annotations/
    trainval.txt, test.txt  (only needed to rebuild the split)
  split_zhou_OxfordPets.json"""
    source = ("https://www.robots.ox.ac.uk/~vgg/data/pets/ (images.tar.gz and annotations.tar.gz); "
              "split file: split_zhou_OxfordPets.json, linked in CoOp's DATASETS.md")

    def read_annotations(self, split_file: str) -> list[Datum]:
        self.require(f"annotations/{split_file}")
        items = []
        with open(self.path("annotations", split_file)) as f:
            for line in f:
                imname, label, _species, _ = line.strip().split(" ")
                breed = "_".join(imname.split("_")[:-1]).lower()
                items.append(Datum(impath=self.path(self.image_subdir, imname + ".jpg"), label=int(label) - 1,
                                   classname=breed))
        return items

    def build_split(self, rng: random.Random):
        trainval = self.read_annotations("trainval.txt")
        test = self.read_annotations("test.txt")
        train, val = split_trainval(trainval, rng)
        return train, val, test
