"""Dassl keys that act here (MODEL.INIT_WEIGHTS, TEST.PER_CLASS_RESULT, TEST.COMPUTE_CMAT) and the ones that
cannot (NO_EFFECT_KEYS / UNSUPPORTED_KEYS): one-line errors, while every published config file still loads."""
import glob
import os
import re

import pytest
import torch
from yacs.config import CfgNode as CN

from conftest import REPO, assert_user_error, run_cli
from vlprompt import cli
from vlprompt.config.defaults import NO_EFFECT_KEYS, UNSUPPORTED_KEYS, get_cfg_default
from vlprompt.config.setup import ConfigError, _all_keys, setup_cfg
from vlprompt.engine.checkpoint import init_weight_files, save_checkpoint
from vlprompt.engine.evaluator import Classification
from vlprompt.registry import TRAINER_REGISTRY

CLASS_LINE = re.compile(r"^\* class: (\d+) \((.+)\)\ttotal: ([\d,]+)\tcorrect: ([\d,]+)\tacc: ([0-9.]+)%$", re.M)


def args(root, clip, out, *overrides, flags=(), epochs=1, trainer="CoOp", shots=2):
    return ["--root", root, "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / "configs/trainers/CoOp/vit_b16_ep50.yaml"), "--output-dir", str(out), *flags,
            "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
            "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", str(epochs), "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "DATALOADER.TEST.BATCH_SIZE", "50", "DATASET.NUM_SHOTS", str(shots),
            "DATASET.SUBSAMPLE_CLASSES", "base", "VERBOSE", "False", *overrides]


def ctx_of(path):
    return torch.load(path, weights_only=True)["state_dict"]["ctx"]


@pytest.fixture(scope="module")
def first(dtd_root, tiny_clip, tmp_path_factory):
    """CoOp, 1 epoch (no warm-up, so that the context moves away from its initialisation), with
    TEST.PER_CLASS_RESULT and TEST.COMPUTE_CMAT."""
    out = tmp_path_factory.mktemp("first") / "run"
    assert cli.main(args(dtd_root, tiny_clip["vit"], out, "OPTIM.WARMUP_EPOCH", "-1", "TEST.PER_CLASS_RESULT", "True",
                         "TEST.COMPUTE_CMAT", "True")) == 0
    return out


def final_accuracy(log):
    return re.findall(r"^\* accuracy: ([0-9.]+)%", log, re.M)[-1]


# ---------------------------------------------------------------- TEST.PER_CLASS_RESULT / TEST.COMPUTE_CMAT
@pytest.mark.slow
def test_per_class_lines_and_average_as_dassl(first):
    log = (first / "log.txt").read_text()
    rows = [(int(a), name, int(t.replace(",", "")), int(c.replace(",", "")), float(acc))
            for a, name, t, c, acc in CLASS_LINE.findall(log)]
    assert [r[0] for r in rows] == list(range(24))  # the 24 base classes, in label order
    assert rows[0][1] == "banded" and rows[23][1] == "marbled"
    assert sum(r[2] for r in rows) == int(re.search(r"^\* total: (\d+)", log, re.M).group(1))
    assert sum(r[3] for r in rows) == int(re.search(r"^\* correct: (\d+)", log, re.M).group(1))
    assert all(f"{100 * c / t:.1f}" == f"{acc:.1f}" for _, _, t, c, acc in rows)
    mean = sum(100 * c / t for _, _, t, c, _ in rows) / len(rows)
    assert re.search(rf"^\* macro_f1: .*\n=> per-class result\n(.*\n){{24}}\* average: {mean:.1f}%$", log, re.M)


