"""Run folders: identity, lock, resume edge cases, checkpoint and output-folder errors, divergence, TensorBoard,
results.json, and the published log lines, all through train.py's entry point on the tiny CLIP."""
from __future__ import annotations

import fcntl
import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from conftest import REPO, assert_user_error, read_logs, repo_copy, run_cli, run_script
from vlprompt import cli
from vlprompt.testing.resume_check import train_args

pytestmark = pytest.mark.slow


def coop(dtd_root, tiny_clip, out, *extra):
    return train_args("CoOp", dtd_root, tiny_clip, Path(out), *extra)


@pytest.fixture(scope="module")
def finished(dtd_root, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("finished") / "run"
    assert cli.main(coop(dtd_root, tiny_clip, out)) == 0
    return out


def with_flags(argv: list[str], *flags: str) -> list[str]:
    """train.py flags go before the KEY VALUE overrides."""
    i = argv.index("MODEL.BACKBONE.NAME")
    return argv[:i] + list(flags) + argv[i:]


def copy_run(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(".lock"))
    return dst


# ---------------------------------------------------------------- identity and lock
@pytest.mark.parametrize("change,named", [
    (("--trainer", "MaPLe"), "trainer 'CoOp' vs 'MaPLe'"),
    (("--seed", "2"), "seed 1 vs 2"),
    (("DATASET.NUM_SHOTS", "1"), "shots 2 vs 1"),
    (("OPTIM.LR", "0.01"), "OPTIM.LR 0.002 vs 0.01"),
])
def test_another_run_in_the_folder_is_an_error(finished, dtd_root, tiny_clip, tmp_path, capsys, change, named):
    out = copy_run(finished, tmp_path / "run")
    before = (out / "results.json").read_text()
    argv = coop(dtd_root, tiny_clip, out)
    if change[0].startswith("--"):
        argv[argv.index(change[0]) + 1] = change[1]
    else:
        argv += list(change)
    line = assert_user_error(*run_cli(argv, capsys), str(out), named, "--output-dir", "--overwrite")
    assert "holds another run" in line
    assert (out / "results.json").read_text() == before  # nothing of the old run was touched


def test_overwrite_replaces_the_old_run(finished, dtd_root, tiny_clip, tmp_path):
    out = copy_run(finished, tmp_path / "run")
    assert cli.main(with_flags(coop(dtd_root, tiny_clip, out, "OPTIM.LR", "0.01"), "--overwrite")) == 0
    assert json.loads((out / "run.json").read_text())["config"]["OPTIM.LR"] == 0.01
    assert "No checkpoint found, train from scratch" in read_logs(out).split("--overwrite")[-1]


def test_run_json_records_what_the_folder_holds(finished):
    ident = json.loads((finished / "run.json").read_text())
    assert {k: ident[k] for k in ("mode", "trainer", "dataset", "seed", "shots", "subsample")} == {
        "mode": "train", "trainer": "CoOp", "dataset": "DescribableTextures", "seed": 1, "shots": 2,
        "subsample": "base"}
    assert ident["backbone"].endswith("tiny_clip_rn.pt") and len(ident["config_hash"]) == 16 and ident["version"]


def test_a_second_run_on_a_locked_folder_fails_at_once(dtd_root, tiny_clip, tmp_path, capsys):
    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".lock", "w") as held:  # what a running train.py holds
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        held.write("pid 4242 on host gpu-node-7 (since 2026-12-02T10:00:00)\n")
        held.flush()
        line = assert_user_error(*run_cli(coop(dtd_root, tiny_clip, out), capsys), "in use by pid 4242 on host gpu-node-7")
    assert "another --output-dir" in line and not (out / "log.txt").exists()


def test_resume_folder_that_does_not_exist(dtd_root, tiny_clip, tmp_path, capsys):
    argv = with_flags(coop(dtd_root, tiny_clip, tmp_path / "run"), "--resume", str(tmp_path / "typo"))
    assert_user_error(*run_cli(argv, capsys), "--resume", "typo", "no such folder")


