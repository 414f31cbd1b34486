"""ImageFolder (your own data): both layouts, the split file (written once, reused, seeded like the published
read_and_split_data), classnames.txt, few-shot and base/new classes, the errors, and a run through a script."""
import json
import math
import os
import random

import pytest

from conftest import REPO, repo_copy, run_script
from vlprompt import preflight
from vlprompt.config.setup import get_cfg
from vlprompt.errors import ConfigError, DatasetLayoutError, SplitFileError
from vlprompt.registry import DATASET_REGISTRY
from vlprompt.testing.fake_data import write_image


def make(folder, classes, n, splits=("images",)):
    """``folder/<split>/<class>/<class>_NN.jpg`` (``splits`` ``("",)``: class folders directly in ``folder``);
    ``n``: images per class, or per split a dict."""
    for split in splits:
        count = n[split] if isinstance(n, dict) else n
        for label, c in enumerate(classes):
            for i in range(count):
                write_image(os.path.join(folder, split, c, f"{c}_{i:02d}.jpg"), label, size=8)


def read(root, name="mydata", seed=1, shots=-1, subsample="all", opts=()):
    cfg = get_cfg(["DATASET.ROOT", str(root), "DATASET.NAME", "ImageFolder", "DATASET.IMAGE_FOLDER.NAME", name,
                   "SEED", str(seed), "DATASET.NUM_SHOTS", str(shots), "DATASET.SUBSAMPLE_CLASSES", subsample, *opts])
    return DATASET_REGISTRY.get("ImageFolder")(cfg)


def rows(items, base):
    return [[os.path.relpath(d.impath, base), d.label, d.classname] for d in items]


def per_label(items):
    counts = {}
    for d in items:
        counts[d.label] = counts.get(d.label, 0) + 1
    return counts


def test_folder_splits_label_sorted_folders_and_write_nothing(tmp_path):
    classes = ["b_cls", "a_cls", "C"]  # sorted: C, a_cls, b_cls
    make(tmp_path / "mydata", classes, {"train": 3, "val": 2, "test": 1}, splits=("train", "val", "test"))
    (tmp_path / "mydata" / "train" / "C" / "notes.txt").write_text("not an image")
    before = sorted(os.listdir(tmp_path / "mydata"))
    ds = read(tmp_path)
    assert ds.classnames == ["C", "a cls", "b cls"] and ds.num_classes == 3
    assert per_label(ds.train_x) == {0: 3, 1: 3, 2: 3} and per_label(ds.val) == {0: 2, 1: 2, 2: 2}
    assert per_label(ds.test) == {0: 1, 1: 1, 2: 1}
    for split, items in (("train", ds.train_x), ("val", ds.val), ("test", ds.test)):
        for rel, label, _ in rows(items, tmp_path / "mydata"):
            assert rel.split(os.sep)[:2] == [split, ["C", "a_cls", "b_cls"][label]]
    assert rows(ds.train_x, tmp_path)[:3] == [[f"mydata/train/C/C_{i:02d}.jpg", 0, "C"] for i in range(3)]
    assert sorted(os.listdir(tmp_path / "mydata")) == before  # the folders are the split: no split file
    import shutil

    shutil.rmtree(tmp_path / "mydata" / "val")  # val/ is optional
    ds = read(tmp_path)
    assert ds.val == [] and len(ds.train_x) == 9 and len(ds.test) == 3


def published_split(image_dir, seed, p_trn=0.5, p_val=0.2):
    """What the published read_and_split_data draws after set_random_seed(seed), for a folder listed in name order."""
    rng = random.Random(seed)
    out = {"train": [], "val": [], "test": []}
    for label, c in enumerate(sorted(os.listdir(image_dir))):
        ims = [f"{c}/{f}" for f in sorted(os.listdir(os.path.join(image_dir, c)))]
        rng.shuffle(ims)
        n_trn, n_val = round(len(ims) * p_trn), round(len(ims) * p_val)
        name = c.replace("_", " ")
        out["train"] += [[im, label, name] for im in ims[:n_trn]]
        out["val"] += [[im, label, name] for im in ims[n_trn:n_trn + n_val]]
        out["test"] += [[im, label, name] for im in ims[n_trn + n_val:]]
    return out