@pytest.mark.slow
def test_confusion_matrix_files(first):
    log = (first / "log.txt").read_text()
    assert f"is saved to {first / 'cmat.pt'}" in log
    cmat = torch.load(first / "cmat.pt", weights_only=True)
    assert cmat.shape == (24, 24) and cmat.dtype == torch.float64
    assert torch.allclose(cmat.sum(1), torch.ones(24, dtype=torch.float64))  # rows = true class, normalised
    per_class = {int(a): float(acc) for a, _, _, _, acc in CLASS_LINE.findall(log)}
    assert all(f"{100 * float(cmat[i, i]):.1f}" == f"{per_class[i]:.1f}" for i in range(24))
    lines = (first / "cmat.csv").read_text().splitlines()
    assert len(lines) == 25 and lines[0].split(",")[1:3] == ["banded", "blotchy"] and lines[1].startswith("banded,")
    assert [float(x) for x in lines[1].split(",")[1:]] == pytest.approx(cmat[0].tolist(), abs=1e-5)


def test_per_class_results_cover_every_process_after_gather():
    """Under DDP each process evaluates a slice and ``gather`` (``dist.gather_rows``: every process's rows, in
    rank order) replaces it by the whole split before ``evaluate``: the per-class results, the average and the
    confusion matrix are then those of one process over the whole split."""
    torch.manual_seed(0)
    logits, labels = torch.randn(37, 6), torch.randint(0, 5, (37,))  # class 5 has no image
    single = Classification(6)
    single.process(logits, labels)
    ref = single.evaluate()
    ranks = []
    for rows in (slice(0, 20), slice(20, None)):  # two processes, uneven slices
        ev = Classification(6)
        ev.process(logits[rows], labels[rows])
        ranks.append(ev)
    local = [{name: torch.cat(getattr(ev, name)) for name in ("_pred", "_true")} for ev in ranks]
    every = {name: torch.cat([rows[name] for rows in local]) for name in ("_pred", "_true")}
    for rank, ev in enumerate(ranks):
        names = iter(("_pred", "_true"))

        def gather_rows(t, rank=rank, names=names):  # what dist.gather_rows returns in process `rank`
            name = next(names)
            assert torch.equal(t, local[rank][name])
            return every[name]

        ev.gather(gather_rows)
        assert ev.evaluate() == ref and torch.equal(ev.confusion_matrix(), single.confusion_matrix())
    pred = logits.argmax(1)
    accs = [100 * float((pred[labels == c] == c).float().mean()) for c in labels.unique().tolist()]
    assert ref["perclass_average"] == pytest.approx(sum(accs) / len(accs))


# ---------------------------------------------------------------- MODEL.INIT_WEIGHTS
def _trainer(argv):
    return TRAINER_REGISTRY.get("CoOp")(setup_cfg(cli.build_parser().parse_args(argv)))


@pytest.mark.slow
def test_init_weights_set_the_context_at_step_0(first, dtd_root, tiny_clip, tmp_path):
    """The trainer train.py builds from MODEL.INIT_WEIGHTS (a checkpoint file here) holds its context before any
    step (a seed-1 trainer without it holds its own initialisation: see the next test's learning rate 0 run)."""
    ckpt = first / "prompt_learner" / "model.pth.tar-1"
    t = _trainer(args(dtd_root, tiny_clip["vit"], tmp_path / "o", "MODEL.INIT_WEIGHTS", str(ckpt)))
    assert torch.equal(t.model.prompt_learner.ctx.detach().cpu(), ctx_of(ckpt))


def test_init_weight_files_of_a_file_a_run_folder_or_a_module_folder(tmp_path):
    run = tmp_path / "run"
    for epoch in (1, 3):
        save_checkpoint({"state_dict": {}, "epoch": epoch}, str(run / "prompt_learner"))
    newest = str(run / "prompt_learner" / "model.pth.tar-3")
    assert init_weight_files(str(run), ["prompt_learner"]) == {"prompt_learner": newest}  # the `checkpoint` pointer
    assert init_weight_files(str(run / "prompt_learner"), ["prompt_learner"]) == {"prompt_learner": newest}
    first = str(run / "prompt_learner" / "model.pth.tar-1")
    assert init_weight_files(first, ["prompt_learner", "prototype_net"]) == {"prompt_learner": first}
    assert init_weight_files(str(run), ["prompt_learner", "prototype_net"], required=["prompt_learner"]) == {
        "prompt_learner": newest}
    with pytest.raises(ConfigError, match=r"MODEL.INIT_WEIGHTS .*run: no checkpoint of \['other'\].*other/model"):
        init_weight_files(str(run), ["prompt_learner", "other"], required=["other"])
    loose = tmp_path / "weights.pth"
    torch.save({"ctx": torch.zeros(2)}, loose)
    assert init_weight_files(str(loose), ["prompt_learner"]) == {"prompt_learner": str(loose)}
    with pytest.raises(ConfigError, match="is one file, but this method checkpoints several modules"):
        init_weight_files(str(loose), ["prompt_learner", "prototype_net"])


