"""ImageFolder: your own images, one folder per class, read as a benchmark dataset (``DATASET.NAME ImageFolder``).

The dataset folder is ``DATASET.ROOT/<DATASET.IMAGE_FOLDER.NAME>/``, in one of two layouts:

- folder splits: ``train/<class>/*`` and ``test/<class>/*`` (``val/<class>/*`` optional; without it there is
  no val set); the folders are the split, nothing is written;
- one folder: ``images/<class>/*`` (or ``<class>/*`` directly in the dataset folder), split per class into
  train/val/test (``P_TRN``/``P_VAL``, 50/20/30 as the published DTD reader) on the first run, saved as
  ``split_<NAME>.json`` in the published split-file format and reused by every later run, as a missing
  ``split_zhou_*.json`` of DTD is.

Labels are the class folders in sorted order; a class is named by its folder (underscores -> spaces) or by an
optional ``classnames.txt`` (``<class folder> <class name>`` per line, as ImageNet's). Few-shot sampling
(``DATASET.NUM_SHOTS``) and base/new classes (``DATASET.SUBSAMPLE_CLASSES``) are the published readers' (see
DatasetReader). Choices of this reader: images are the files with an image extension, listed in name order
(the published reader takes every file in the filesystem's order); the split is drawn from its own
``random.Random(SEED)``, so the few-shot picks of a seed are the same whether the run built the split file or
read it (those the published reader draws when its split file exists).

The folder comes from a config key, so this class sets no class-level ``dataset_dir`` (``vlprompt.preflight``
reads that attribute from the source to check the folder before torch is imported; this reader checks it
itself when it is built).
"""
from __future__ import annotations

import logging
import os
import random
from collections import OrderedDict
from dataclasses import replace

from yacs.config import CfgNode as CN

from vlprompt.data.dataset_base import DatasetReader, Lists
from vlprompt.data.datum import Datum
from vlprompt.data.folders import split_per_class
from vlprompt.data.splits import read_split, save_split
from vlprompt.errors import ConfigError, DatasetLayoutError, SplitFileError
from vlprompt.registry import DATASET_REGISTRY

logger = logging.getLogger(__name__)
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm", ".pgm")
SPLITS = ("train", "val", "test")
NOT_CLASSES = ("split_fewshot",)  # the published readers' few-shot cache, when the folder is shared with them
DOC = "See docs/DATASETS.md (ImageFolder)."