def test_one_folder_split_file_written_once_reused_and_seeded(tmp_path):
    make(tmp_path / "mydata", ["cat", "golden_retriever", "zebra"], 10)
    image_dir = tmp_path / "mydata" / "images"
    split = tmp_path / "mydata" / "split_mydata.json"
    ds = read(tmp_path, seed=1)
    written = split.read_bytes()
    assert json.loads(written) == published_split(image_dir, 1)  # the published format and draws
    assert written.startswith(b'{\n    "train": [\n        [\n            "')  # Dassl's write_json indentation
    assert per_label(ds.train_x) == {0: 5, 1: 5, 2: 5} and per_label(ds.val) == {0: 2, 1: 2, 2: 2}
    assert rows(ds.test, image_dir) == published_split(image_dir, 1)["test"]
    assert ds.classnames == ["cat", "golden retriever", "zebra"]

    again = read(tmp_path, seed=2)  # reused whatever the seed, and left as it was
    assert split.read_bytes() == written and rows(again.test, image_dir) == rows(ds.test, image_dir)
    split.unlink()
    read(tmp_path, seed=1)
    assert split.read_bytes() == written  # deterministic given the seed
    split.unlink()
    read(tmp_path, seed=2)
    assert json.loads(split.read_text()) == published_split(image_dir, 2) != json.loads(written)
    split.unlink()
    read(tmp_path, opts=["DATASET.IMAGE_FOLDER.P_TRN", "0.6", "DATASET.IMAGE_FOLDER.P_VAL", "0.1"])
    assert json.loads(split.read_text()) == published_split(image_dir, 1, 0.6, 0.1)


def test_class_folders_directly_in_the_dataset_folder_and_classnames_txt(tmp_path):
    folder = tmp_path / "flat"
    make(folder, ["n02", "n01"], 4, splits=("",))
    (folder / "split_fewshot").mkdir()  # the published readers' cache: not a class
    (folder / "README.md").write_text("not a class")
    (folder / "classnames.txt").write_text("n02 tabby cat\n\nn01   golden retriever\nn99 unused line\n")
    ds = read(tmp_path, "flat")
    assert ds.classnames == ["golden retriever", "tabby cat"]  # labels: folder order, not the file's
    split = json.loads((folder / "split_flat.json").read_text())
    assert split["train"][0][0].startswith("n01/") and split["train"][0][1:] == [0, "golden retriever"]
    assert per_label(ds.train_x) == {0: 2, 1: 2} and len(ds.val) == 2 and len(ds.test) == 2

    (folder / "classnames.txt").write_text("n01 retriever\nn02 cat\n")  # edited after the split file: used
    assert read(tmp_path, "flat").classnames == ["retriever", "cat"]
    (folder / "classnames.txt").unlink()  # without it: the names stored in the split file
    assert read(tmp_path, "flat").classnames == ["golden retriever", "tabby cat"]


def test_classnames_txt_with_folder_splits(tmp_path):
    make(tmp_path / "mydata", ["dog", "cat"], 2, splits=("train", "test"))
    (tmp_path / "mydata" / "classnames.txt").write_text("dog a dog\ncat a cat\n")
    ds = read(tmp_path)
    assert ds.classnames == ["a cat", "a dog"] and {d.classname for d in ds.test} == {"a cat", "a dog"}


