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
    assert sorted(folders) == configs
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
    assert text.count("DATALOADER.NUM_WORKERS 8 capped at the 1 CPUs available") == 1


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
