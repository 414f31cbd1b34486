"""DTD specifics: the split built from class folders can be read back; missing images are named."""
import json
import os
import shutil

import pytest

from vlprompt.config.setup import get_cfg
from vlprompt.errors import BadImageError
from vlprompt.registry import DATASET_REGISTRY


def read(root, seed, shots, subsample):
    cfg = get_cfg(["DATASET.ROOT", root, "DATASET.NAME", "DescribableTextures", "SEED", str(seed),
                   "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample])
    return DATASET_REGISTRY.get("DescribableTextures")(cfg)


def as_rows(items, root):
    return [[os.path.relpath(d.impath, root), d.label, d.classname] for d in items]


def test_without_split_json_the_folders_are_split_and_saved(dtd_root, tmp_path):
    shutil.copytree(os.path.join(dtd_root, "dtd", "images"), tmp_path / "dtd" / "images")
    ds = read(str(tmp_path), 1, -1, "all")
    saved = json.loads((tmp_path / "dtd" / "split_zhou_DescribableTextures.json").read_text())
    assert len(saved["train"]) == len(ds.train_x) == 47 * 4  # round(8 * 0.5) per class
    assert len(ds.classnames) == 47
    again = read(str(tmp_path), 1, -1, "all")  # now read back from the saved json
    assert as_rows(again.train_x, str(tmp_path)) == as_rows(ds.train_x, str(tmp_path))


def test_missing_image_is_named_when_loaded(tmp_path):
    from vlprompt.data.datum import Datum
    from vlprompt.data.manager import DatasetWrapper

    item = Datum(impath=str(tmp_path / "dtd/images/banded/gone.jpg"), label=0, classname="banded")
    with pytest.raises(BadImageError, match="gone.jpg"):
        DatasetWrapper([item], None)[0]
