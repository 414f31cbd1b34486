"""Every dataset reader reproduces the published few-shot picks and base/new classes (goldens of the
published readers on synthetic roots in the real layouts), builds missing split files like the published
code, and says clearly what is missing."""
import gzip
import json
import os
import shutil

import pytest

from conftest import DATA
from vlprompt.config.setup import get_cfg
from vlprompt.data import folders
from vlprompt.data.dataset_base import DatasetLayoutError
from vlprompt.data.splits import SplitFileError
from vlprompt.registry import DATASET_REGISTRY
from vlprompt.testing.fake_data import build_roots

GOLDEN_DATASETS = ["Caltech101", "DescribableTextures", "EuroSAT", "FGVCAircraft", "Food101", "ImageNet",
                   "OxfordFlowers", "OxfordPets", "SUN397", "StanfordCars", "UCF101"]
SPLIT_GENERATION = json.load(gzip.open(DATA / "golden" / "split_generation.json.gz", "rt"))


def load_golden(name):
    return json.load(gzip.open(DATA / "golden" / f"{name}.json.gz", "rt"))


@pytest.fixture(scope="session")
def empty_roots(tmp_path_factory):
    """All 15 roots with empty image files (the readers only list and read paths)."""
    root = tmp_path_factory.mktemp("roots_empty")
    build_roots(str(DATA / "roots" / "meta"), str(DATA / "roots" / "manifests"), str(root), images=False)
    return str(root)


@pytest.fixture
def listing_as_published(monkeypatch):
    """Make directory listings come back in a recorded order (what the published code's filesystem returned)."""
    def install(order: dict[str, list[str]]):
        real = folders.listdir

        def listdir(path, sort=False):
            names = real(path, sort)
            key = os.path.normpath(path)
            if not sort and key in order:
                assert sorted(order[key]) == sorted(names), f"recorded listing of {key} differs from the disk"
                return list(order[key])
            return names
        monkeypatch.setattr(folders, "listdir", listdir)
    return install


def order_from_lists(root, *lists):
    """Per folder, the order in which its files appear in the published lists."""
    order: dict[str, list[str]] = {}
    for items in lists:
        for rel, _, _ in items:
            folder, name = os.path.split(os.path.normpath(os.path.join(root, rel)))
            if name not in order.setdefault(folder, []):
                order[folder].append(name)
    return order


def read(root, name, seed=1, shots=-1, subsample="all"):
    cfg = get_cfg(["DATASET.ROOT", root, "DATASET.NAME", name, "SEED", str(seed), "DATASET.NUM_SHOTS", str(shots),
                   "DATASET.SUBSAMPLE_CLASSES", subsample])
    return DATASET_REGISTRY.get(name)(cfg)


def as_rows(items, root):
    return [[os.path.relpath(d.impath, root), d.label, d.classname] for d in items]


def golden_cases():
    for name in GOLDEN_DATASETS:
        for run in load_golden(name)["runs"]:
            yield pytest.param(name, run, id=f"{name}-seed{run['seed']}-k{run['num_shots']}-{run['subsample']}")


@pytest.mark.parametrize("name,run", golden_cases())
def test_picks_equal_published(empty_roots, listing_as_published, name, run):
    golden = load_golden(name)
    if name == "ImageNet":  # a folder walk: replay the order the published code's filesystem listed
        listing_as_published(order_from_lists(empty_roots, golden["as_read"]["train"], golden["as_read"]["test"]))
    ds = read(empty_roots, name, run["seed"], run["num_shots"], run["subsample"])
    def resolve(v):  # lists shared between runs are stored once, as "test_lists.<subsample>"
        return golden["test_lists"][v.split(".", 1)[1]] if isinstance(v, str) else v

    assert as_rows(ds.train_x, empty_roots) == run["train_x"]
    assert as_rows(ds.val, empty_roots) == resolve(run["val"])
    assert as_rows(ds.test, empty_roots) == resolve(run["test"])
    assert ds.classnames == run["classnames"] and ds.num_classes == run["num_classes"]


@pytest.mark.parametrize("name", sorted(SPLIT_GENERATION))
def test_missing_split_json_is_built_like_published(empty_roots, tmp_path, listing_as_published, name):
    """Remove the split file: the reader rebuilds it (seed 1) byte-for-byte in content as the published one."""
    gen = SPLIT_GENERATION[name]
    dataset_dir = gen["split_file"].split("/")[0]
    shutil.copytree(os.path.join(empty_roots, dataset_dir), tmp_path / dataset_dir, symlinks=True)
    split_path = tmp_path / gen["split_file"]
    expected = json.loads(split_path.read_text())
    split_path.unlink()
    if gen["listdir_order"]:
        image_dir = os.path.join(tmp_path, dataset_dir, DATASET_REGISTRY.get(name).image_subdir)
        listing_as_published({os.path.normpath(os.path.join(image_dir, c)): files
                              for c, files in gen["listdir_order"].items()})
    read(str(tmp_path), name, seed=gen["seed"])
    built = json.loads(split_path.read_text())
    assert {k: [list(x) for x in v] for k, v in built.items()} == expected


