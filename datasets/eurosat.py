"""EuroSAT (RGB): 10 land-use classes with CoOp's descriptive class names, CoOp's split."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.folders import split_class_folders
from vlprompt.registry import DATASET_REGISTRY

# folder name -> the class name the published reader uses
NEW_CNAMES = {
    "AnnualCrop": "Annual Crop Land",
    "Forest": "Forest",
    "HerbaceousVegetation": "Herbaceous Vegetation Land",
    "Highway": "Highway or Road",
    "Industrial": "Industrial Buildings",
    "Pasture": "Pasture Land",
    "PermanentCrop": "Permanent Crop Land",
    "Residential": "Residential Buildings",
    "River": "River",
    "SeaLake": "Sea or Lake",
}


@DATASET_REGISTRY.register()
class EuroSAT(SplitJsonDataset):
    dataset_dir = "eurosat"
    image_subdir = "2750"
    split_file = "split_zhou_EuroSAT.json"
    layout = """\
eurosat/
  2750/
    AnnualCrop/AnnualCrop_1.jpg ...
    Forest/ ...             (10 class folders)
  split_zhou_EuroSAT.json"""
    source = ("images: https://github.com/phelber/EuroSAT (EuroSAT_RGB.zip, the 2750/ folder); "
              "split file: split_zhou_EuroSAT.json, linked in CoOp's DATASETS.md")

    def build_split(self, rng: random.Random):
        return split_class_folders(self.path(self.image_subdir), rng, new_cnames=NEW_CNAMES)
