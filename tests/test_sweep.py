"""``python -m vlprompt.sweep``: job lists of each protocol, bad input, the local pool end to end (skip, resume,
failure report, table), the SLURM path through submitit's local cluster and the sbatch file it writes."""
import os
import pickle
import re
import subprocess
import sys
import time

import pytest

from conftest import assert_user_error, read_logs
from vlprompt.errors import ConfigError
from vlprompt.sweep import catalog, cli, local
from vlprompt.sweep.jobs import SweepSpec, build_sweep

FAST = ["INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False",
        "TRAIN.TENSORBOARD", "False"]
CFG = "vit_b16_ep50_ctxv1"


def run_main(argv, capsys):
    """``python -m vlprompt.sweep argv`` in-process -> (exit code, everything it printed)."""
    with pytest.raises(SystemExit) as e:
        cli.run([str(a) for a in argv])
    out = capsys.readouterr()
    return e.value.code, out.out + out.err


def sweep(cwd, *argv, **env):
    """``python -m vlprompt.sweep argv`` as a subprocess in ``cwd`` -> CompletedProcess (stdout + stderr)."""
    return subprocess.run([sys.executable, "-m", "vlprompt.sweep", *map(str, argv)], cwd=cwd,
                          env=dict(os.environ, **env), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=600)


def table_lines(text):
    return [line for line in text.splitlines() if re.match(r"^(dtd|eurosat|Average|run|dataset) ", line)]


# ---- job lists (no train.py) ----

@pytest.mark.parametrize("argv,jobs,steps", [
    (["base2new", "--trainer", "MaPLe", "--datasets", "all"], 33, 66),
    (["fewshot", "--trainer", "CoOp", "--datasets", "dtd", "eurosat", "--seeds", "1"], 10, 10),
    (["xd", "--trainer", "CoOp", "--seeds", "1", "2"], 2, 22),
    (["dg", "--trainer", "CoCoOp", "--seeds", "1"], 1, 5),
    (["fewshot", "--trainer", "CoOp", "--datasets", "dtd", "--shots", "4", "--grid", "OPTIM.LR=0.1,0.2",
      "--grid", "TRAINER.COOP.N_CTX=4,8"], 12, 12),
])
def test_dry_run_lists_jobs_and_runs_nothing(argv, jobs, steps, tmp_path, capsys):
    code, text = run_main(argv + ["--dry-run", "--output", tmp_path / "out"], capsys)
    assert code == 0, text
    assert len(re.findall(r"^\[new\] job ", text, re.M)) == jobs
    commands = re.findall(r"^    \[new\] \S+: (.*)$", text, re.M)
    assert len(commands) == steps and all(str(catalog.TRAIN_PY) in c for c in commands)
    assert f"{jobs} jobs, {steps} steps" in text
    assert not (tmp_path / "out").exists()