def test_few_shot_and_base_new_as_published(tmp_path):
    classes = [f"class_{i}" for i in range(5)]
    make(tmp_path / "mydata", classes, {"train": 6, "val": 5, "test": 3}, splits=("train", "val", "test"))
    full = read(tmp_path)
    for shots, n_val in ((2, 2), (8, 4)):
        ds = read(tmp_path, shots=shots, seed=3)
        assert per_label(ds.train_x) == {y: min(shots, 6) for y in range(5)}
        assert per_label(ds.val) == {y: n_val for y in range(5)} and ds.test == full.test  # test never sampled
        # the published generate_fewshot_dataset: per label in order, random.sample from the seeded stream
        rng = random.Random(3)
        expected = [d for y in range(5) for d in
                    (rng.sample([d for d in full.train_x if d.label == y], shots) if shots <= 6 else
                     [d for d in full.train_x if d.label == y])]
        assert ds.train_x == expected
    m = math.ceil(5 / 2)
    base, new = read(tmp_path, shots=2, subsample="base"), read(tmp_path, shots=2, subsample="new")
    assert base.classnames == ["class 0", "class 1", "class 2"] and new.classnames == ["class 3", "class 4"]
    assert per_label(base.train_x) == {0: 2, 1: 2, 2: 2} and per_label(new.test) == {0: 3, 1: 3}
    assert [d.impath for d in new.test] == [d.impath for d in full.test if d.label >= m]
    assert [d.impath for d in base.train_x] == [d.impath for d in read(tmp_path, shots=2).train_x if d.label < m]


def test_one_folder_picks_do_not_depend_on_who_wrote_the_split_file(tmp_path):
    make(tmp_path / "mydata", ["a", "b", "c", "d"], 8)
    first = read(tmp_path, shots=2, subsample="base")  # writes the split file
    second = read(tmp_path, shots=2, subsample="base")  # reads it
    assert first.train_x == second.train_x and first.val == second.val and first.test == second.test
    assert first.classnames == ["a", "b"]


def error_cases():
    def no_name(root):
        return read(root, "")

    def missing_folder(root):
        return read(root, "nodata")

    def empty_class(root):
        make(root / "mydata", ["a", "b"], 4)
        for f in os.listdir(root / "mydata/images/b"):
            os.remove(root / "mydata/images/b" / f)
        (root / "mydata/images/b/labels.csv").write_text("x")
        return read(root)

    def class_missing_in_test(root):
        make(root / "mydata", ["a", "b"], 2, splits=("train",))
        make(root / "mydata", ["a"], 2, splits=("test",))
        return read(root)

    def class_only_in_val(root):
        make(root / "mydata", ["a"], 2, splits=("train", "test"))
        make(root / "mydata", ["a", "zz"], 2, splits=("val",))
        return read(root)

    def train_without_test(root):
        make(root / "mydata", ["a"], 2, splits=("train",))
        return read(root)

    def test_without_train(root):
        make(root / "mydata", ["a"], 2, splits=("test",))
        return read(root)

    def no_class_folders(root):
        (root / "mydata").mkdir()
        write_image(str(root / "mydata/loose.jpg"), 0, size=8)
        return read(root)

    def too_few_images(root):
        make(root / "mydata", ["a", "b"], 4)
        os.remove(root / "mydata/images/b/b_03.jpg")
        return read(root)

    def classnames_lacks_folder(root):
        make(root / "mydata", ["a", "b"], 2, splits=("train", "test"))
        (root / "mydata/classnames.txt").write_text("a apple\n")
        return read(root)

    def classnames_line_without_name(root):
        make(root / "mydata", ["a"], 2, splits=("train", "test"))
        (root / "mydata/classnames.txt").write_text("a\n")
        return read(root)

    def split_file_of_other_classes(root):
        make(root / "mydata", ["a", "b"], 4)
        read(root)
        make(root / "mydata", ["c"], 4)
        return read(root)

    def bad_shares(root):
        make(root / "mydata", ["a"], 4)
        return read(root, opts=["DATASET.IMAGE_FOLDER.P_TRN", "0.9"])

    L, S, C = DatasetLayoutError, SplitFileError, ConfigError
    return [
        (no_name, L, "DATASET.IMAGE_FOLDER.NAME is not set"),
        (missing_folder, L, "{root}/nodata does not exist"),
        (empty_class, L, "the class folder {root}/mydata/images/b holds no images"),
        (class_missing_in_test, L, "{root}/mydata/test has no folder for the class(es) b of {root}/mydata/train"),
        (class_only_in_val, L, "{root}/mydata/val has the class folder(s) zz, which {root}/mydata/train lacks"),
        (train_without_test, L, "{root}/mydata/test does not exist"),
        (test_without_train, L, "{root}/mydata/test exists but {root}/mydata/train does not"),
        (no_class_folders, L, "{root}/mydata holds no class folders"),
        (too_few_images, L, "{root}/mydata/images/b has 3 image(s), too few to split"),
        (classnames_lacks_folder, L, "the class folder 'b' is not in {root}/mydata/classnames.txt"),
        (classnames_line_without_name, L, "{root}/mydata/classnames.txt line 1 ('a') has no class name"),
        (split_file_of_other_classes, S, "(new class folder(s) c); delete the split file"),
        (bad_shares, C, "DATASET.IMAGE_FOLDER.P_TRN 0.9 and P_VAL 0.2"),
    ]