# ---------------------------------------------------------------- resume edge cases
def test_dangling_pointer_falls_back_to_the_newest_checkpoint(finished, dtd_root, tiny_clip, tmp_path):
    """A folder without run state (published code) whose pointer names a missing file: resume from the newest
    complete checkpoint, and keep it."""
    out = copy_run(finished, tmp_path / "run")
    shutil.rmtree(out / "run_state")
    (out / "results.json").unlink()
    (out / "prompt_learner" / "checkpoint").write_text("model.pth.tar-9\n")
    saved = (out / "prompt_learner" / "model.pth.tar-2").read_bytes()
    assert cli.main(coop(dtd_root, tiny_clip, out)) == 0
    log = read_logs(out).split("Found checkpoint")[-1]
    assert "previous epoch: 2" in log and "random state does not" in log
    assert (out / "prompt_learner" / "model.pth.tar-2").read_bytes() == saved


def test_leftover_temp_files_are_removed(finished, dtd_root, tiny_clip, tmp_path):
    out = copy_run(finished, tmp_path / "run")
    junk = out / "prompt_learner" / "model.pth.tar-3.tmp12345"
    junk.write_bytes(b"half a checkpoint")
    assert cli.main(coop(dtd_root, tiny_clip, out)) == 0
    assert not junk.exists()