def test_base2new_folders_and_arguments_match_common_sh(tmp_path):
    out = tmp_path / "output"
    s = build_sweep(SweepSpec("base2new", "CoOp", datasets=("dtd",), seeds=(2,), root="/data", output=str(out),
                              opts=("OPTIM.MAX_EPOCH", "3")))
    (job,) = s.jobs
    train, test = job.steps
    assert train.folder == str(out / f"base2new/train_base/dtd/shots_16/CoOp/{CFG}/seed2")
    assert test.folder == str(out / f"base2new/test_new/dtd/shots_16/CoOp/{CFG}/seed2")
    assert train.command[:2] == [sys.executable, str(catalog.TRAIN_PY)]
    assert train.command[2:] == [
        "--root", "/data", "--output-dir", train.folder, "--seed", "2", "--trainer", "CoOp",
        "--dataset-config-file", str(catalog.ROOT / "configs/datasets/dtd.yaml"),
        "--config-file", str(catalog.ROOT / f"configs/trainers/CoOp/{CFG}.yaml"),
        "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base", "OPTIM.MAX_EPOCH", "3"]
    # the overridden MAX_EPOCH is the checkpoint the evaluation loads (the config's 50 otherwise)
    tail = ["--model-dir", train.folder, "--load-epoch", "3", "--eval-only",
            "DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "new", "OPTIM.MAX_EPOCH", "3"]
    assert test.command[:-len(tail)] == train.command[:5] + [test.folder] + train.command[6:-6]
    assert test.command[-len(tail):] == tail
    assert s.folder == str(out / f"sweeps/base2new_CoOp_{CFG}") and job.log == f"{s.folder}/logs/{job.name}.txt"
    plain = build_sweep(SweepSpec("base2new", "CoOp", datasets=("dtd",), seeds=(1,)))
    assert plain.jobs[0].steps[1].command[plain.jobs[0].steps[1].command.index("--load-epoch") + 1] == "50"


def test_xd_grid_gpus_and_default_configs(tmp_path):
    out = tmp_path / "output"
    s = build_sweep(SweepSpec("xd", "MaPLe", datasets=("dtd", "eurosat"), seeds=(1,), output=str(out),
                              grid=("OPTIM.LR=0.002,0.01",), gpus_per_job=2))
    cfg = "vit_b16_c2_ep5_batch4_2ctx_cross_datasets"  # scripts/maple/xd_train.sh's default, not base2new's
    assert catalog.default_config("MaPLe", "base2new") == "vit_b16_c2_ep5_batch4_2ctx"
    assert [len(j.steps) for j in s.jobs] == [3, 3]
    src, tgt, _ = s.jobs[1].steps
    assert src.folder == str(out / f"imagenet/MaPLe/{cfg}_16shots/OPTIM.LR_0.01/seed1")
    assert tgt.folder == str(out / f"evaluation/MaPLe/{cfg}_16shots/OPTIM.LR_0.01/dtd/seed1")
    assert tgt.command[-7:] == ["--model-dir", src.folder, "--load-epoch", "2", "--eval-only", "OPTIM.LR", "0.01"]
    assert src.command[:7] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                               "2", str(catalog.TRAIN_PY)]
    folders = [st.folder for j in s.jobs for st in j.steps]
    assert len(set(folders)) == len(folders)


@pytest.mark.parametrize("argv,names", [
    (["base2old", "--trainer", "CoOp"], ["base2old", "base2new"]),
    (["base2new", "--trainer", "Coop"], ["Coop", "CoOp"]),
    (["base2new", "--trainer", "CoOp", "--datasets", "dtdd"], ["dtdd", "dtd"]),
    (["base2new", "--trainer", "CoOp", "--config", "vit_b16_ep5"], ["vit_b16_ep5", "vit_b16_ep50"]),
    (["base2new", "--trainer", "CoOp", "--grid", "OPTIM.LR"], ["--grid", "OPTIM.LR", "KEY=v1,v2"]),
    (["base2new", "--trainer", "CoOp", "--grid", "OPTIM.LR=0.1,"], ["OPTIM.LR=0.1,"]),
    (["base2new", "--trainer", "CoOp", "--grid", "OPTIM.LR=1", "--grid", "OPTIM.LR=2"], ["OPTIM.LR twice"]),
    (["base2new", "--trainer", "CoOp", "OPTIM.LR"], ["OPTIM.LR", "KEY VALUE"]),
    (["base2new"], ["--trainer"]),
    (["base2new", "--trainer", "ZeroshotCLIP2", "--config", "vit_b1"], ["vit_b1", "vit_b16", "--config"]),
    (["base2new", "--trainer", "CoOp", "--root", "/no/such/folder"], ["/no/such/folder", "--root"]),
])
def test_bad_input_is_one_error_line(argv, names, tmp_path, capsys):
    assert_user_error(*run_main(argv + ["--output", tmp_path], capsys), *names)
    assert not (tmp_path / "sweeps").exists()


