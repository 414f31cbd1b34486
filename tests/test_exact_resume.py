"""Exact resume: a run killed with SIGKILL at a failpoint (mid-epoch, after a module save, during the final
test) and then re-run ends with learnable tensors and optimizer state bitwise identical to an uninterrupted
run with the same seed: one test per trainer family, several kill points for CoOp. The killed run is a real
subprocess (``VLPROMPT_FAILPOINT``); the reference and the resumed run go through the same public entry point
in-process (cheaper, same code). ``python -m vlprompt.testing.resume_check`` runs the whole matrix."""
from __future__ import annotations

import os
from pathlib import Path

import pytest

from conftest import read_logs
from vlprompt import cli
from vlprompt.testing.resume_check import max_diff, run_killed, same_result, train_args

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def reference(dtd_root, tiny_clip, tmp_path_factory):
    """Uninterrupted runs, one per (trainer, extra overrides), built on first use."""
    runs = {}

    def get(trainer: str, *extra: str) -> Path:
        if (trainer, extra) not in runs:
            out = tmp_path_factory.mktemp(f"ref_{trainer}")
            assert cli.main(train_args(trainer, dtd_root, tiny_clip, out, *extra)) == 0
            runs[trainer, extra] = out
        return runs[trainer, extra]

    return get


@pytest.mark.parametrize("trainer,failpoint,extra", [
    ("CoOp", "step:2:2", ()),                                                 # mid-epoch
    ("CoOp", "saved:prompt_learner:2",                                        # after the save, before its manifest
     ("DATALOADER.NUM_WORKERS", "2", "TEST.FINAL_MODEL", "best_val")),
    ("CoOp", "eval:test", ("TEST.FINAL_MODEL", "best_val")),                  # during the final test
    ("CoCoOp", "manifest:1", ()),                                             # epoch 1 complete, pointer not yet
    ("MaPLe", "step:2:1", ()),                                                # deep-prompt family (MaPLe/IVLP/VPT)
    ("MetaProto", "saved:prompt_learner:2", ()),                              # between its two modules' saves
    ("InstancePrompt", "step:2:3", ()),
])
def test_killed_run_resumes_bitwise(trainer, failpoint, extra, reference, dtd_root, tiny_clip, tmp_path):
    out = tmp_path / "run"
    argv = train_args(trainer, dtd_root, tiny_clip, out, *extra)
    run_killed(argv, failpoint)
    assert not (out / "results.json").exists()
    assert cli.main(argv) == 0  # re-running the same command resumes
    assert max_diff(reference(trainer, *extra), out) == 0
    assert same_result(reference(trainer, *extra), out)


def test_half_saved_epoch_is_never_resumed(dtd_root, tiny_clip, tmp_path):
    """MetaProto killed between its two saves of epoch 2: the prompt file of epoch 2 exists but no manifest, so
    both modules resume from epoch 1 (before, they resumed at different epochs)."""
    out = tmp_path / "run"
    argv = train_args("MetaProto", dtd_root, tiny_clip, out, "TEST.NO_TEST", "True")
    run_killed(argv, "saved:prompt_learner:2")
    assert (out / "prompt_learner" / "model.pth.tar-2").is_file()
    assert not (out / "prototype_net" / "model.pth.tar-2").exists()
    assert sorted(os.listdir(out / "run_state")) == ["state.pth.tar-1"]
    cli.main(argv)
    log = read_logs(out).split("Found checkpoint")[-1]
    assert log.count("(previous epoch: 1)") == 2 and "epoch [2/2]" in log
