"""The DTD reader picks exactly the published few-shot subsets and base/new classes; its errors are clear."""
import gzip
import json
import os
import shutil

import pytest

from conftest import DATA
from vlprompt.config.setup import get_cfg
from vlprompt.data.dataset_base import DatasetLayoutError
from vlprompt.data.splits import SplitFileError
from vlprompt.registry import DATASET_REGISTRY

GOLDEN = json.load(gzip.open(DATA / "golden" / "DescribableTextures.json.gz"))


@pytest.fixture(scope="module")
def published_root(tmp_path_factory):
    """DTD with the published split file; images are empty files (the reader only reads paths)."""
    root = tmp_path_factory.mktemp("dtd_published")
    folder = root / "dtd"
    (folder / "images").mkdir(parents=True)
    with gzip.open(DATA / "golden" / "split_zhou_DescribableTextures.json.gz", "rb") as src:
        (folder / "split_zhou_DescribableTextures.json").write_bytes(src.read())
    return str(root)


def read(root, seed, shots, subsample):
    cfg = get_cfg(["DATASET.ROOT", root, "DATASET.NAME", "DescribableTextures", "SEED", str(seed),
                   "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample])
    return DATASET_REGISTRY.get("DescribableTextures")(cfg)


def as_rows(items, root):
    return [[os.path.relpath(d.impath, root), d.label, d.classname] for d in items]


@pytest.mark.parametrize("run", GOLDEN["runs"], ids=lambda r: f"seed{r['seed']}-shots{r['num_shots']}-{r['subsample']}")
def test_fewshot_picks_equal_published(published_root, run):
    ds = read(published_root, run["seed"], run["num_shots"], run["subsample"])
    test = run["test"]
    if isinstance(test, str):
        test = GOLDEN["test_lists"][test.split(".")[1]]
    assert as_rows(ds.train_x, published_root) == run["train_x"]
    assert as_rows(ds.val, published_root) == run["val"]
    assert as_rows(ds.test, published_root) == test
    assert ds.classnames == run["classnames"]
    assert ds.num_classes == run["num_classes"]


def test_reader_writes_nothing_into_the_dataset_folder(published_root):
    before = sorted(os.listdir(os.path.join(published_root, "dtd")))
    read(published_root, 1, 16, "base")
    assert sorted(os.listdir(os.path.join(published_root, "dtd"))) == before


def test_missing_dataset_folder_shows_layout_and_source(tmp_path):
    with pytest.raises(DatasetLayoutError) as e:
        read(str(tmp_path), 1, 16, "all")
    msg = str(e.value)
    assert "DescribableTextures" in msg and str(tmp_path / "dtd") in msg
    assert "split_zhou_DescribableTextures.json" in msg and "images/" in msg
    assert "robots.ox.ac.uk" in msg


def test_malformed_split_json_names_the_file(tmp_path):
    (tmp_path / "dtd" / "images").mkdir(parents=True)
    split = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    split.write_text('{"train": [["banded/a.jpg", "zero", "banded"]], "val": [], "test": []}')
    with pytest.raises(SplitFileError, match=r"split_zhou_DescribableTextures.json.*train\[0\]"):
        read(str(tmp_path), 1, 16, "all")
    split.write_text("{not json")
    with pytest.raises(SplitFileError, match="not valid JSON"):
        read(str(tmp_path), 1, 16, "all")


def test_without_split_json_the_folders_are_split_and_saved(dtd_root, tmp_path):
    shutil.copytree(os.path.join(dtd_root, "dtd", "images"), tmp_path / "dtd" / "images")
    ds = read(str(tmp_path), 1, -1, "all")
    split_file = tmp_path / "dtd" / "split_zhou_DescribableTextures.json"
    saved = json.loads(split_file.read_text())
    assert len(saved["train"]) == len(ds.train_x) == 47 * 4  # round(8 * 0.5) per class
    assert len(ds.classnames) == 47
    again = read(str(tmp_path), 1, -1, "all")  # now read back from the saved json
    assert as_rows(again.train_x, str(tmp_path)) == as_rows(ds.train_x, str(tmp_path))


def test_missing_image_is_named_when_loaded(dtd_root, tmp_path):
    from vlprompt.data.manager import DatasetWrapper
    from vlprompt.data.datum import Datum

    item = Datum(impath=str(tmp_path / "dtd/images/banded/gone.jpg"), label=0, classname="banded")
    with pytest.raises(FileNotFoundError, match="gone.jpg"):
        DatasetWrapper([item], None)[0]