def test_target_only_variants(empty_roots):
    for name, n_classes in (("ImageNetA", 200), ("ImageNetR", 200), ("ImageNetSketch", 1000), ("ImageNetV2", 1000)):
        ds = read(empty_roots, name, shots=16, subsample="base")  # target-only: never sampled
        assert ds.train_x == ds.test and not ds.val
        assert ds.num_classes == n_classes == len(ds.classnames)
        by_label = {d.label: d.classname for d in ds.test}
        assert len(by_label) == n_classes
    a = read(empty_roots, "ImageNetA")
    wnid_names = dict(line.strip().split(" ", 1) for line in
                      open(os.path.join(empty_roots, "imagenet-adversarial", "classnames.txt")))
    for d in a.test[:50]:  # the label's class name is the ImageNet name of the image's wnid folder
        assert d.classname == wnid_names[os.path.basename(os.path.dirname(d.impath))]
    folders_a = sorted(os.listdir(os.path.join(empty_roots, "imagenet-adversarial", "imagenet-a")))
    folders_a.remove("README.txt")
    assert a.classnames == [wnid_names[f] for f in folders_a]


@pytest.mark.parametrize("name", DATASET_REGISTRY.names())
def test_missing_folder_error_names_dataset_layout_and_source(tmp_path, name):
    with pytest.raises(DatasetLayoutError) as e:
        read(str(tmp_path), name)
    msg = str(e.value)
    cls = DATASET_REGISTRY.get(name)
    assert name in msg and os.path.join(str(tmp_path), cls.dataset_dir) in msg
    assert "Expected layout" in msg and cls.dataset_dir + "/" in msg and "Where to get it: " in msg
    if hasattr(cls, "split_file") and cls.split_file:
        assert cls.split_file in msg


def test_incomplete_folder_names_the_missing_file(empty_roots, tmp_path):
    shutil.copytree(os.path.join(empty_roots, "fgvc_aircraft"), tmp_path / "fgvc_aircraft")
    (tmp_path / "fgvc_aircraft" / "variants.txt").unlink()
    with pytest.raises(DatasetLayoutError, match=r"variants.txt does not exist"):
        read(str(tmp_path), "FGVCAircraft")


def test_malformed_split_json_names_the_file_and_entry(tmp_path):
    (tmp_path / "eurosat" / "2750").mkdir(parents=True)
    split = tmp_path / "eurosat" / "split_zhou_EuroSAT.json"
    split.write_text('{"train": [["River/a.jpg", "zero", "River"]], "val": [], "test": []}')
    with pytest.raises(SplitFileError, match=r"split_zhou_EuroSAT.json: entry train\[0\]"):
        read(str(tmp_path), "EuroSAT")
    split.write_text('{"train": []}')
    with pytest.raises(SplitFileError, match="lacks the key"):
        read(str(tmp_path), "EuroSAT")
    split.write_text("{not json")
    with pytest.raises(SplitFileError, match="not valid JSON"):
        read(str(tmp_path), "EuroSAT")


def test_readers_leave_the_dataset_folders_as_they_were(empty_roots):
    before = {d: sorted(os.listdir(os.path.join(empty_roots, d))) for d in os.listdir(empty_roots)}
    for name in DATASET_REGISTRY.names():
        if not DATASET_REGISTRY.get(name).dataset_dir:  # ImageFolder: its folder is a key (test_image_folder.py)
            continue
        read(empty_roots, name, shots=4, subsample="base")
    after = {d: sorted(os.listdir(os.path.join(empty_roots, d))) for d in os.listdir(empty_roots)}
    assert before == after  # no split_fewshot/, no preprocessed.pkl, nothing the published code would read


def test_show_split_writes_the_published_lists(empty_roots, tmp_path, capsys):
    from conftest import REPO
    from vlprompt.data import show_split

    out = tmp_path / "split.json"
    assert show_split.main(["--root", empty_roots, "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
                            "--seed", "2", "--json", str(out), "DATASET.NUM_SHOTS", "4",
                            "DATASET.SUBSAMPLE_CLASSES", "new"]) == 0
    written = json.loads(out.read_text())
    run = next(r for r in load_golden("EuroSAT")["runs"] if (r["seed"], r["num_shots"], r["subsample"]) == (2, 4, "new"))
    assert written["train_x"] == run["train_x"] and written["val"] == run["val"]
    assert written["classnames"] == run["classnames"]
    capsys.readouterr()
    show_split.main(["--root", empty_roots, "--dataset-config-file", str(REPO / "configs/datasets/eurosat.yaml"),
                     "DATASET.NUM_SHOTS", "4"])
    text = capsys.readouterr().out
    assert "classes" in text and "10" in text and "train_x per class  4-4" in text


@pytest.mark.parametrize("name", DATASET_REGISTRY.names())
def test_docs_give_every_layout_and_source(name):
    from conftest import REPO

    doc = (REPO / "docs" / "DATASETS.md").read_text()
    cls = DATASET_REGISTRY.get(name)
    assert f"## {name} " in doc and cls.layout in doc and cls.source in doc
