"""FGVC-Aircraft: 100 aircraft variants, read from the dataset's own variant lists (no split json)."""
import random

from vlprompt.data.dataset_base import DatasetReader
from vlprompt.data.datum import Datum
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class FGVCAircraft(DatasetReader):
    dataset_dir = "fgvc_aircraft"
    layout = """\
fgvc_aircraft/
  images/0034309.jpg ...
  variants.txt
  images_variant_train.txt, images_variant_val.txt, images_variant_test.txt"""
    source = ("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/ (fgvc-aircraft-2013b.tar.gz; copy its data/ "
              "folder to fgvc_aircraft/)")

    def read_list(self, cname2lab: dict[str, int], split_file: str) -> list[Datum]:
        items = []
        with open(self.path(split_file)) as f:
            for line in f:
                parts = line.strip().split(" ")
                classname = " ".join(parts[1:])
                items.append(Datum(impath=self.path("images", parts[0] + ".jpg"), label=self.label_of(cname2lab, classname, split_file),
                                   classname=classname))
        return items

    def read(self, rng: random.Random):
        self.require("images", "variants.txt", "images_variant_train.txt", "images_variant_val.txt",
                     "images_variant_test.txt")
        with open(self.path("variants.txt")) as f:
            classnames = [line.strip() for line in f]
        cname2lab = {c: i for i, c in enumerate(classnames)}
        return tuple(self.read_list(cname2lab, f"images_variant_{s}.txt") for s in ("train", "val", "test"))
