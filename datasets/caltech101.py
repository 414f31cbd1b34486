"""Caltech-101: 100 object classes (BACKGROUND_Google and Faces_easy left out), CoOp's split."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.folders import split_class_folders
from vlprompt.registry import DATASET_REGISTRY

IGNORED = ("BACKGROUND_Google", "Faces_easy")
# the published reader's names for these folders
NEW_CNAMES = {"airplanes": "airplane", "Faces": "face", "Leopards": "leopard", "Motorbikes": "motorbike"}


@DATASET_REGISTRY.register()
class Caltech101(SplitJsonDataset):
    dataset_dir = "caltech-101"
    image_subdir = "101_ObjectCategories"
    split_file = "split_zhou_Caltech101.json"
    layout = """\
caltech-101/
  101_ObjectCategories/
    accordion/image_0001.jpg ...
    airplanes/ ...          (102 folders, BACKGROUND_Google and Faces_easy are ignored)
  split_zhou_Caltech101.json"""
    source = ("images: https://data.caltech.edu/records/mzrjq-6wc02 (101_ObjectCategories.tar.gz, inside "
              "caltech-101/); split file: split_zhou_Caltech101.json, linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        return split_class_folders(self.path(self.image_subdir), rng, ignored=IGNORED, new_cnames=NEW_CNAMES)
