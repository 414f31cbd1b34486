"""Stanford Cars: 196 car models, CoOp's split (built from the devkit .mat files when absent)."""
import random

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.datum import Datum
from vlprompt.data.folders import split_trainval
from vlprompt.data.matfile import loadmat
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class StanfordCars(SplitJsonDataset):
    dataset_dir = "stanford_cars"
    image_subdir = ""  # split paths are relative to the dataset folder (cars_train/..., cars_test/...)
    split_file = "split_zhou_StanfordCars.json"
    layout = """\
stanford_cars/
  cars_train/00001.jpg ...
  cars_test/00001.jpg ...
  devkit/cars_meta.mat, devkit/cars_train_annos.mat, cars_test_annos_withlabels.mat  (to rebuild the split)
  split_zhou_StanfordCars.json"""
    source = ("https://ai.stanford.edu/~jkrause/cars/car_dataset.html (cars_train.tgz, cars_test.tgz, "
              "car_devkit.tgz, cars_test_annos_withlabels.mat; mirrors exist on Kaggle); "
              "split file: split_zhou_StanfordCars.json, linked in CoOp's DATASETS.md")

    def read_annotations(self, image_dir: str, anno_file: str) -> list[Datum]:
        self.require(anno_file, "devkit/cars_meta.mat")
        annos = loadmat(self.path(anno_file))["annotations"][0]
        names = loadmat(self.path("devkit", "cars_meta.mat"))["class_names"][0]
        items = []
        for anno in annos:
            label = int(anno["class"][0, 0]) - 1
            words = str(names[label][0]).split(" ")
            classname = " ".join([words[-1]] + words[:-1])  # the year first, as the published reader
            items.append(Datum(impath=self.path(image_dir, str(anno["fname"][0])), label=label, classname=classname))
        return items

    def build_split(self, rng: random.Random):
        trainval = self.read_annotations("cars_train", "devkit/cars_train_annos.mat")
        test = self.read_annotations("cars_test", "cars_test_annos_withlabels.mat")
        train, val = split_trainval(trainval, rng)
        return train, val, test