@DATASET_REGISTRY.register()
class ImageFolder(DatasetReader):
    layout = """\
<NAME>/                       (DATASET.IMAGE_FOLDER.NAME)
  train/<class>/*.jpg         folder splits: train/ and test/ (val/ optional),
  val/<class>/*.jpg           each with the same class folders
  test/<class>/*.jpg
  classnames.txt              (optional: '<class folder> <class name>' per line)
or one folder, split per class 50/20/30 on the first run:
<NAME>/
  images/<class>/*.jpg        (or <class>/*.jpg directly in <NAME>/)
  classnames.txt              (optional)
  split_<NAME>.json           (written by the first run, then reused)"""
    source = "your own images (.jpg, .jpeg, .png, .bmp, .gif, .webp, .tif, .tiff, .ppm, .pgm), one folder per class"

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.DATASET.IMAGE_FOLDER = CN()
        # Folder under DATASET.ROOT that holds the images, e.g. "mydata" for DATASET.ROOT/mydata/ (required)
        cfg.DATASET.IMAGE_FOLDER.NAME = ""
        # One-folder layout: share of each class's images put in train when the split file is built
        cfg.DATASET.IMAGE_FOLDER.P_TRN = 0.5
        # One-folder layout: share put in val (the rest goes to test)
        cfg.DATASET.IMAGE_FOLDER.P_VAL = 0.2

    def __init__(self, cfg: CN) -> None:
        opts = cfg.DATASET.IMAGE_FOLDER
        self.name = os.path.normpath(opts.NAME.strip()) if opts.NAME.strip() else ""
        self.p_trn, self.p_val = float(opts.P_TRN), float(opts.P_VAL)
        if not (self.p_trn > 0 and self.p_val > 0 and self.p_trn + self.p_val < 1):
            raise ConfigError(f"DATASET.IMAGE_FOLDER.P_TRN {opts.P_TRN} and P_VAL {opts.P_VAL}: both must be > 0 "
                              "and their sum < 1 (the rest of each class is the test set); e.g. 0.5 and 0.2")
        # the split of a one-folder dataset draws from its own generator, not from the run's (module docstring)
        self.split_rng = random.Random(cfg.SEED) if cfg.SEED >= 0 else random.Random()
        super().__init__(cfg)

    # ---- reading -------------------------------------------------------------------------------------------
    def read(self, rng: random.Random) -> Lists:
        if not self.name:
            raise self.layout_error("DATASET.IMAGE_FOLDER.NAME is not set; set it to the folder under DATASET.ROOT "
                                    "that holds your images (KEY VALUE DATASET.IMAGE_FOLDER.NAME mydata, or in "
                                    "the dataset config file)")
        self.dataset_dir = os.path.join(self.root, self.name)  # DatasetReader set it to the root
        if not os.path.isdir(self.dataset_dir):
            raise self.layout_error(f"the folder {self.dataset_dir} does not exist")
        names = self.read_classnames()
        if os.path.isdir(self.path("train")):
            return self.read_folder_splits(names)
        for split in ("val", "test"):
            if os.path.isdir(self.path(split)):
                raise self.layout_error(f"{self.path(split)} exists but {self.path('train')} does not (the "
                                        "folder-split layout needs train/ and test/)")
        image_dir = self.path("images") if os.path.isdir(self.path("images")) else self.dataset_dir
        return self.read_one_folder(image_dir, names)

    def read_folder_splits(self, names: dict[str, str]) -> Lists:
        """``train/``, ``test/`` and optional ``val/``, each with the class folders of ``train/``."""
        if not os.path.isdir(self.path("test")):
            raise self.layout_error(f"{self.path('test')} does not exist (the folder-split layout needs train/ "
                                    "and test/; val/ is optional)")
        classes = self.class_folders(self.path("train"))
        lists: dict[str, list[Datum]] = {s: [] for s in SPLITS}
        for split in SPLITS:
            folder = self.path(split)
            if not os.path.isdir(folder):
                continue  # val/
            found = self.class_folders(folder)
            missing, extra = [c for c in classes if c not in found], [c for c in found if c not in classes]
            if missing:
                raise DatasetLayoutError(f"Dataset ImageFolder: {folder} has no folder for the class(es) "
                                         f"{_show(missing)} of {self.path('train')}; every split folder needs the "
                                         f"same class folders (add them, with images, or remove the class). {DOC}")
            if extra:
                raise DatasetLayoutError(f"Dataset ImageFolder: {folder} has the class folder(s) {_show(extra)}, "
                                         f"which {self.path('train')} lacks; every split folder needs the same "
                                         f"class folders. {DOC}")
            for label, c in enumerate(classes):
                classname = self.classname(c, names)
                lists[split] += [Datum(impath=p, label=label, classname=classname)
                                 for p in self.images(os.path.join(folder, c))]
        return lists["train"], lists["val"], lists["test"]

    def read_one_folder(self, image_dir: str, names: dict[str, str]) -> Lists:
        """``image_dir/<class>/*`` through ``split_<NAME>.json``: built (and saved) when missing, else reused."""
        classes = self.class_folders(image_dir)
        split_path = self.path(f"split_{os.path.basename(self.name)}.json")
        if os.path.isfile(split_path):
            train, val, test = read_split(split_path, image_dir)
            self.check_split_classes(split_path, image_dir, classes, train + val + test)
            if not names:
                return train, val, test

            def rename(items: list[Datum]) -> list[Datum]:  # classnames.txt, also one added after the split file
                return [replace(d, classname=self.classname(_folder(d, image_dir), names)) for d in items]
            return rename(train), rename(val), rename(test)
        groups: OrderedDict[int, tuple[str, list[str]]] = OrderedDict()
        for label, c in enumerate(classes):
            impaths = self.images(os.path.join(image_dir, c))
            self.check_splittable(os.path.join(image_dir, c), len(impaths))
            groups[label] = (self.classname(c, names), impaths)
        train, val, test = split_per_class(groups, self.split_rng, self.p_trn, self.p_val)
        save_split(train, val, test, split_path, image_dir)
        p_tst = 1 - self.p_trn - self.p_val
        logger.info(f"Split {image_dir} into {self.p_trn:.0%} train, {self.p_val:.0%} val and {p_tst:.0%} test per "
                    f"class; saved to {split_path} (later runs reuse it; delete it to split again)")
        return train, val, test

    # ---- helpers -------------------------------------------------------------------------------------------
    def class_folders(self, folder: str) -> list[str]:
        """The sorted class folders of ``folder`` (sub-folders, not hidden); none is an error."""
        classes = sorted(e.name for e in os.scandir(folder)
                         if e.is_dir() and not e.name.startswith(".") and e.name not in NOT_CLASSES)
        if not classes:
            raise self.layout_error(f"{folder} holds no class folders (expected one sub-folder of images per "
                                    "class)")
        return classes

    def images(self, folder: str) -> list[str]:
        """The image files of a class folder in name order; none is an error."""
        files = sorted(e.name for e in os.scandir(folder) if e.is_file() and not e.name.startswith(".")
                       and e.name.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise DatasetLayoutError(f"Dataset ImageFolder: the class folder {folder} holds no images (files "
                                     f"ending in {', '.join(IMAGE_EXTENSIONS)}); add images or remove the "
                                     f"folder. {DOC}")
        return [os.path.join(folder, f) for f in files]

    def read_classnames(self) -> dict[str, str]:
        """``classnames.txt``: ``<class folder> <class name>`` per line (blank lines skipped); {} without it."""
        path = self.path("classnames.txt")
        if not os.path.isfile(path):
            return {}
        names: dict[str, str] = {}
        with open(path, encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                parts = line.strip().split(maxsplit=1)
                if not parts:
                    continue
                if len(parts) < 2:
                    raise DatasetLayoutError(f"Dataset ImageFolder: {path} line {n} ('{line.strip()}') has no class "
                                             f"name; each line is '<class folder> <class name>'. {DOC}")
                if parts[0] in names:
                    raise DatasetLayoutError(f"Dataset ImageFolder: {path} line {n} names the class folder "
                                             f"'{parts[0]}' a second time; give each folder one line. {DOC}")
                names[parts[0]] = parts[1]
        return names

    def classname(self, folder: str, names: dict[str, str]) -> str:
        """The name of a class folder: its classnames.txt line, or the folder name with spaces for underscores."""
        if not names:
            return folder.replace("_", " ")
        if folder not in names:
            raise DatasetLayoutError(f"Dataset ImageFolder: the class folder '{folder}' is not in "
                                     f"{self.path('classnames.txt')}; add a line '{folder} <class name>' (every "
                                     f"class folder needs one). {DOC}")
        return names[folder]

    def check_splittable(self, folder: str, n: int) -> None:
        """Each class must give at least one image to each of train, val and test."""
        def parts(k: int) -> tuple[int, int, int]:
            n_trn, n_val = round(k * self.p_trn), round(k * self.p_val)
            return n_trn, n_val, k - n_trn - n_val
        if min(parts(n)) <= 0:
            need = next(k for k in range(n + 1, 10 ** 6) if min(parts(k)) > 0)
            raise DatasetLayoutError(
                f"Dataset ImageFolder: the class folder {folder} has {n} image(s), too few to split into train/val/"
                f"test ({self.p_trn:.0%}/{self.p_val:.0%}/{1 - self.p_trn - self.p_val:.0%} with at least one image "
                f"each takes {need}); add images, or use the train/ val/ test/ folder layout. {DOC}")

    def check_split_classes(self, split_path: str, image_dir: str, classes: list[str], items: list[Datum]) -> None:
        """The split file must cover exactly the class folders on disk (a class added later would be ignored)."""
        in_file = {_folder(d, image_dir) for d in items}
        added, removed = [c for c in classes if c not in in_file], sorted(in_file - set(classes))
        if added or removed:
            change = "; ".join(f"{what} {_show(cs)}" for what, cs in (("new class folder(s)", added),
                                                                      ("class folder(s) gone", removed)) if cs)
            raise SplitFileError(f"Split file {split_path} was made for other class folders than {image_dir} holds "
                                 f"now ({change}); delete the split file to split the folder again. {DOC}")

    def layout_error(self, what: str) -> DatasetLayoutError:
        name = self.name or "<NAME>"
        return DatasetLayoutError(
            f"Dataset ImageFolder: {what}.\n"
            f"Expected layout under DATASET.ROOT ({self.root}), <NAME> = DATASET.IMAGE_FOLDER.NAME:\n"
            f"{self.layout}\n"
            f"Where to get it: {self.source}\n"
            f"Set DATASET.ROOT (train.py --root, DATA= in the scripts) to the folder that holds '{name}/' (read "
            f"from {os.path.join(self.root, name)}/). {DOC}")


def _folder(d: Datum, image_dir: str) -> str:
    """The class folder of an image under ``image_dir``."""
    return os.path.relpath(d.impath, image_dir).split(os.sep)[0]


def _show(names: list[str]) -> str:
    return ", ".join(names[:5]) + (f" (and {len(names) - 5} more)" if len(names) > 5 else "")