@pytest.mark.parametrize("build,error,text", error_cases(), ids=lambda v: getattr(v, "__name__", ""))
def test_errors_name_what_to_fix(tmp_path, build, error, text):
    with pytest.raises(error) as e:
        build(tmp_path)
    first = str(e.value).splitlines()[0]
    assert first.startswith("Dataset ImageFolder: ") or error is not DatasetLayoutError
    assert text.format(root=tmp_path) in first
    if "\n" in str(e.value):  # a missing folder: the expected tree follows, as for every reader
        assert "Expected layout" in str(e.value) and "split_<NAME>.json" in str(e.value)


def test_preflight_takes_the_reader_keys_and_checks_no_fixed_folder(tmp_path):
    from vlprompt import cli, plugins

    found = preflight.registered(plugins.plugin_files([]))["DATASET"]
    assert "dataset_dir" not in found["ImageFolder"]  # the folder is a key: the early check leaves it to the reader
    make(tmp_path / "mydata", ["a"], 1, splits=("train", "test"))
    args = cli.build_parser().parse_args(["--root", str(tmp_path), "--trainer", "CoOp", "--dataset-config-file",
                                          str(REPO / "configs/datasets/image_folder.yaml"), "DATASET.IMAGE_FOLDER.NAME",
                                          "mydata"])
    assert preflight.check_command_line(args).DATASET.NAME == "ImageFolder"
    cfg = get_cfg(["DATASET.IMAGE_FOLDER.NAME", "x"])
    assert (cfg.DATASET.IMAGE_FOLDER.P_TRN, cfg.DATASET.IMAGE_FOLDER.P_VAL) == (0.5, 0.2)


@pytest.mark.slow
def test_base_to_new_through_the_scripts(tmp_path, tiny_clip):
    from vlprompt import results

    data = tmp_path / "data"
    make(data / "mydata", ["ant", "bee", "cat", "dog"], 5)
    work = repo_copy(tmp_path / "repo")
    opts = ["DATASET.IMAGE_FOLDER.NAME", "mydata", "MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)",
            "TRAINER.COOP.PREC", "fp32", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]
    run_script(work, "scripts/coop/base2new_train.sh", "image_folder", "1", "", "2", *opts, data=str(data))
    written = (data / "mydata" / "split_mydata.json").read_bytes()
    p = run_script(work, "scripts/coop/base2new_test.sh", "image_folder", "1", "", "2", *opts, data=str(data))
    assert (data / "mydata" / "split_mydata.json").read_bytes() == written
    run = "image_folder/shots_2/CoOp/vit_b16_ep50_ctxv1/seed1"
    train_log = (work / "output/base2new/train_base" / run / "log.txt").read_text()
    assert "Dataset    ImageFolder" in train_log and "# classes  2" in train_log
    assert "# train_x  4" in train_log  # 2 shots x 2 base classes
    assert "Loading weights to prompt_learner" in (work / "output/base2new/test_new" / run / "log.txt").read_text()
    g = results.collect(str(work / "output/base2new"))[("image_folder", "shots_2/CoOp/vit_b16_ep50_ctxv1")]
    assert list(g.base) == [1] and list(g.new) == [1] and "image_folder" in p.stdout
