"""The scripts' shared command line (scripts/common.sh) and the published script names and arguments: usage, bad
input, the train.py commands they make (DRY_RUN=1, no model), and end to end on the tiny CLIP (marked slow)."""
from __future__ import annotations

import os
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from conftest import REPO, repo_copy, run_script, script_env
from vlprompt import results

OTHERS = {"scripts/metaproto/reproduce_table.sh", "scripts/instance_prompt/reproduce_table.sh"}  # not on parse_args
SCRIPTS = sorted(str(p.relative_to(REPO)) for p in (REPO / "scripts").glob("*/*.sh") if
                 str(p.relative_to(REPO)) not in OTHERS)
MAPLE = "vit_b16_c2_ep5_batch4_2ctx"


def bash(script: str, *argv: str, cwd: Path = REPO, **env) -> subprocess.CompletedProcess:
    return subprocess.run(["bash", str(cwd / script), *argv], cwd=cwd, env=script_env(env.pop("data", ""), **env),
                          capture_output=True, text=True, timeout=120)


def error_lines(p: subprocess.CompletedProcess) -> list[str]:
    return [line for line in (p.stdout + p.stderr).splitlines() if line.startswith("Error:")]


def commands(p: subprocess.CompletedProcess) -> list[str]:
    """The train.py commands a DRY_RUN=1 run printed."""
    assert p.returncode == 0, p.stdout[-2000:] + p.stderr[-2000:]
    return [line.split(" train.py ", 1)[1] for line in p.stdout.splitlines() if line.startswith("[dry run]")]


def dry(script: str, *argv: str, **env) -> list[str]:
    return commands(bash(script, *argv, DRY_RUN="1", **env))


# ---------------------------------------------------------------- usage and bad input (no python model)
@pytest.mark.parametrize("script", SCRIPTS)
def test_help_prints_the_scripts_own_usage(script):
    p = bash(script, "--help")
    assert p.returncode == 0 and not p.stderr, p.stderr
    assert f"bash {script} " in p.stdout, p.stdout  # the usage line of its header, with its own path
    assert not p.stdout.startswith("#") and "source \"$(" not in p.stdout


@pytest.mark.parametrize("script,argv,missing", [
    ("scripts/maple/base2new_train.sh", ["dtd"], "SEED"),
    ("scripts/maple/base2new_test_maple.sh", [], "DATASET"),
    ("scripts/maple/reproduce_maple.sh", [], "DATASET"),
    ("scripts/promptsrc/reproduce_xd.sh", ["dtd", "1"], "WEIGHTSPATH"),
    ("scripts/coop/main.sh", ["dtd", "rn50", "end", "OPTIM.LR", "0.1"], "NCTX"),
    ("scripts/coop/eval.sh", ["imagenetv2"], "CFG"),
    ("scripts/vpt/few_shot.sh", ["dtd"], "SHOTS"),
    ("scripts/independent-vlp/xd_train_ivlp.sh", ["imagenet"], "SEED"),
])
def test_missing_positionals_print_usage_and_exit_2(script, argv, missing):
    p = bash(script, *argv)
    assert p.returncode == 2, p.stdout + p.stderr
    assert f"bash {script} " in p.stderr  # the usage
    assert error_lines(p) == [f"Error: missing argument {missing}"]
    assert "Traceback" not in p.stderr and "[dry run]" not in p.stdout