@pytest.mark.slow
def test_init_weights_train_and_eval_through_train_py(first, dtd_root, tiny_clip, tmp_path):
    """A run started from the first run's weights with a learning rate of 0 ends where it started (so it started
    from them), logs where they came from, and evaluates to the first run's accuracy; --eval-only without
    --model-dir evaluates them too."""
    out = tmp_path / "second"
    assert cli.main(args(dtd_root, tiny_clip["vit"], out, "MODEL.INIT_WEIGHTS", str(first), "OPTIM.LR", "0.0",
                         "OPTIM.WARMUP_EPOCH", "-1", shots=1)) == 0
    log = (out / "log.txt").read_text()
    ckpt = first / "prompt_learner" / "model.pth.tar-1"
    assert f'Initial weights (MODEL.INIT_WEIGHTS): loaded prompt_learner from "{ckpt}" (epoch = 1)' in log
    assert "epoch [1/1]" in log  # it trained (a fresh schedule, not a resume of the first run's epoch)
    assert torch.equal(ctx_of(out / "prompt_learner" / "model.pth.tar-1"), ctx_of(ckpt))
    first_log = (first / "log.txt").read_text()
    assert final_accuracy(log) == final_accuracy(first_log)
    assert not (out / "cmat.pt").exists()  # TEST.COMPUTE_CMAT is off here
    ev = tmp_path / "eval"
    assert cli.main(args(dtd_root, tiny_clip["vit"], ev, "MODEL.INIT_WEIGHTS", str(ckpt), flags=["--eval-only"])) == 0
    assert final_accuracy((ev / "log.txt").read_text()) == final_accuracy(first_log)


def test_init_weights_missing_path_is_one_line(capsys, tmp_path):
    missing = str(tmp_path / "nowhere" / "model.pth.tar-5")
    code, text = run_cli(["--trainer", "CoOp", "--output-dir", str(tmp_path / "o"), "MODEL.INIT_WEIGHTS", missing],
                         capsys)
    assert_user_error(code, text, "MODEL.INIT_WEIGHTS", missing)


@pytest.mark.slow
def test_init_weights_of_a_method_that_trains_nothing_is_one_line(first, capsys, dtd_root, tiny_clip, tmp_path):
    code, text = run_cli(args(dtd_root, tiny_clip["vit"], tmp_path / "z", "MODEL.INIT_WEIGHTS", str(first),
                              trainer="ZeroshotCLIP", flags=["--eval-only"]), capsys)
    assert_user_error(code, text, "MODEL.INIT_WEIGHTS", "has no effect in VLPrompt (ZeroshotCLIP trains no weights")


# ---------------------------------------------------------------- keys with no effect
def _leaves(prefix_or_key):
    """The leaf keys of defaults.py that a NO_EFFECT_KEYS entry names (a key, or a prefix ending in "."; "": all)."""
    default = get_cfg_default()
    return [k for k in _all_keys(default) if (k == prefix_or_key or (prefix_or_key.endswith(".") or not prefix_or_key)
            and k.startswith(prefix_or_key)) and not isinstance(_value(default, k), CN)]


def _value(cfg, key):
    for part in key.split("."):
        cfg = cfg[part]
    return cfg


def _other_value(v):
    if isinstance(v, bool):
        return str(not v)
    if isinstance(v, (int, float)):
        return str(v + 1)
    if isinstance(v, (tuple, list)):
        return "['x']"
    return f"{v}x"