def test_script_reruns_a_half_finished_best_val_folder(dtd_root, tiny_clip, tmp_path):
    """Killed during the final test of a best_val run: the folder has per-epoch val results in its log but no
    results.json, so re-running the script resumes it instead of skipping it as finished."""
    work = repo_copy(tmp_path / "repo")
    over = ["MODEL.BACKBONE.NAME", tiny_clip["rn"], "INPUT.SIZE", "(64, 64)", "TRAINER.COOP.PREC", "fp32",
            "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "2", "DATALOADER.TRAIN_X.BATCH_SIZE", "16",
            "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]
    script = ("scripts/coop/base2new_train.sh", "dtd", "1", "vit_b16_ep50", "2", *over, "TEST.FINAL_MODEL", "best_val")
    killed = run_script(work, *script, data=dtd_root, check=False, VLPROMPT_FAILPOINT="eval:test")
    assert killed.returncode == 128 + 9, killed.stdout[-2000:] + killed.stderr[-2000:]  # bash reports the SIGKILL
    out = work / "output/base2new/train_base/dtd/shots_2/CoOp/vit_b16_ep50/seed1"
    assert "* accuracy" in (out / "log.txt").read_text() and not (out / "results.json").exists()
    again = run_script(work, *script, data=dtd_root)
    assert "results exist" not in again.stdout and json.loads((out / "results.json").read_text())["split"] == "test"
    assert "results exist" in run_script(work, *script, data=dtd_root).stdout


# ---------------------------------------------------------------- bad checkpoints
@pytest.mark.parametrize("damage,named", [
    (lambda p: p.write_bytes(b""), "is empty"),
    (lambda p: p.write_bytes(p.read_bytes()[:300]), "is truncated or not a PyTorch checkpoint"),
    (lambda p: torch.save({"state_dict": {"ctx": torch.full((4, 128), float("nan"))}, "epoch": 2}, p),
     "non-finite values"),
])
def test_bad_checkpoint_for_eval(finished, dtd_root, tiny_clip, tmp_path, capsys, damage, named):
    model = copy_run(finished, tmp_path / "model")
    damage(model / "prompt_learner" / "model.pth.tar-2")
    argv = with_flags(coop(dtd_root, tiny_clip, tmp_path / "eval"), "--eval-only", "--model-dir", str(model),
                      "--load-epoch", "2")
    assert_user_error(*run_cli(argv, capsys), "model.pth.tar-2", named)


def test_truncated_checkpoint_is_not_resumed(finished, dtd_root, tiny_clip, tmp_path, capsys):
    out = copy_run(finished, tmp_path / "run")
    (out / "results.json").unlink()
    path = out / "prompt_learner" / "model.pth.tar-2"
    path.write_bytes(path.read_bytes()[:-100])
    line = assert_user_error(*run_cli(coop(dtd_root, tiny_clip, out), capsys), "No complete checkpoint to resume",
                             "model.pth.tar-2")
    assert "--overwrite" in line and path.exists()


# ---------------------------------------------------------------- divergence
def test_non_finite_loss_names_epoch_batch_and_lr(dtd_root, tiny_clip, tmp_path, capsys):
    argv = coop(dtd_root, tiny_clip, tmp_path / "run", "OPTIM.LR", "1e30", "OPTIM.WARMUP_EPOCH", "0")
    line = assert_user_error(*run_cli(argv, capsys), "epoch 1, batch 2/3", "OPTIM.LR", "PREC")
    assert re.search(r"loss is (nan|inf)", line)


def test_exploding_parameters_stop_the_run(dtd_root, tiny_clip, tmp_path, capsys):
    out = tmp_path / "run"
    argv = coop(dtd_root, tiny_clip, out, "OPTIM.LR", "1e4", "OPTIM.WARMUP_EPOCH", "0")
    assert_user_error(*run_cli(argv, capsys), "prompt_learner.ctx", "exploded", "after epoch 1", "OPTIM.LR")
    assert not (out / "prompt_learner").exists()  # nothing of the diverged epoch was saved


# ---------------------------------------------------------------- output folder errors
def _in_tmpfs(size: str, *commands: str, ro: bool = False) -> subprocess.CompletedProcess:
    """Run shell ``commands`` in a private mount namespace with a tmpfs of ``size`` at $MNT."""
    script = (f"set -e; export MNT=$(mktemp -d); mount -t tmpfs -o size={size}{',ro' if ro else ''} none $MNT; "
              + "; ".join(commands))
    return subprocess.run(["unshare", "-rm", "bash", "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=REPO)


def _train_cmd(argv: list[str]) -> str:
    import shlex
    import sys
    return " ".join(shlex.quote(a) for a in [sys.executable, str(REPO / "train.py"), *argv])


@pytest.fixture(scope="module")
def namespaces():
    if shutil.which("unshare") is None or _in_tmpfs("1m", "true").returncode != 0:
        pytest.fail("these tests need `unshare -rm` (user + mount namespaces) to mount a small tmpfs")


def test_disk_full_keeps_the_previous_checkpoint(namespaces, dtd_root, tiny_clip):
    argv = coop(dtd_root, tiny_clip, "$MNT/run", "OPTIM.MAX_EPOCH", "3")
    cmd = _train_cmd(argv).replace("'$MNT/run'", '"$MNT/run"')
    p = _in_tmpfs("2m", f"VLPROMPT_FAILPOINT=manifest:1 {cmd} > /dev/null || true",
                  'head -c $(( $(stat -f -c "%a*%S" $MNT) - 20000 )) /dev/zero > $MNT/filler',  # leave ~20 kB
                  f"{cmd} > $MNT/out.txt 2>&1 && exit 9 || echo rc=$?",
                  "cat $MNT/out.txt | grep -v '^epoch' | tail -3",
                  "ls $MNT/run/prompt_learner $MNT/run/run_state",
                  f"{sys.executable} -c \"import torch; print(torch.load('$MNT/run/prompt_learner/model.pth.tar-1')['epoch'])\"")
    assert "rc=2" in p.stdout, p.stdout + p.stderr
    assert re.search(r"^Error: no space left on .*run.* re-run the same command to resume", p.stdout, re.M), p.stdout
    assert "Traceback" not in p.stdout and "model.pth.tar-1" in p.stdout and p.stdout.strip().endswith("1")


def test_read_only_output_folder(namespaces, dtd_root, tiny_clip):
    cmd = _train_cmd(coop(dtd_root, tiny_clip, "$MNT/run")).replace("'$MNT/run'", '"$MNT/run"')
    p = _in_tmpfs("1m", f"{cmd} > /tmp/ro_out.txt 2>&1 || echo rc=$?", "cat /tmp/ro_out.txt", ro=True)
    assert "rc=2" in p.stdout, p.stdout + p.stderr
    assert re.search(r"^Error: cannot create the output folder .*/run: Read-only file system; choose another "
                     r"--output-dir", p.stdout, re.M), p.stdout
    assert "Traceback" not in p.stdout


# ---------------------------------------------------------------- logs, TensorBoard, results.json
def test_log_lines_match_the_published_format(finished, dtd_root, tiny_clip, tmp_path):
    """Dassl prints ``epoch [e/E] batch [b/B] time .. data .. <loss_summary> lr .. eta ..``, with the LR after
    the scheduler step on an epoch's last batch, and only the published trainer's loss_summary fields."""
    published = ("epoch [1/2] batch [3/3] time 0.301 (0.310) data 0.015 (0.021) loss 4.1217 (4.9463) "
                 "acc 25.0000 (8.3333) lr 2.0000e-03 eta 0:00:00")  # CoOp, constant warm-up 1e-5 then 2e-3

    def shape(line: str) -> str:  # the line with its measured numbers blanked
        return re.sub(r"\d+\.\d+e-\d+|\d+\.\d+|\d+:\d\d:\d\d", "#", line)

    log = (finished / "log.txt").read_text()
    last_of_epoch_1 = next(line for line in log.splitlines() if line.startswith("epoch [1/2] batch [3/3]"))
    assert shape(last_of_epoch_1) == shape(published) and "lr 2.0000e-03" in last_of_epoch_1, last_of_epoch_1
    assert re.search(r"^epoch \[1/2\] batch \[2/3\] .* lr 1\.0000e-05 eta", log, re.M)
    out = tmp_path / "cocoop"
    cli.main(train_args("CoCoOp", dtd_root, tiny_clip, out, "TEST.NO_TEST", "True"))
    line = next(x for x in (out / "log.txt").read_text().splitlines() if x.startswith("epoch [1/2] batch [3/3]"))
    assert re.fullmatch(r"epoch \[1/2\] batch \[3/3\] time \S+ \(\S+\) data \S+ \(\S+\) loss \S+ \(\S+\) "
                        r"lr 2\.0000e-03 eta \d+:\d\d:\d\d", line), line  # CoCoOp's loss_summary has no acc


def test_tensorboard_scalars(finished, dtd_root, tiny_clip, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(finished / "tensorboard"))
    acc.Reload()
    tags = set(acc.Tags()["scalars"])
    assert {"train/loss", "train/acc", "train/lr", "test/accuracy"} <= tags
    assert [e.step for e in acc.Scalars("train/loss")] == list(range(6))  # 2 epochs x 3 batches
    assert acc.Scalars("train/lr")[2].value == pytest.approx(2e-3)  # after the step on the epoch's last batch
    out = tmp_path / "off"
    cli.main(coop(dtd_root, tiny_clip, out, "TRAIN.TENSORBOARD", "False", "OPTIM.MAX_EPOCH", "1"))
    assert not (out / "tensorboard").exists()


def test_results_json_says_what_was_evaluated(finished, dtd_root, tiny_clip, tmp_path):
    r = json.loads((finished / "results.json").read_text())
    assert r["split"] == "test" and r["epoch"] == 2 and r["checkpoint"] == "last epoch (2)" and r["eval_seconds"] >= 0
    out = tmp_path / "eval"
    cli.main(with_flags(coop(dtd_root, tiny_clip, out), "--eval-only", "--model-dir", str(finished), "--load-epoch", "2"))
    e = json.loads((out / "results.json").read_text())
    assert e["accuracy"] == r["accuracy"] and e["epoch"] == 2 and e["model_dir"] == str(finished)
    assert e["checkpoint"]["prompt_learner"].endswith("prompt_learner/model.pth.tar-2")