@pytest.mark.parametrize("script,argv,names", [
    ("scripts/maple/base2new_train.sh", ["dtdd", "1", "MODEL.BACKBONE.NAME", "/x.pt"], ["'dtdd'", "'dtd'"]),
    ("scripts/maple/reproduce_maple.sh", ["imagenet_sktch", "1", "/weights"], ["'imagenet_sketch'"]),
    ("scripts/kgcoop/xd_train.sh", ["imagenett", "1"], ["'imagenett'", "'imagenet'"]),
    ("scripts/zsclip/zeroshot.sh", ["oxford_pet"], ["'oxford_pets'"]),
    ("scripts/vpt/few_shot.sh", ["dtd_", "4"], ["'dtd'"]),
])
def test_unknown_dataset_is_one_error_line_before_python(script, argv, names, tmp_path):
    work = repo_copy(tmp_path / "repo")
    p = bash(script, *argv, cwd=work, data=str(tmp_path / "no_data"))
    assert p.returncode == 2, p.stdout + p.stderr
    (line,) = error_lines(p)
    assert line.startswith(f"Error: unknown dataset '{argv[0]}' (did you mean ")
    assert all(n in line for n in names) and "choose from: caltech101, dtd, eurosat" in line
    assert "Traceback" not in p.stderr and not (work / "output").exists()


@pytest.mark.parametrize("script,argv,text", [
    ("scripts/maple/base2new_train.sh", ["dtd", "1", "vit_b16_c2_ep5_batch4_2ctxx"], "unknown MaPLe config"),
    ("scripts/coop/zeroshot.sh", ["dtd", "vit_b61"], "(did you mean 'vit_b16'"),
    ("scripts/maple/base2new_train.sh", ["dtd", "one"], "SEED must be an integer, got 'one'"),
    ("scripts/maple/base2new_train.sh", ["dtd", "1", MAPLE, "16", "extra"], "unexpected argument 'extra'"),
    ("scripts/maple/base2new_train.sh", ["dtd", "1", "OPTIM.LR"], "'OPTIM.LR' has no value"),
    ("scripts/maple/reproduce_maple.sh", ["dtd", "1", "/no/such/weights"], "/no/such/weights has no base/seed1"),
    ("scripts/coop/zeroshot.sh", ["dtd", "DATASET.SUBSAMPLE_CLASSES", "old"], "SUB must be all, base, new"),
])
def test_bad_arguments_are_one_error_line(script, argv, text):
    p = bash(script, *argv, DRY_RUN="1")
    assert p.returncode == 2 and [text in line for line in error_lines(p)] == [True], p.stdout + p.stderr


# ---------------------------------------------------------------- the commands they make (DRY_RUN=1)
def test_trailing_override_ends_the_positionals():
    (cmd,) = dry("scripts/maple/base2new_train.sh", "dtd", "1", "MODEL.BACKBONE.NAME", "/path/ckpt.pt", "SEED", "3")
    assert f"--output-dir output/base2new/train_base/dtd/shots_16/MaPLe/{MAPLE}/seed1 " in cmd
    assert f"--config-file configs/trainers/MaPLe/{MAPLE}.yaml " in cmd
    assert cmd.endswith("DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base MODEL.BACKBONE.NAME /path/ckpt.pt SEED 3 ")
    (cmd,) = dry("scripts/maple/base2new_test.sh", "dtd", "2", "", "4", "OPTIM.MAX_EPOCH", "1")
    assert f"test_new/dtd/shots_4/MaPLe/{MAPLE}/seed2 " in cmd and "--load-epoch 1 --eval-only" in cmd


def test_reproduce_takes_the_published_arguments(tmp_path):
    weights = tmp_path / "weights"
    (weights / "base" / "seed2").mkdir(parents=True)
    base, new = dry("scripts/maple/reproduce_maple.sh", "dtd", "2", str(weights))
    for cmd, sub in ((base, "base"), (new, "new")):
        assert f"--output-dir output/base2new/test_{sub}/dtd/shots_16/MaPLe/{MAPLE}/seed2 " in cmd
        assert f"--model-dir {weights}/base/seed2 --load-epoch 5 --eval-only" in cmd
        assert cmd.endswith(f"DATASET.SUBSAMPLE_CLASSES {sub} ")
    lp = dry("scripts/language-prompting/reproduce_lp.sh", "dtd", "2", str(weights))
    assert len(lp) == 2 and all("IVLP/vit_b16_c2_ep5_batch4_4ctx_language_only/seed2" in c for c in lp)
    # DATASET alone: train + test for each seed of SEEDS (our multi-seed form)
    cmds = dry("scripts/vpt/reproduce_vpt.sh", "dtd", "OPTIM.MAX_EPOCH", "1", SEEDS="1 2")
    assert [c.split()[3].split("/")[2] for c in cmds] == ["train_base", "test_new"] * 2
    assert "--load-epoch 1 " in cmds[1]
    (xd,) = dry("scripts/maple/reproduce_maple_xd.sh", "caltech101", "2", str(weights / "base"))
    assert "--output-dir output/evaluation/MaPLe/vit_b16_c2_ep5_batch4_2ctx_cross_datasets_16shots/caltech101/seed2 " in xd
    assert f"--model-dir {weights}/base/seed2 --load-epoch 2 --eval-only" in xd


