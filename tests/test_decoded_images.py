"""Images decoded once: the training cache (DATALOADER.CACHE_DECODED, vlprompt/data/decoded_images.py) leaves every
augmentation as it is, and the evaluation images of a prompted-tower run (DATALOADER.TEST.CACHE_MB,
vlprompt/engine/eval_images.py) give the same logits, read from memory."""
import logging
import shutil

import pytest
import torch
from torchvision import transforms as T

from conftest import assert_user_error, read_logs, run_cli
from vlprompt.config.setup import get_cfg
from vlprompt.data.manager import DataManager, build_loader
from vlprompt.engine.eval_images import EvalImages
from vlprompt.registry import TRAINER_REGISTRY

AUGMENTED = ["INPUT.SIZE", "(32, 32)", "INPUT.TRANSFORMS", "['random_resized_crop', 'random_flip', 'colorjitter', "
             "'normalize']", "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "VERBOSE", "False"]


def own_dtd(dtd_root, tmp_path):
    """A copy of the synthetic DTD root whose files a test may delete."""
    shutil.copytree(f"{dtd_root}/dtd", tmp_path / "data" / "dtd")
    return str(tmp_path / "data")


def data_manager(root, *extra):
    cfg = get_cfg(["DATASET.ROOT", root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS", "2", "SEED", "1",
                   *AUGMENTED, *extra])
    return DataManager(cfg)


def epochs(loader, n=2, seed=7):
    torch.manual_seed(seed)
    return [(b["img"].clone(), b["label"].clone(), list(b["impath"])) for _ in range(n) for b in loader]


@pytest.mark.parametrize("extra", [["DATALOADER.NUM_WORKERS", "0"], ["DATALOADER.NUM_WORKERS", "2"],
                                   ["DATALOADER.NUM_WORKERS", "2", "DATALOADER.PER_IMAGE_SEEDS", "True"]],
                         ids=["main process", "2 workers", "per-image seeds"])
def test_training_cache_gives_the_same_augmented_batches(dtd_root, extra):
    plain = epochs(data_manager(dtd_root, *extra).train_loader_x)
    dm = data_manager(dtd_root, "DATALOADER.CACHE_DECODED", "True", *extra)
    assert len(dm.decoded) == len(dm.dataset.train_x) == 94  # 2 shots x 47 classes, all kept
    cached = epochs(dm.train_loader_x)
    assert len(plain) == len(cached) == 2 * len(dm.train_loader_x)
    for (img_a, lab_a, path_a), (img_b, lab_b, path_b) in zip(plain, cached):
        assert path_a == path_b and torch.equal(lab_a, lab_b) and torch.equal(img_a, img_b)
    assert not torch.equal(plain[0][0], plain[len(plain) // 2][0])  # the epochs differ: augmentation is random


def test_training_cache_reads_no_file_after_the_first_decode(dtd_root, tmp_path, caplog):
    root = own_dtd(dtd_root, tmp_path)
    with caplog.at_level(logging.INFO):
        dm = data_manager(root, "DATALOADER.CACHE_DECODED", "True", "DATALOADER.NUM_WORKERS", "2")
    assert "94 of 94 training images decoded once" in caplog.text
    for item in dm.dataset.train_x:
        (tmp_path / item.impath).unlink(missing_ok=True)
    assert len(epochs(dm.train_loader_x, n=1)) == len(dm.train_loader_x)  # every batch, from memory


def test_training_cache_keeps_what_fits_the_budget(dtd_root, tmp_path, caplog, monkeypatch):
    from vlprompt.data import decoded_images

    from PIL import Image

    root = own_dtd(dtd_root, tmp_path)
    sizes = [Image.open(d.impath).size for d in data_manager(root).dataset.train_x[:10]]
    monkeypatch.setattr(decoded_images, "MB", sum(w * h * 3 for w, h in sizes))  # 1 "MiB": the first 10 images
    with caplog.at_level(logging.INFO):
        dm = data_manager(root, "DATALOADER.CACHE_DECODED", "True", "DATALOADER.CACHE_DECODED_MB", "1",
                          "DATALOADER.NUM_WORKERS", "0")
    assert len(dm.decoded) == 10
    assert "84 are read from disk every time (over DATALOADER.CACHE_DECODED_MB 1" in caplog.text
    assert set(dm.decoded.pixels) == {d.impath for d in dm.dataset.train_x[:10]}  # a prefix of the training list
    assert len(epochs(dm.train_loader_x, n=1)) == len(dm.train_loader_x)  # the rest still read from disk


@pytest.mark.slow
def test_training_cache_same_run_through_train_py(dtd_root, tiny_clip, tmp_path, capsys):
    """CoOp trained with and without the cache ends with the same prompt, bit for bit."""
    ctx = []
    for name, extra in (("plain", []), ("cached", ["DATALOADER.CACHE_DECODED", "True"])):
        out = tmp_path / name
        code, text = run_cli(["--root", dtd_root, "--seed", "1", "--trainer", "CoOp", "--output-dir", str(out),
                              "--dataset-config-file", "configs/datasets/dtd.yaml",
                              "--config-file", "configs/trainers/CoOp/vit_b16_ep50.yaml",
                              "MODEL.BACKBONE.NAME", tiny_clip["vit"], "DATASET.NUM_SHOTS", "1",
                              "DATASET.SUBSAMPLE_CLASSES", "base", "DATALOADER.TRAIN_X.BATCH_SIZE", "8",
                              "OPTIM.MAX_EPOCH", "2", "TEST.NO_TEST", "True", "TRAINER.COOP.PREC", "fp32",
                              *AUGMENTED[:2], "DATALOADER.NUM_WORKERS", "1", *extra], capsys)
        assert code == 0, text[-3000:]
        ctx.append(torch.load(out / "prompt_learner" / "model.pth.tar-2", weights_only=False)["state_dict"]["ctx"])
    assert "training images decoded once" in read_logs(tmp_path / "cached")
    assert torch.equal(ctx[0], ctx[1])


def test_training_cache_budget_must_be_positive(dtd_root, tiny_clip, tmp_path, capsys):
    code, text = run_cli(["--root", dtd_root, "--trainer", "CoOp", "--output-dir", str(tmp_path / "o"),
                          "--dataset-config-file", "configs/datasets/dtd.yaml", "MODEL.BACKBONE.NAME",
                          tiny_clip["vit"], *AUGMENTED[:2], "DATALOADER.CACHE_DECODED", "True",
                          "DATALOADER.CACHE_DECODED_MB", "0"], capsys)
    assert_user_error(code, text, "DATALOADER.CACHE_DECODED_MB", "0")


def test_eval_images_rebuild_the_loader_batches_exactly(dtd_root, tmp_path):
    root = own_dtd(dtd_root, tmp_path)
    dm = data_manager(root, "DATALOADER.NUM_WORKERS", "2", "DATALOADER.TEST.BATCH_SIZE", "10")
    first = [(b["img"].clone(), b["label"].clone()) for b in dm.test_loader]
    kept = EvalImages(budget_mb=64)
    assert len(list(kept.batches(dm.test_loader, "test", keep=False))) == len(first) and not kept.kept
    assert [torch.equal(b["img"], a[0]) for b, a in zip(kept.batches(dm.test_loader, "test", keep=True), first)] == \
        [True] * len(first)
    for item in dm.dataset.test:  # later evaluations read no file
        (tmp_path / item.impath).unlink(missing_ok=True)
    again = list(kept.batches(dm.test_loader, "test", keep=True))
    assert len(again) == len(first)
    for b, (img, label) in zip(again, first):
        assert b["img"].dtype == torch.float32 and torch.equal(b["img"], img) and torch.equal(b["label"], label)
    pixels = kept.kept[dm.test_loader][0][0][0]
    assert pixels.dtype == torch.uint8 and tuple(pixels.shape) == (10, 3, 32, 32)


def test_eval_images_not_kept_over_budget_or_for_other_transforms(dtd_root, caplog, monkeypatch):
    from vlprompt.engine import eval_images

    dm = data_manager(dtd_root, "DATALOADER.NUM_WORKERS", "0")
    with caplog.at_level(logging.INFO):
        none = EvalImages(budget_mb=0)
        assert len(list(none.batches(dm.test_loader, "test", keep=True))) == len(dm.test_loader) and not none.kept
        monkeypatch.setattr(eval_images, "MB", 1000)  # the test split (3 KiB an image) does not fit 1 "MiB"
        small = EvalImages(budget_mb=1)
        assert len(list(small.batches(dm.test_loader, "test", keep=True))) == len(dm.test_loader) and not small.kept
        monkeypatch.undo()
    assert "over DATALOADER.TEST.CACHE_MB" in caplog.text

    class Noisy(T.Compose):  # ends in ToTensor + Normalize, but adds noise: its batches cannot be rebuilt
        def __call__(self, img):
            return super().__call__(img) + torch.rand(1) * 1e-3

    steps = [T.Resize(32), T.CenterCrop(32), T.ToTensor(), T.Normalize([0.5] * 3, [0.25] * 3)]
    for transform, why in ((T.Compose(steps[:3] + [T.Lambda(lambda x: x / 2)]), None),
                           (Noisy(steps), "is not uint8 pixels scaled by ToTensor and Normalize")):
        loader = build_loader(dm.dataset.test, transform, 32, False, 0)
        other = EvalImages(budget_mb=64)
        for _ in range(2):
            assert len(list(other.batches(loader, "test", keep=True))) == len(loader) and not other.kept
        assert why is None or why in caplog.text


@pytest.mark.slow
def test_prompted_tower_evaluates_from_kept_images_with_the_same_results(dtd_root, tiny_clip, tmp_path, capsys):
    """MaPLe with best-val evaluations: the val split is decoded once; every result is the same as without."""
    results = []
    for name, budget in (("kept", "2048"), ("off", "0")):
        out = tmp_path / name
        code, text = run_cli(["--root", dtd_root, "--seed", "1", "--trainer", "MaPLe", "--output-dir", str(out),
                              "--dataset-config-file", "configs/datasets/dtd.yaml",
                              "MODEL.BACKBONE.NAME", tiny_clip["vit"], "DATASET.NUM_SHOTS", "1",
                              "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "2", "TRAINER.MAPLE.PREC", "fp32",
                              "TRAINER.MAPLE.PROMPT_DEPTH", "2", "TEST.FINAL_MODEL", "best_val", "INPUT.SIZE", "(32, 32)",
                              "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.CACHE_MB", budget], capsys)
        assert code == 0, text[-3000:]
        log = read_logs(out)
        results.append([line for line in log.splitlines() if "* accuracy" in line or "* macro_f1" in line])
        assert ("Evaluation images of the val split are kept in memory" in log) == (name == "kept")
        assert "test split are kept" not in log  # the final evaluation is the split's last: nothing kept
    assert len(results[0]) == 2 + 2 + 2  # accuracy + macro F1 of 2 val evaluations and the final test
    assert results[0] == results[1]


def test_eval_images_unused_when_features_are_cached(dtd_root, tiny_clip):
    cfg = get_cfg(["DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS", "1",
                   "MODEL.BACKBONE.NAME", tiny_clip["vit"], "TRAINER.NAME", "CoOp", "TRAINER.COOP.PREC", "fp32",
                   "OUTPUT_DIR", "", *AUGMENTED, "DATALOADER.NUM_WORKERS", "0"])
    t = TRAINER_REGISTRY.get("CoOp")(cfg)
    t.test("val", final=False)
    assert not t.eval_images.kept  # the feature cache serves CoOp: no pixels kept besides it
