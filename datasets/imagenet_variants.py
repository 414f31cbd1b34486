"""The target-only ImageNet variants (test sets for domain generalisation): ImageNet-V2, -Sketch, -A and -R.

Labels are positions among the dataset's own class folders (sorted), so ImageNet-A and -R have
200 classes; class names come from ImageNet's wnid -> name list, so prompts name the same classes.
"""
import os
import random

from vlprompt.data.dataset_base import DatasetReader
from vlprompt.data.datum import Datum
from vlprompt.data.folders import listdir, read_class_folders, read_wnid_classnames
from vlprompt.registry import DATASET_REGISTRY

CLASSNAMES_SOURCE = "classnames.txt: the ImageNet one (linked in CoOp's DATASETS.md), copied into this folder"


class _ImageNetVariant(DatasetReader):
    target_only = True
    image_subdir = ""

    def read(self, rng: random.Random):
        self.require(self.image_subdir, "classnames.txt")
        classnames = read_wnid_classnames(self.path("classnames.txt"))
        image_dir = self.path(self.image_subdir)
        folders = [f for f in listdir(image_dir, sort=True) if os.path.isdir(os.path.join(image_dir, f))]
        return [], [], read_class_folders(image_dir, classnames, folders)


@DATASET_REGISTRY.register()
class ImageNetSketch(_ImageNetVariant):
    dataset_dir = "imagenet-sketch"
    image_subdir = "images"
    layout = """\
imagenet-sketch/
  images/n01440764/n01440764_1.JPEG ...   (1000 wnid folders)
  classnames.txt"""
    source = f"https://github.com/HaohanWang/ImageNet-Sketch (rename sketch/ to images/); {CLASSNAMES_SOURCE}"


@DATASET_REGISTRY.register()
class ImageNetA(_ImageNetVariant):
    dataset_dir = "imagenet-adversarial"
    image_subdir = "imagenet-a"
    layout = """\
imagenet-adversarial/
  imagenet-a/n01498041/0.jpg ...   (200 wnid folders)
  classnames.txt"""
    source = f"https://github.com/hendrycks/natural-adv-examples (imagenet-a.tar); {CLASSNAMES_SOURCE}"


@DATASET_REGISTRY.register()
class ImageNetR(_ImageNetVariant):
    dataset_dir = "imagenet-rendition"
    image_subdir = "imagenet-r"
    layout = """\
imagenet-rendition/
  imagenet-r/n01443537/art_0.jpg ...   (200 wnid folders)
  classnames.txt"""
    source = f"https://github.com/hendrycks/imagenet-r (imagenet-r.tar); {CLASSNAMES_SOURCE}"


@DATASET_REGISTRY.register()
class ImageNetV2(_ImageNetVariant):
    dataset_dir = "imagenetv2"
    image_subdir = "imagenetv2-matched-frequency-format-val"
    layout = """\
imagenetv2/
  imagenetv2-matched-frequency-format-val/0/7e5e....jpeg ...   (folders 0..999 = ImageNet labels)
  classnames.txt"""
    source = f"https://github.com/modestyachts/ImageNetV2 (matched-frequency tar); {CLASSNAMES_SOURCE}"

    def read(self, rng: random.Random):
        """Folders are named by ImageNet label (0..999), which indexes classnames.txt in file order."""
        self.require(self.image_subdir, "classnames.txt")
        names = list(read_wnid_classnames(self.path("classnames.txt")).values())
        items = []
        for label, classname in enumerate(names):
            folder = self.path(self.image_subdir, str(label))
            items += [Datum(impath=os.path.join(folder, im), label=label, classname=classname) for im in listdir(folder)]
        return [], [], items