def test_published_aliases_and_new_scripts():
    (cmd,) = dry("scripts/independent-vlp/xd_train_ivlp.sh", "imagenet", "1")
    assert "--output-dir output/imagenet/IVLP/vit_b16_c2_ep5_batch4_2+2ctx_16shots/seed1 " in cmd
    (cmd,) = dry("scripts/language-prompting/base2new_train_lp.sh", "dtd", "1")
    assert "configs/trainers/IVLP/vit_b16_c2_ep5_batch4_4ctx_language_only.yaml" in cmd
    (cmd,) = dry("scripts/kgcoop/xd_train.sh", "1")  # the published KgCoOp cross-dataset source: 4 shots
    assert "output/imagenet/KgCoOp/vit_b16_ep100_ctxv1_4shots/seed1 " in cmd and "DATASET.NUM_SHOTS 4" in cmd
    evals = dry("scripts/coop/eval.sh", "imagenet_sketch", "rn50_ep50")
    run = "rn50_ep50_16shots/nctx16_cscFalse_ctpend"
    assert [c.split()[3] for c in evals] == [f"output/evaluation/CoOp/{run}/imagenet_sketch/seed{s}" for s in (1, 2, 3)]
    assert f"--model-dir output/imagenet/CoOp/{run}/seed3 --load-epoch 50 --eval-only" in evals[2]
    shots = dry("scripts/metaproto/few_shot.sh", "dtd", "all", SEEDS="1")
    assert [c.split()[3] for c in shots] == [f"output/dtd/MetaProto/vit_b16_ep100_n5_k2_{k}shots/seed1"
                                             for k in (1, 2, 4, 8, 16)]
    (cmd,) = dry("scripts/instance_prompt/xd_test.sh", "eurosat", "1")
    assert "--model-dir output/imagenet/InstancePrompt/vit_b16_ep50_16shots/seed1 --load-epoch 50" in cmd


def test_zeroshot_folders_per_subsample_and_template():
    (all_classes,) = dry("scripts/zsclip/zeroshot.sh", "dtd", "vit_b16")
    assert "--output-dir output/ZeroshotCLIP/vit_b16/dtd " in all_classes  # the published folder
    base, new = dry("scripts/coop/zeroshot.sh", "dtd", "TRAINER.ZEROSHOT.TEMPLATE", "a photo of a {}.", SUB="base2new")
    for cmd, sub in ((base, "base"), (new, "new")):
        folder = re.search(r"--output-dir (\S+) ", cmd).group(1)
        assert re.fullmatch(rf"output/base2new/test_{sub}/dtd/ZeroshotCLIP/vit_b16_tpl_a_photo_of_a_CLS_[0-9a-f]{{8}}",
                            folder), folder
    (other,) = dry("scripts/coop/zeroshot.sh", "dtd", "TRAINER.ZEROSHOT.TEMPLATE", "a photo of a {}", SUB="new")
    assert re.search(r"--output-dir (\S+) ", other).group(1) != folder  # another template, another folder


