"""What a new user meets first: synthetic data and a tiny CLIP from the command line, show_split's flags after the
overrides, and DATALOADER.NUM_WORKERS capped at the CPUs available."""
import json
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO, repo_copy, run_cli, script_env
from vlprompt.config.setup import get_cfg
from vlprompt.data import manager
from vlprompt.registry import DATASET_REGISTRY
from vlprompt.testing import fake_data


def test_fake_data_names_every_dataset_config():
    configs = sorted(f[:-5] for f in os.listdir("configs/datasets") if f.endswith(".yaml"))
    folders = fake_data.dataset_folders()
    assert sorted(folders) == [c for c in configs if c != "image_folder"]  # your own data: no synthetic layout
    assert folders["imagenet_a"] == "imagenet-adversarial" and folders["caltech101"] == "caltech-101"


def test_fake_data_command_writes_roots_the_readers_load(tmp_path):
    out = tmp_path / "data"
    p = subprocess.run([sys.executable, "-m", "vlprompt.testing.fake_data", "--dataset", "eurosat", "imagenet_a",
                        "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert p.returncode == 0, p.stderr
    assert f"DATA={out}" in p.stdout
    for name, expected_classes in (("EuroSAT", 10), ("ImageNetA", 200)):
        cfg = get_cfg(["DATASET.ROOT", str(out), "DATASET.NAME", name])
        dataset = DATASET_REGISTRY.get(name)(cfg)
        assert dataset.num_classes == expected_classes and dataset.test
        assert os.path.getsize(dataset.test[0].impath) > 0  # real (tiny) images

    bad = subprocess.run([sys.executable, "-m", "vlprompt.testing.fake_data", "--dataset", "dtdd", "--out",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=300)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "unknown dataset 'dtdd' (did you mean dtd?)" in bad.stderr and not (tmp_path / "x").exists()


def test_show_split_takes_json_after_the_overrides(dtd_root, tmp_path, capsys):
    from vlprompt.data import show_split

    path = tmp_path / "split.json"
    assert show_split.main(["--root", dtd_root, "--dataset-config-file", "configs/datasets/dtd.yaml",
                            "DATASET.NUM_SHOTS", "2", "DATASET.SUBSAMPLE_CLASSES", "base", "--json", str(path),
                            "--seed", "3"]) == 0
    lists = json.loads(path.read_text())
    assert len(lists["classnames"]) == 24 and len(lists["train_x"]) == 2 * 24


def test_num_workers_are_capped_at_the_cpus_available(monkeypatch, dtd_root, tiny_clip, tmp_path, capsys):
    monkeypatch.setattr(manager, "available_cpus", lambda: 1)
    monkeypatch.setattr(manager, "_capped_logged", set())
    assert manager.loader_options(True, 8)["num_workers"] == 1
    assert manager.loader_options(False, 0)["num_workers"] == 0
    monkeypatch.setattr(manager, "_capped_logged", set())
    code, text = run_cli(["--root", dtd_root, "--trainer", "ZeroshotCLIP", "--dataset-config-file",
                          "configs/datasets/dtd.yaml", "--config-file", "configs/trainers/ZeroshotCLIP/vit_b16.yaml",
                          "--output-dir", str(tmp_path / "zs"), "--eval-only", "MODEL.BACKBONE.NAME",
                          tiny_clip["vit"], "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
                          "DATALOADER.NUM_WORKERS", "8"], capsys)
    assert code == 0, text[-2000:]
    # one line per run (the three loaders share it); the run's own log holds exactly what it logged
    assert (tmp_path / "zs" / "log.txt").read_text().count("DATALOADER.NUM_WORKERS 8 capped at the 1 CPUs") == 1


def test_tiny_clip_command(tmp_path):
    path = tmp_path / "tiny_vit.pt"
    p = subprocess.run([sys.executable, "-m", "vlprompt.testing.tiny_clip", "--spec", "vit", "--out", str(path)],
                       capture_output=True, text=True, timeout=300)
    assert p.returncode == 0 and path.stat().st_size > 0 and "content_sha256" in p.stdout, p.stderr


@pytest.mark.slow
def test_readme_try_it_without_data_runs_as_written(tmp_path):
    """The README's three commands, as written (their /tmp/vlp folder moved into this test's folder)."""
    text = (REPO / "README.md").read_text()
    block = re.search(r"## Try it without data\n.*?```bash\n(.*?)```", text, re.S).group(1)
    commands = [line.split("  #")[0].replace("/tmp/vlp", str(tmp_path / "vlp")) for line in block.splitlines()]
    assert len(commands) == 3 and "scripts/maple/base2new_train.sh dtd 1" in commands[2]
    work = repo_copy(tmp_path / "repo")
    for command in commands:
        p = subprocess.run(["bash", "-c", command], cwd=work, env=script_env(), capture_output=True, text=True,
                           timeout=600)
        assert p.returncode == 0, f"{command}\n{p.stdout[-2000:]}\n{p.stderr[-2000:]}"
    run = work / "output/base2new/train_base/dtd/shots_16/MaPLe/vit_b16_c2_ep5_batch4_2ctx/seed1"
    assert (run / "results.json").is_file() and (run / "MultiModalPromptLearner").is_dir()
    assert str(run.relative_to(work)) in p.stdout  # the script says where its output went


def train_py_without_torch(argv, cwd=None):
    """``train.py argv`` in a fresh interpreter -> (exit code, output, whether torch got imported)."""
    code = ("import runpy, sys\nsys.argv = ['train.py'] + sys.argv[1:]\ntry:\n    runpy.run_path('train.py', "
            "run_name='__main__')\nexcept SystemExit as e:\n    rc = e.code\nelse:\n    rc = 0\n"
            "print('TORCH_IMPORTED', 'torch' in sys.modules)\nsys.exit(rc)")
    p = subprocess.run([sys.executable, "-c", code, *argv], cwd=cwd or REPO, capture_output=True, text=True,
                       timeout=300)
    out = p.stdout + p.stderr
    return p.returncode, out, "TORCH_IMPORTED True" in out


def dtd_args(root, out, *extra):
    return ["--root", root, "--trainer", "CoOp", "--dataset-config-file", "configs/datasets/dtd.yaml",
            "--config-file", "configs/trainers/CoOp/vit_b16_ep50_ctxv1.yaml", "--output-dir", str(out), *extra]


def test_help_and_command_line_mistakes_fail_before_torch_is_imported(dtd_root, tmp_path):
    code, out, torch_imported = train_py_without_torch(["--help"])
    assert code == 0 and "--dataset-config-file" in out and not torch_imported
    trained = tmp_path / "trained"
    (trained / "prompt_learner").mkdir(parents=True)
    (trained / "prompt_learner" / "model.pth.tar-2").write_bytes(b"")
    cases = [
        (dtd_args(dtd_root, tmp_path / "a")[:-6] + ["--dataset-config-file", "configs/datasets/dtdd.yaml",
                                                    "--config-file", "configs/trainers/CoOp/vit_b16.yaml"],
         ["configs/datasets/dtdd.yaml", "did you mean configs/datasets/dtd.yaml"]),
        (dtd_args(dtd_root, tmp_path / "a", "--trainer", "Coop"), ["'Coop'", "Did you mean 'CoOp'"]),
        (dtd_args(dtd_root, tmp_path / "a", "DATASET.NAME", "DTD"), ["'DTD'", "DescribableTextures"]),
        (dtd_args(dtd_root, tmp_path / "a", "OPTIM.LRR", "0.1"), ["OPTIM.LRR", "OPTIM.LR"]),
        (dtd_args(dtd_root, tmp_path / "a", "OPTIM.MAX_EPOCH", "ten"), ["OPTIM.MAX_EPOCH"]),
        (dtd_args(str(tmp_path / "nodata"), tmp_path / "a"), [os.path.join(str(tmp_path), "nodata", "dtd")]),
        (dtd_args(str(tmp_path), tmp_path / "a"), [os.path.join(str(tmp_path), "dtd"), "DescribableTextures"]),
        (dtd_args(dtd_root, tmp_path / "a", "--eval-only", "--model-dir", str(tmp_path / "none")),
         ["--model-dir", "no such folder"]),
        (dtd_args(dtd_root, tmp_path / "a", "--eval-only", "--model-dir", str(trained), "--load-epoch", "5"),
         ["--load-epoch 5", "saved epochs: 2"]),
        (dtd_args(dtd_root, tmp_path / "a", "MODEL.BACKBONE.NAME", "/no/such/clip.pt"), ["/no/such/clip.pt"]),
    ]
    for argv, names in cases:
        code, out, torch_imported = train_py_without_torch(argv)
        lines = [line for line in out.splitlines() if line.startswith("Error:")]
        assert code == 2 and len(lines) == 1 and "Traceback" not in out, (argv, out[-2000:])
        assert all(n in lines[0] for n in names), (names, lines[0])
        assert not torch_imported, argv
    assert not (tmp_path / "a").exists()


def test_eval_only_without_weights_fails_before_the_dataset_and_clip_load(dtd_root, tmp_path, capsys):
    code, text = run_cli(dtd_args(dtd_root, tmp_path / "e", "--eval-only"), capsys)
    assert "--model-dir" in text and code == 2
    assert "Loading dataset" not in text and "Loading CLIP" not in text


@pytest.mark.slow
def test_each_attempt_logs_to_its_own_file_and_results_record_what_was_evaluated(dtd_root, tiny_clip, tmp_path,
                                                                                capsys):
    from vlprompt import results

    out = tmp_path / "run"
    fast = ["MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
            "DATALOADER.NUM_WORKERS", "0", "DATASET.NUM_SHOTS", "2", "VERBOSE", "False", "TRAIN.TENSORBOARD", "False"]
    code, text = run_cli(dtd_args(dtd_root, out, "--seed", "1", *fast, "OPTIM.MAX_EPOCH", "1"), capsys)
    assert code == 0, text[-2000:]
    first = (out / "log.txt").read_text()
    # a second attempt on the same folder (re-running the finished command: it evaluates again)
    code, text = run_cli(dtd_args(dtd_root, out, "--seed", "1", *fast, "OPTIM.MAX_EPOCH", "1"), capsys)
    assert code == 0, text[-2000:]
    logs = sorted(p.name for p in out.glob("log.txt*"))
    assert len(logs) == 2 and re.fullmatch(r"log\.txt-\d{4}-\d\d-\d\d-\d\d-\d\d-\d\d(-\d+)?", logs[1]), logs
    assert (out / "log.txt").read_text() == first  # never appended to
    assert results.read_accuracy(str(out / "log.txt")) == results.read_accuracy(str(out / logs[1]))
    saved = json.loads((out / "results.json").read_text())
    assert saved["model_dir"] == str(out) and saved["epoch"] == 1 and saved["checkpoint"] == "last epoch (1)"
    run = json.loads((out / "run.json").read_text())
    assert saved["config_hash"] == run["config_hash"] and saved["elapsed_seconds"] >= saved["eval_seconds"] > 0