def test_gpu_slots_follow_cuda_visible_devices(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "device_count", lambda: 4)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,5,6,7")
    assert local.gpu_groups(1) == ["3", "5", "6", "7"]
    assert local.gpu_groups(2) == ["3,5", "6,7"] and local.gpu_groups(3) == ["3,5,6"]
    with pytest.raises(ConfigError, match="--gpus-per-job 5"):
        local.gpu_groups(5)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert local.gpu_groups(1) == []


# ---- SLURM submission without a cluster ----

def test_sbatch_array_file(tmp_path, monkeypatch, capsys):
    """A fake sbatch/srun on PATH: one array job, the requested resources, submitit's requeue signal."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "sbatch").write_text(f'#!/bin/bash\ncp "$1" {tmp_path}/captured.sh\necho "Submitted batch job 4242"\n')
    (bin_dir / "srun").write_text("#!/bin/bash\nexit 1\n")
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    code, text = run_main(["base2new", "--trainer", "CoOp", "--datasets", "dtd", "eurosat", "--seeds", 1, 2, 3,
                           "--root", tmp_path, "--output", tmp_path / "out", "--executor", "slurm", "--no-wait",
                           "--partition", "gpu", "--time", 60, "--gpus-per-job", 2, "--array-parallelism", 3,
                           "--slurm-arg", "account=abc", "OPTIM.MAX_EPOCH", 2], capsys)
    assert code == 0, text
    script = (tmp_path / "captured.sh").read_text()
    for line in ("#SBATCH --partition=gpu", "#SBATCH --time=60", "#SBATCH --gpus-per-node=2",
                 "#SBATCH --array=0-5%3", "#SBATCH --signal=USR2@90", "#SBATCH --account=abc"):
        assert line in script.splitlines(), script
    assert [f"4242_{i}" for i in range(6)] == re.findall(r"^submitted (\S+):", text, re.M)
    later = text.splitlines()[-1]
    assert "--table-only OPTIM.MAX_EPOCH 2" in later and "--no-wait" not in later
    pickles = sorted((tmp_path / "out/sweeps" / f"base2new_CoOp_{CFG}" / "slurm").glob("4242_*_submitted.pkl"))
    assert len(pickles) == 6
    with open(pickles[0], "rb") as f:
        task = pickle.load(f)
    job = task.args[0]
    assert job.name == "dtd_shots16_seed1" and "torch.distributed.run" in job.steps[0].command
    requeued = task.function.checkpoint(job)  # what submitit submits again on preemption / timeout
    assert requeued.function is task.function and requeued.args == (job,)


# ---- end to end through train.py ----

@pytest.mark.slow
def test_local_pool_base2new_table_and_skip(image_roots, tiny_clip, tmp_path):
    decoy = tmp_path / "output/base2new/train_base/caltech101/shots_2/CoOp" / CFG / "seed1"
    decoy.mkdir(parents=True)
    (decoy / "log.txt").write_text("* accuracy: 50.0%\n")  # another run under output/base2new: not in the table
    argv = ["base2new", "--trainer", "CoOp", "--datasets", "dtd", "eurosat", "--seeds", 1, 2, "--shots", 2,
            "--workers", 2, "--root", image_roots, "MODEL.BACKBONE.NAME", tiny_clip["vit"], "OPTIM.MAX_EPOCH", 1,
            *FAST]
    p = sweep(tmp_path, *argv)
    assert p.returncode == 0, p.stdout[-3000:]
    for ds in ("dtd", "eurosat"):
        for seed in (1, 2):
            for kind in ("train_base", "test_new"):
                assert (tmp_path / f"output/base2new/{kind}/{ds}/shots_2/CoOp/{CFG}/seed{seed}/results.json").is_file()
    table = table_lines(p.stdout)
    assert table[0].split() == ["dataset", "method", "seeds", "Base", "New", "HM"]
    assert [line.split()[0] for line in table[1:]] == ["dtd", "eurosat", "Average"]
    assert all(f"shots_2/CoOp/{CFG}  1,2 " in line for line in table[1:3])
    folder = tmp_path / "output/sweeps" / f"base2new_CoOp_{CFG}"
    for name in ("table.csv", "table.md", "table.png"):
        assert (folder / name).stat().st_size > 0 and f"wrote {folder / name}" in p.stdout
    assert (folder / "table.csv").read_text().splitlines()[0] == "dataset,method,seeds,Base,New,HM"
    assert len(list((folder / "logs").glob("*.txt"))) == 4

    start = time.time()
    again = sweep(tmp_path, *argv)
    assert again.returncode == 0 and time.time() - start < 30, again.stdout[-3000:]
    assert "4 finished (skipped), 0 to resume, 0 new" in again.stdout and "step(s) run" not in again.stdout
    assert table_lines(again.stdout) == table


@pytest.mark.slow
def test_killed_job_is_reported_then_resumed(image_roots, tiny_clip, tmp_path):
    argv = ["fewshot", "--trainer", "CoOp", "--datasets", "eurosat", "--seeds", 1, "--shots", 2,
            "--root", image_roots, "MODEL.BACKBONE.NAME", tiny_clip["vit"], "OPTIM.MAX_EPOCH", 2, *FAST]
    killed = sweep(tmp_path, *argv, VLPROMPT_FAILPOINT="step:2:1")  # SIGKILL in epoch 2, after epoch 1 was saved
    log = tmp_path / "output/sweeps" / f"fewshot_CoOp_{CFG}" / "logs/eurosat_2shots_seed1.txt"
    assert killed.returncode == 1, killed.stdout[-3000:]
    assert f"eurosat_2shots_seed1: step train killed by signal 9; log: {log}" in killed.stdout
    run = tmp_path / f"output/eurosat/CoOp/{CFG}_2shots/seed1"
    assert log.is_file() and not (run / "results.json").exists()

    resumed = sweep(tmp_path, *argv)
    assert resumed.returncode == 0, resumed.stdout[-3000:]
    assert "0 finished (skipped), 1 to resume, 0 new" in resumed.stdout
    assert f"Found checkpoint at {run} (will resume training)" in read_logs(run)
    assert (run / "results.json").is_file() and "eurosat/CoOp" in resumed.stdout


@pytest.mark.slow
def test_slurm_executor_on_submitit_local_cluster(image_roots, tiny_clip, tmp_path):
    """Two array tasks through submitit's local cluster: one runs, one fails in train.py (NUM_SHOTS 0) and is
    reported with its log and its Error: line; the table shows the finished one."""
    p = sweep(tmp_path, "fewshot", "--trainer", "CoOp", "--datasets", "eurosat", "--seeds", 1, "--shots", 1, 0,
              "--root", image_roots, "--executor", "slurm", "--slurm-cluster", "local",
              "MODEL.BACKBONE.NAME", tiny_clip["vit"], "OPTIM.MAX_EPOCH", 1, *FAST)
    assert p.returncode == 1, p.stdout[-3000:]
    assert re.findall(r"^submitted \S+: (\S+)$", p.stdout, re.M) == ["eurosat_1shots_seed1", "eurosat_0shots_seed1"]
    assert re.search(rf"^eurosat/CoOp/{CFG}_1shots +1 +[0-9.]+ ± 0.00$", p.stdout, re.M), p.stdout[-2000:]
    folder = tmp_path / "output/sweeps" / f"fewshot_CoOp_{CFG}"
    log = folder / "logs/eurosat_0shots_seed1.txt"
    assert "1 of 2 jobs failed" in p.stdout and f"eurosat_0shots_seed1: step train exit code 2; log: {log}" in p.stdout
    error = re.search(r"^    (Error: .*)$", p.stdout, re.M)
    assert error and "DATASET.NUM_SHOTS" in error.group(1) and error.group(1) in log.read_text()
    assert len(list((folder / "slurm").glob("*_result.pkl"))) == 2 and (folder / "table.png").is_file()
    assert (tmp_path / f"output/eurosat/CoOp/{CFG}_1shots/seed1/results.json").is_file()
