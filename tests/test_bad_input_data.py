"""Bad input data through ``train.py`` (``cli.run``): corrupt or truncated images, inconsistent split files and
impossible NUM_SHOTS end as one ``Error:`` line and exit code 2, never a traceback; DATALOADER.SKIP_BAD_IMAGES
logs and skips unreadable images instead."""
import json
import os
import re
import shutil

import pytest

from conftest import REPO, assert_user_error, run_cli
from vlprompt.config.setup import get_cfg
from vlprompt.registry import DATASET_REGISTRY

pytestmark = pytest.mark.slow

SPLIT = os.path.join("dtd", "split_zhou_DescribableTextures.json")


def args(root, clip, out, *overrides, workers=0):
    # TRAIN_X.BATCH_SIZE 47: the 94 training images (47 classes x 2 shots) fill two batches, none is dropped
    return ["--root", str(root), "--seed", "1", "--trainer", "CoOp",
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / "configs/trainers/CoOp/vit_b16_ep50.yaml"),
            "--output-dir", str(out),
            "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(64, 64)", "TRAINER.COOP.PREC", "fp32",
            "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", str(workers),
            "DATALOADER.TRAIN_X.BATCH_SIZE", "47", "DATASET.NUM_SHOTS", "2", "VERBOSE", "False", *overrides]


@pytest.fixture
def root(dtd_root, tmp_path):
    """A private copy of the synthetic DTD root, safe to damage."""
    shutil.copytree(dtd_root, tmp_path / "data")
    return tmp_path / "data"


def picked(root, split):
    """The Datum lists the run sees (seed 1, 2 shots)."""
    cfg = get_cfg(["DATASET.ROOT", str(root), "DATASET.NAME", "DescribableTextures", "SEED", "1",
                   "DATASET.NUM_SHOTS", "2"])
    return getattr(DATASET_REGISTRY.get("DescribableTextures")(cfg), split)


def corrupt(path):
    with open(path, "wb") as f:
        f.write(os.urandom(64) + b"this is not a JPEG" * 20)


def truncate(path):
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[: len(data) // 2])


# ---------------------------------------------------------------- unreadable images
@pytest.mark.parametrize("damage,workers", [(corrupt, 0), (truncate, 0), (corrupt, 2)],
                         ids=["corrupt", "truncated", "corrupt-2-workers"])
def test_unreadable_training_image_is_named(root, tiny_clip, tmp_path, capsys, damage, workers):
    bad = picked(root, "train_x")[0]
    damage(bad.impath)
    code, text = run_cli(args(root, tiny_clip["rn"], tmp_path / "out", workers=workers), capsys)
    line = assert_user_error(code, text, bad.impath, f"label {bad.label}", f"class '{bad.classname}'",
                             "DATALOADER.SKIP_BAD_IMAGES True")
    assert line.startswith(f"Error: Cannot read image {bad.impath}")


def test_skip_bad_images_trains_and_evaluates_without_them(root, tiny_clip, tmp_path, capsys):
    bad_train = picked(root, "train_x")[0].impath
    bad_test = picked(root, "test")[0].impath
    corrupt(bad_train)
    truncate(bad_test)
    code, text = run_cli(args(root, tiny_clip["rn"], tmp_path / "out", "DATALOADER.SKIP_BAD_IMAGES", "True"), capsys)
    assert code == 0, text[-3000:]
    assert "Traceback" not in text and not re.search(r"^Error:", text, re.M)
    for path in (bad_train, bad_test):
        assert re.search(rf"^DATALOADER.SKIP_BAD_IMAGES: skipping unreadable image {re.escape(path)} ", text, re.M)
    assert "* total: 93" in text  # 47 classes x 2 test images, one unreadable
    assert re.search(r"^\* accuracy: [0-9.]+%", text, re.M)


# ---------------------------------------------------------------- split files
def edit_split(root, edit):
    path = root / SPLIT
    split = json.loads(path.read_text())
    edit(split)
    path.write_text(json.dumps(split))
    return str(path)


@pytest.mark.parametrize("key", ["train", "test"])
def test_label_out_of_range_in_split_file(root, tiny_clip, tmp_path, capsys, key):
    def edit(split):
        split[key][5][1] = 99

    path = edit_split(root, edit)
    code, text = run_cli(args(root, tiny_clip["rn"], tmp_path / "out"), capsys)
    line = assert_user_error(code, text, path, f"entry {key}[5]", "label 99")
    assert ("out of range" if key == "train" else "which no train entry has") in line


def test_class_name_disagreeing_with_label_in_split_file(root, tiny_clip, tmp_path, capsys):
    def edit(split):
        label = split["test"][3][1]
        split["test"][3][2] = "zebra"
        return label

    path = edit_split(root, edit)
    code, text = run_cli(args(root, tiny_clip["rn"], tmp_path / "out"), capsys)
    assert_user_error(code, text, path, "entry test[3]", "class name 'zebra'", "a label must have one class name")


# ---------------------------------------------------------------- config
@pytest.mark.parametrize("shots", ["0", "-2"])
def test_impossible_num_shots(dtd_root, tiny_clip, tmp_path, capsys, shots):
    code, text = run_cli(args(dtd_root, tiny_clip["rn"], tmp_path / "out", "DATASET.NUM_SHOTS", shots), capsys)
    line = assert_user_error(code, text)
    assert line.startswith(f"Error: DATASET.NUM_SHOTS must be -1 (all images) or >= 1, got {shots}")
    assert "Loading dataset" not in text and "Loading CLIP" not in text  # rejected before any loading
