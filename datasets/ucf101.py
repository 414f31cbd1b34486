"""UCF101 (middle frames): 101 actions, CoOp's split (built from ucfTrainTestlist when absent)."""
import random
import re

from vlprompt.data.dataset_base import SplitJsonDataset
from vlprompt.data.datum import Datum
from vlprompt.data.folders import split_trainval
from vlprompt.registry import DATASET_REGISTRY


@DATASET_REGISTRY.register()
class UCF101(SplitJsonDataset):
    dataset_dir = "ucf101"
    image_subdir = "UCF-101-midframes"
    split_file = "split_zhou_UCF101.json"
    layout = """\
ucf101/
  UCF-101-midframes/
    Apply_Eye_Makeup/v_ApplyEyeMakeup_g01_c01.jpg ...
  ucfTrainTestlist/classInd.txt, trainlist01.txt, testlist01.txt  (only needed to rebuild the split)
  split_zhou_UCF101.json"""
    source = ("middle frames: UCF-101-midframes.zip, linked in CoOp's DATASETS.md (from "
              "https://www.crcv.ucf.edu/data/UCF101.php videos); split file: split_zhou_UCF101.json, same place")

    def read_list(self, cname2lab: dict[str, int], text_file: str) -> list[Datum]:
        items = []
        with open(self.path("ucfTrainTestlist", text_file)) as f:
            for line in f:
                action, filename = line.strip().split(" ")[0].split("/")
                renamed = "_".join(re.findall("[A-Z][^A-Z]*", action))  # ApplyEyeMakeup -> Apply_Eye_Makeup
                items.append(Datum(impath=self.path(self.image_subdir, renamed, filename.replace(".avi", ".jpg")),
                                   label=self.label_of(cname2lab, action, f"ucfTrainTestlist/{text_file}"),
                                   classname=renamed))
        return items

    def build_split(self, rng: random.Random):
        self.require("ucfTrainTestlist/classInd.txt", "ucfTrainTestlist/trainlist01.txt",
                     "ucfTrainTestlist/testlist01.txt")
        cname2lab = {}
        with open(self.path("ucfTrainTestlist", "classInd.txt")) as f:
            for line in f:
                if line.strip():
                    label, classname = line.strip().split(" ")
                    cname2lab[classname] = int(label) - 1
        trainval = self.read_list(cname2lab, "trainlist01.txt")
        test = self.read_list(cname2lab, "testlist01.txt")
        train, val = split_trainval(trainval, rng)
        return train, val, test