# ---------------------------------------------------------------- end to end on the tiny CLIP
def tiny(clip: str, prec_node: str) -> list[str]:
    return ["MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", f"TRAINER.{prec_node}.PREC", "fp32",
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.TRAIN_X.BATCH_SIZE", "64", "DATALOADER.NUM_WORKERS", "0",
            "VERBOSE", "False"]


METAPROTO = ["TRAINER.METAPROTO.N_WAY", "3", "TRAINER.METAPROTO.K_SHOT", "1", "TRAINER.METAPROTO.META_BATCH", "2",
             "TRAINER.METAPROTO.ITERS_PER_EPOCH", "2"]


@pytest.fixture(scope="module")
def e2e(dtd_root, tiny_clip, tmp_path_factory):
    """Two chains side by side in one repo copy (a second copy for the released-weights evaluation):
    MaPLe train (trailing overrides, no CFG) -> test -> reproduce_maple.sh DATASET SEED WEIGHTSPATH, and
    zero-shot base (zsclip alias) / new (override) -> VPT few_shot.sh -> MetaProto xd_train (SOURCE SEED) / xd_test."""
    root = tmp_path_factory.mktemp("published")
    work, work2 = repo_copy(root / "repo"), repo_copy(root / "repo2")
    vit = tiny_clip["vit"]
    weights = root / "weights" / "dtd"
    out: dict[str, subprocess.CompletedProcess] = {}

    def maple_chain():
        o = tiny(vit, "MAPLE")
        out["train"] = run_script(work, "scripts/maple/base2new_train.sh", "dtd", "1", *o, data=dtd_root,
                                  OMP_NUM_THREADS="1")
        out["test"] = run_script(work, "scripts/maple/base2new_test.sh", "dtd", "1", *o, data=dtd_root,
                                 OMP_NUM_THREADS="1")
        (weights / "base").mkdir(parents=True)
        os.symlink(work / f"output/base2new/train_base/dtd/shots_16/MaPLe/{MAPLE}/seed1", weights / "base" / "seed1")
        out["reproduce"] = run_script(work2, "scripts/maple/reproduce_maple.sh", "dtd", "1", str(weights), *o,
                                      data=dtd_root, OMP_NUM_THREADS="1")

    def other_chain():
        o = tiny(vit, "COOP")
        out["zs_base"] = run_script(work, "scripts/zsclip/zeroshot.sh", "dtd", *o, data=dtd_root, SUB="base",
                                    OMP_NUM_THREADS="1")
        out["zs_new"] = run_script(work, "scripts/coop/zeroshot.sh", "dtd", "vit_b16", *o,
                                   "DATASET.SUBSAMPLE_CLASSES", "new", data=dtd_root, OMP_NUM_THREADS="1")
        out["few_shot"] = run_script(work, "scripts/vpt/few_shot.sh", "dtd", "1", *tiny(vit, "VPT"), data=dtd_root,
                                     SEEDS="1", OMP_NUM_THREADS="1")
        mp = [*tiny(vit, "METAPROTO"), *METAPROTO]
        out["xd_train"] = run_script(work, "scripts/metaproto/xd_train.sh", "dtd", "1", "", "2", *mp, data=dtd_root,
                                     OMP_NUM_THREADS="1")
        out["xd_test"] = run_script(work, "scripts/metaproto/xd_test.sh", "dtd", "1", "", "2", *mp, data=dtd_root,
                                    SOURCE="dtd", OMP_NUM_THREADS="1")

    with ThreadPoolExecutor(2) as pool:
        for f in [pool.submit(maple_chain), pool.submit(other_chain)]:
            f.result()
    return work, work2, weights, out


