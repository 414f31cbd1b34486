"""The evaluation feature cache (vlprompt/engine/feature_cache.py): bit-identical logits with and without it, hits in
memory and on disk, misses on any change of images, backbone, precision or transform, unreadable files, concurrent
writers, --no-feature-cache, and torchrun."""
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import threading

import pytest
import torch

from conftest import REPO, run_cli
from vlprompt import cli
from vlprompt.config.setup import get_cfg, setup_cfg
from vlprompt.data.datum import Datum
from vlprompt.data.manager import build_loader
from vlprompt.data.transforms import build_transform
from vlprompt.engine import Trainer
from vlprompt.engine.feature_cache import Entry, FeatureCache, load_entry, save_entry
from vlprompt.engine.run_folder import config_hash
from vlprompt.registry import TRAINER_REGISTRY

SMALL = ["INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TEST.BATCH_SIZE", "7", "SEED", "1",
         "VERBOSE", "False"]


def trainer(name, dtd_root, clip, cache_dir, *extra):
    node = {"ZeroshotCLIP": "COOP"}.get(name, name.upper())
    cfg = get_cfg(["DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS", "1",
                   "DATASET.SUBSAMPLE_CLASSES", "base", "MODEL.BACKBONE.NAME", clip, "TRAINER.NAME", name,
                   f"TRAINER.{node}.PREC", "fp32", "OUTPUT_DIR", "", "MODEL.FEATURE_CACHE_DIR", str(cache_dir),
                   *SMALL, *extra])
    torch.manual_seed(0)
    return TRAINER_REGISTRY.get(name)(cfg)


def evaluate(t, split="test"):
    """Run ``t.test(split)`` and return the logits and labels it evaluated, batch by batch, and its results."""
    seen = []
    process = t.evaluator.process

    def record(logits, labels):
        seen.append((logits.clone(), labels.clone()))
        process(logits, labels)

    t.evaluator.process = record
    try:
        t.test(split, final=False)
    finally:
        t.evaluator.process = process
    return seen, t.evaluator.evaluate()


def assert_same(a, b):
    (la, ra), (lb, rb) = a, b
    assert len(la) == len(lb)
    for (x, y), (u, v) in zip(la, lb):
        assert x.dtype == u.dtype and torch.equal(x, u) and torch.equal(y, v)  # bit for bit, batch by batch
    assert ra == rb


# ---------------------------------------------------------------- identical results
@pytest.mark.parametrize("name,extra", [("CoOp", ()), ("CoOp", ("TRAINER.COOP.PREC", "amp")), ("CoCoOp", ()),
                                        ("InstancePrompt", ())])
def test_logits_are_bit_identical_with_and_without_the_cache(name, extra, dtd_root, tiny_clip, tmp_path, caplog):
    """10 val images (batches of 7 and 3) without the cache, computed and saved, and from the file."""
    caplog.set_level(logging.INFO, logger="vlprompt")
    t = trainer(name, dtd_root, tiny_clip["vit"], tmp_path, *extra)
    t.dm.val_loader = build_loader(t.dm.dataset.val[:10], t.dm.tfm_test, 7, False, 0, "SequentialSampler")
    t.feature_cache.enabled = False
    plain = evaluate(t, "val")
    assert os.listdir(tmp_path) == [] and "Feature cache" not in caplog.text
    t.feature_cache.enabled = True
    assert_same(evaluate(t, "val"), plain)  # computed (miss) and saved
    assert "Feature cache miss" in caplog.text and len(os.listdir(tmp_path)) == 1
    t._feature_cache = None  # as a new process: from the file
    assert_same(evaluate(t, "val"), plain)
    assert re.search(r"Feature cache hit \(file\): the val features of 10 images read from .*\.pt", caplog.text)
    # the uncached path computes the same logits through model_inference
    with torch.no_grad(), t.precision.autocast():
        t.forget_precomputed()
        assert torch.equal(t.model_inference(next(iter(t.dm.val_loader))["img"]).float(), plain[0][0][0])