TABLE = [(leaf, table) for table in (NO_EFFECT_KEYS, UNSUPPORTED_KEYS) for key in table for leaf in _leaves(key)]


@pytest.mark.parametrize("key,table", TABLE, ids=[k for k, _ in TABLE])
def test_every_key_without_effect_is_rejected_when_set(key, table):
    value = _other_value(_value(get_cfg_default(), key))
    with pytest.raises(ConfigError) as e:
        setup_cfg(cli.build_parser().parse_args([key, value]))
    verb = "has no effect" if table is NO_EFFECT_KEYS else "is not supported"
    assert str(e.value).startswith(f"{key} ") and f"{verb} in VLPrompt (" in str(e.value)
    assert str(e.value).endswith("remove it from the command line")
    default = _value(get_cfg_default(), key)  # its default value is accepted (published files may spell it out)
    setup_cfg(cli.build_parser().parse_args([key, str(list(default) if isinstance(default, tuple) else default)]))


def test_no_effect_key_in_a_yaml_file_flag_or_command_line_is_one_line(capsys, tmp_path):
    yaml = tmp_path / "method.yaml"
    yaml.write_text("OPTIM:\n  NAME: sgd\n  STAGED_LR: True\n")
    code, text = run_cli(["--config-file", str(yaml), "--output-dir", str(tmp_path / "o")], capsys)
    line = assert_user_error(code, text, "OPTIM.STAGED_LR True has no effect in VLPrompt", f"remove it from {yaml}")
    assert line.endswith(f"remove it from {yaml}")
    code, text = run_cli(["--head", "mlp", "--output-dir", str(tmp_path / "o")], capsys)
    assert_user_error(code, text, "MODEL.HEAD.NAME mlp has no effect", "the command line (--head)")
    code, text = run_cli(["--output-dir", str(tmp_path / "o"), "DATALOADER.K_TRANSFORMS", "2"], capsys)
    assert_user_error(code, text, "DATALOADER.K_TRANSFORMS 2 has no effect", "remove it from the command line")
    assert not (tmp_path / "o").exists()  # rejected before the run folder is claimed


def test_every_published_config_file_loads():
    files = sorted(glob.glob(str(REPO / "configs" / "**" / "*.yaml"), recursive=True))
    datasets = [f for f in files if "/configs/datasets/" in f]
    methods = [f for f in files if "/configs/trainers/" in f]
    assert len(datasets) >= 15 and len(methods) >= 30
    for method in methods:  # every method file with a dataset file, every dataset file with a method file
        setup_cfg(cli.build_parser().parse_args(["--dataset-config-file", datasets[0], "--config-file", method]))
    for dataset in datasets:
        setup_cfg(cli.build_parser().parse_args(["--dataset-config-file", dataset, "--config-file", methods[0]]))


def test_every_base_key_is_read_somewhere_or_listed_as_without_effect():
    """A guard against silently ignored keys: each leaf of defaults.py is named (``.<LEAF>``) in the engine,
    the trainers or the dataset readers, or is in NO_EFFECT_KEYS / UNSUPPORTED_KEYS."""
    listed = {leaf for table in (NO_EFFECT_KEYS, UNSUPPORTED_KEYS) for key in table for leaf in _leaves(key)}
    sources = [p for d in ("vlprompt", "trainers", "datasets") for p in glob.glob(str(REPO / d / "**" / "*.py"),
                                                                             recursive=True)
               if not p.endswith(os.path.join("config", "defaults.py"))]
    text = "\n".join(open(p, encoding="utf-8").read() for p in sources)
    unread = [k for k in _leaves("") if k not in listed and not re.search(rf"\.{k.rsplit('.', 1)[-1]}\b", text)]
    assert unread == []


def test_docs_list_every_key_without_effect():
    text = (REPO / "docs" / "CONFIG.md").read_text()
    for key in [*NO_EFFECT_KEYS, *UNSUPPORTED_KEYS]:
        assert f"`{key.rstrip('.')}" in text, f"docs/CONFIG.md does not list {key}"