@pytest.mark.slow
def test_maple_with_trailing_override_and_no_cfg(e2e):
    work, _, _, out = e2e
    common = f"dtd/shots_16/MaPLe/{MAPLE}/seed1"
    assert (work / "output/base2new/train_base" / common / "MultiModalPromptLearner/model.pth.tar-1").is_file()
    assert f"Output:\n  output/base2new/train_base/{common}\n" in out["train"].stdout
    new_log = (work / "output/base2new/test_new" / common / "log.txt").read_text()
    assert "Loading weights to MultiModalPromptLearner" in new_log and "* total: 46" in new_log
    # base2new_test.sh ends with the Base/New/HM table of its dataset and config
    text = out["test"].stdout
    assert re.search(rf"^dtd\s+shots_16/MaPLe/{MAPLE}\s+1\s+[0-9.]+ ± [0-9.]+\s+[0-9.]+ ± [0-9.]+\s+[0-9.]+$", text,
                     re.M), text[-2000:]
    assert "ZeroshotCLIP" not in text.split("Base-to-new results of")[-1]  # only that dataset and config


@pytest.mark.slow
def test_reproduce_evaluates_released_weights_on_base_and_new(e2e):
    _, work2, weights, out = e2e
    for sub, total in (("base", 48), ("new", 46)):
        folder = work2 / f"output/base2new/test_{sub}/dtd/shots_16/MaPLe/{MAPLE}/seed1"
        log = (folder / "log.txt").read_text()
        assert f"Loading weights to MultiModalPromptLearner from \"{weights}/base/seed1/" in log
        assert f"* total: {total}" in log
    assert not (work2 / "output/base2new/train_base").exists()  # nothing trained
    g = results.collect(str(work2 / "output/base2new"))[("dtd", f"shots_16/MaPLe/{MAPLE}")]
    assert list(g.base) == [1] and list(g.new) == [1]
    assert re.search(rf"^dtd\s+shots_16/MaPLe/{MAPLE}\s+1\s", out["reproduce"].stdout, re.M)


@pytest.mark.slow
def test_zeroshot_base_and_new_write_separate_folders_and_the_table(e2e, capsys):
    work, _, _, out = e2e
    base = work / "output/base2new/test_base/dtd/ZeroshotCLIP/vit_b16"
    new = work / "output/base2new/test_new/dtd/ZeroshotCLIP/vit_b16"
    assert "* total: 48" in (base / "log.txt").read_text() and "* total: 46" in (new / "log.txt").read_text()
    assert "results exist" not in out["zs_new"].stdout
    assert results.main([str(work / "output/base2new")]) == 0
    text = capsys.readouterr().out
    assert re.search(r"^dtd\s+ZeroshotCLIP/vit_b16\s+\S+\s+[0-9.]+ ± [0-9.]+\s+[0-9.]+ ± [0-9.]+\s+[0-9.]+$", text,
                     re.M), text
    assert re.search(rf"^dtd\s+shots_16/MaPLe/{MAPLE}\s", text, re.M)


@pytest.mark.slow
def test_few_shot_script_runs_all_classes_and_prints_the_table(e2e):
    work, _, _, out = e2e
    log = (work / "output/dtd/VPT/vit_b16_c2_ep5_batch4_4_1shots/seed1/log.txt").read_text()
    assert "* total: 94" in log  # all 47 classes
    assert re.search(r"^vit_b16_c2_ep5_batch4_4_1shots\s+1\s+[0-9.]+ ± ", out["few_shot"].stdout, re.M)


@pytest.mark.slow
def test_metaproto_cross_dataset_scripts(e2e):
    work, _, _, out = e2e
    src = work / "output/dtd/MetaProto/vit_b16_ep100_n5_k2_2shots/seed1"  # xd_train.sh SOURCE SEED (published form)
    assert (src / "prompt_learner/model.pth.tar-1").is_file()
    log = (work / "output/evaluation/MetaProto/vit_b16_ep100_n5_k2_2shots/dtd/seed1/log.txt").read_text()
    assert 'Loading weights to prompt_learner from "output/dtd/MetaProto/vit_b16_ep100_n5_k2_2shots/seed1/' in log
    assert re.search(r"^\* accuracy: [0-9.]+%$", log, re.M)