def test_a_second_run_hits_the_file_and_val_and_test_are_separate(dtd_root, tiny_clip, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vlprompt")
    first = trainer("ZeroshotCLIP", dtd_root, tiny_clip["vit"], tmp_path)
    a_test, a_val = evaluate(first), evaluate(first, "val")
    assert caplog.text.count("Feature cache miss") == 2 and len(os.listdir(tmp_path)) == 2
    assert_same(evaluate(first), a_test)  # repeated evaluations of this run: from memory
    assert "Feature cache hit (memory): the test features of 48 images reused from memory" in caplog.text
    caplog.clear()
    second = trainer("ZeroshotCLIP", dtd_root, tiny_clip["vit"], tmp_path)  # another trainer, its own CLIP
    assert_same(evaluate(second), a_test)
    assert_same(evaluate(second, "val"), a_val)
    assert caplog.text.count("Feature cache hit (file)") == 2 and "miss" not in caplog.text


def test_every_frozen_tower_method_caches_and_prompted_towers_do_not():
    cached = {n for n in TRAINER_REGISTRY.names() if TRAINER_REGISTRY.get(n).caches_features()}
    assert cached == {"ZeroshotCLIP", "ZeroshotCLIP2", "CoOp", "CoCoOp", "KgCoOp", "MetaProto", "InstancePrompt",
                      "LinearProbeCLIP"}

    class PromptedCoOp(TRAINER_REGISTRY.get("CoOp")):  # prompts its image tower: must not reuse features
        def model_inference(self, images):
            return super().model_inference(images)

    assert not PromptedCoOp.caches_features() and not Trainer.caches_features()


# ---------------------------------------------------------------- keys
def items_in(folder, dtd_root, n=6):
    src = sorted(p for p in (os.path.join(r, f) for r, _, fs in os.walk(dtd_root) for f in fs) if p.endswith(".jpg"))
    os.makedirs(folder, exist_ok=True)
    items = []
    for i, path in enumerate(src[:n]):
        dst = os.path.join(folder, f"{i}.jpg")
        shutil.copyfile(path, dst)
        items.append(Datum(dst, i % 3))
    return items


TOWER = torch.nn.Linear(3, 2)


def cache_for(tmp_path, cfg_opts=(), tower=TOWER, precision="fp32"):
    cfg = get_cfg(["MODEL.FEATURE_CACHE_DIR", str(tmp_path / "cache"), *SMALL, *cfg_opts])
    return FeatureCache(cfg, tower, precision, torch.device("cpu")), cfg


def key_of(cache, cfg, items, batch_size=4):
    return cache.key(build_loader(items, build_transform(cfg, is_train=False), batch_size, False, 0,
                                  "SequentialSampler"))[0]


def test_the_key_follows_image_bytes_weights_precision_transform_and_batch_size(dtd_root, tmp_path, loaded_clip):
    items = items_in(tmp_path / "a", dtd_root)
    cache, cfg = cache_for(tmp_path)
    key = key_of(cache, cfg, items)
    assert key_of(cache, cfg, items) == key
    moved = items_in(tmp_path / "b", dtd_root)  # the same files elsewhere: the same content, the same key
    assert key_of(cache, cfg, moved) == key
    with open(moved[2].impath, "ab") as f:  # one image's bytes change
        f.write(b"\0")
    assert key_of(cache, cfg, moved) != key
    assert key_of(cache, cfg, [*items[:2], Datum(items[2].impath, 0), *items[3:]]) != key  # a label
    assert key_of(cache, cfg, items[:5]) != key  # the image list
    assert key_of(cache, cfg, items, batch_size=5) != key
    other_weights = torch.nn.Linear(3, 2)
    assert key_of(cache_for(tmp_path, tower=other_weights)[0], cfg, items) != key
    assert key_of(cache_for(tmp_path, precision="amp")[0], cfg, items) != key
    bicubic, cfg2 = cache_for(tmp_path, ["INPUT.INTERPOLATION", "bicubic"])
    assert key_of(bicubic, cfg2, items) != key
    vit, rn = (loaded_clip(s).visual for s in ("vit", "rn"))
    assert key_of(cache_for(tmp_path, tower=vit)[0], cfg, items) != key_of(cache_for(tmp_path, tower=rn)[0], cfg, items)
    half = torch.nn.Linear(3, 2)  # the digest is of the weights as used, after the precision cast
    half.load_state_dict(other_weights.state_dict())
    assert key_of(cache_for(tmp_path, tower=half)[0], cfg, items) == key_of(cache_for(tmp_path, tower=other_weights)[0],
                                                                              cfg, items)
    assert key_of(cache_for(tmp_path, tower=half.half())[0], cfg, items) != key_of(
        cache_for(tmp_path, tower=other_weights)[0], cfg, items)


def features_of(items, cache, cfg, batch_size=4):
    loader = build_loader(items, build_transform(cfg, is_train=False), batch_size, False, 0, "SequentialSampler")
    calls = []

    def compute(images):
        calls.append(images.shape[0])
        return images.flatten(1)[:, :5] * 2

    return cache.batches(loader, "test", compute), calls


def test_a_corrupt_file_is_computed_again_and_replaced(dtd_root, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vlprompt")
    items = items_in(tmp_path / "a", dtd_root)
    cache, cfg = cache_for(tmp_path)
    first, calls = features_of(items, cache, cfg)
    assert calls == [4, 2]
    path = cache.path(key_of(cache, cfg, items))
    for garbage in (b"not a torch file", b""):
        with open(path, "wb") as f:
            f.write(garbage)
        again, calls = features_of(items, FeatureCache(cfg, cache.tower, "fp32", cache.device), cfg)
        assert calls == [4, 2] and "is unreadable" in caplog.text and "computing the features again" in caplog.text
        assert all(torch.equal(a[0], b[0]) and torch.equal(a[1], b[1]) for a, b in zip(first, again))
        caplog.clear()
    assert load_entry(path, torch.tensor([d.label for d in items])).features.shape == (6, 5)  # replaced
    hit, calls = features_of(items, FeatureCache(cfg, cache.tower, "fp32", cache.device), cfg)
    assert calls == [] and [f.shape[0] for f, _ in hit] == [4, 2]  # the loader's batches


def test_a_file_of_other_labels_is_not_used(dtd_root, tmp_path, caplog):
    items = items_in(tmp_path / "a", dtd_root)
    cache, cfg = cache_for(tmp_path)
    features_of(items, cache, cfg)
    path = cache.path(key_of(cache, cfg, items))
    save_entry(path, Entry(torch.zeros(5, 5), torch.zeros(5, dtype=torch.long), 1.0), {})
    _, calls = features_of(items, FeatureCache(cfg, cache.tower, "fp32", cache.device), cfg)
    assert calls == [4, 2] and "holds 5 rows for 6 images" in caplog.text


def test_concurrent_writers_leave_one_valid_file(tmp_path):
    path = str(tmp_path / "cache" / "k.pt")
    entry = Entry(torch.randn(500, 64).half(), torch.arange(500), 2.0)
    errors = []

    def write():
        try:
            for _ in range(5):
                save_entry(path, entry, {"who": threading.get_ident()})
                got = load_entry(path, entry.labels)  # a reader never sees a partial file
                assert torch.equal(got.features, entry.features) and got.features.dtype == torch.float16
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    threads = [threading.Thread(target=write) for _ in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert errors == [] and os.listdir(tmp_path / "cache") == ["k.pt"]  # no temporary file left


def test_not_used_when_off_or_skipping_bad_images(dtd_root, tmp_path, caplog):
    caplog.set_level(logging.INFO, logger="vlprompt")
    items = items_in(tmp_path / "a", dtd_root)
    for opts, why in ((["MODEL.FEATURE_CACHE", "False"], None), (["DATALOADER.SKIP_BAD_IMAGES", "True"], "SKIP_BAD")):
        cache, cfg = cache_for(tmp_path, opts)
        assert features_of(items, cache, cfg) == (None, [])
        assert not (tmp_path / "cache").exists()
        assert (why in caplog.text) if why else "Feature cache" not in caplog.text
    cache, cfg = cache_for(tmp_path)
    random_order = build_loader(items, build_transform(cfg, is_train=False), 4, False, 0, "RandomSampler")
    assert cache.batches(random_order, "test", lambda x: x) is None and "in order" in caplog.text


def test_unreadable_cache_folder_keeps_the_features_for_the_run(dtd_root, tmp_path, caplog):
    items = items_in(tmp_path / "a", dtd_root)
    (tmp_path / "file").write_text("")
    cache, cfg = cache_for(tmp_path, ["MODEL.FEATURE_CACHE_DIR", str(tmp_path / "file" / "sub")])
    batches, calls = features_of(items, cache, cfg)
    assert calls == [4, 2] and "cannot write" in caplog.text
    assert features_of(items, cache, cfg)[1] == []  # from memory


def test_keys_and_flag(tmp_path, monkeypatch):
    parser = cli.build_parser()
    assert setup_cfg(parser.parse_args([])).MODEL.FEATURE_CACHE is True
    cfg = setup_cfg(parser.parse_args(["--no-feature-cache", "MODEL.FEATURE_CACHE_DIR", str(tmp_path)]))
    assert cfg.MODEL.FEATURE_CACHE is False and cfg.MODEL.FEATURE_CACHE_DIR == str(tmp_path)
    assert config_hash(cfg) == config_hash(setup_cfg(parser.parse_args([])))  # operational keys
    monkeypatch.delenv("VLPROMPT_FEATURE_CACHE_DIR", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert FeatureCache(get_cfg(), torch.nn.Linear(1, 1), "fp32", torch.device("cpu")).directory == str(
        tmp_path / "xdg" / "vlprompt" / "features")


# ---------------------------------------------------------------- train.py
def zs_args(root, clip, out, *extra, flags=()):
    return ["--root", root, "--seed", "1", "--trainer", "ZeroshotCLIP",
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / "configs/trainers/CoOp/vit_b16_ep50.yaml"),
            "--output-dir", str(out), "--eval-only", *flags, "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)",
            "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False", "TEST.PER_CLASS_RESULT", "True", *extra]


def result_lines(log):
    return [line for line in log.splitlines() if line.startswith("* ")]


@pytest.mark.slow
def test_train_py_second_run_hits_and_no_feature_cache_bypasses(dtd_root, tiny_clip, tmp_path, capsys):
    cache = tmp_path / "cache"
    logs = []
    for i, flags in enumerate([(), (), ("--no-feature-cache",)]):
        code, _ = run_cli(zs_args(dtd_root, tiny_clip["vit"], tmp_path / f"o{i}", "MODEL.FEATURE_CACHE_DIR", str(cache),
                                  flags=flags), capsys)
        assert code == 0
        logs.append((tmp_path / f"o{i}" / "log.txt").read_text())
        if i == 0:
            files = os.listdir(cache)
    assert "Feature cache miss" in logs[0] and len(files) == 1
    assert f"Feature cache hit (file): the test features of 94 images read from {cache / files[0]}" in logs[1]
    assert "Feature cache" not in logs[2] and os.listdir(cache) == files  # bypassed: nothing read or written
    assert result_lines(logs[0]) == result_lines(logs[1]) == result_lines(logs[2])
    assert len(result_lines(logs[0])) > 40  # * accuracy ... and the per-class lines
    hashes = {json.loads((tmp_path / f"o{i}" / "run.json").read_text())["config_hash"] for i in range(3)}
    assert len(hashes) == 1


@pytest.mark.slow
def test_torchrun_shards_gather_and_hit_with_the_results_of_no_cache(dtd_root, tiny_clip, tmp_path):
    """2 processes (gloo): without the cache, a miss (each computes its slice; process 0 writes the whole split) and a
    hit (each takes its slice) give the same result lines (46 images: 23 per process, in batches of 5 and a last 3)."""
    cache = tmp_path / "cache"
    extra = ("MODEL.FEATURE_CACHE_DIR", str(cache), "DATALOADER.TEST.BATCH_SIZE", "5", "DATASET.NUM_SHOTS", "1",
             "DATASET.SUBSAMPLE_CLASSES", "new")
    runs = [zs_args(dtd_root, tiny_clip["vit"], tmp_path / name, *extra, flags=flags)
            for name, flags in (("plain", ("--no-feature-cache",)), ("miss", ()), ("hit", ()))]
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "--module",
           "vlprompt.testing.ddp_check", "--run-many", json.dumps(runs)]
    p = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=300,
                       env=dict(os.environ, OMP_NUM_THREADS="1"))
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    logs = {name: (tmp_path / name / "log.txt").read_text() for name in ("plain", "miss", "hit")}
    assert "Distributed: 2 processes" in logs["miss"]
    assert "Feature cache miss" in logs["miss"] and "Feature cache hit (file)" in logs["hit"]
    assert result_lines(logs["plain"]) == result_lines(logs["miss"]) == result_lines(logs["hit"])
    assert "* total: 46" in logs["hit"]
    (name,) = os.listdir(cache)
    assert torch.load(cache / name, weights_only=True)["features"].shape[0] == 46  # the whole split, both processes
