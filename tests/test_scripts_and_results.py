"""The published-style scripts and the results table, end to end through bash and train.py."""
import subprocess

import numpy as np
import pytest

from conftest import REPO, repo_copy, run_script, script_env
from vlprompt import results

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def b2n_runs(dtd_root, tiny_clip, tmp_path_factory):
    """base2new_train.sh + base2new_test.sh for seeds 1 and 2, in a copy of the repo layout (output/ goes there)."""
    work = repo_copy(tmp_path_factory.mktemp("work") / "repo")
    overrides = ["MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
                 "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]
    outs = []
    for seed in ("1", "2"):
        outs.append(run_script(work, "scripts/coop/base2new_train.sh", "dtd", seed, "vit_b16_ep50_ctxv1", "2",
                               *overrides, data=dtd_root))
        outs.append(run_script(work, "scripts/coop/base2new_test.sh", "dtd", seed, "vit_b16_ep50_ctxv1", "2", "1",
                               *overrides, data=dtd_root))
    return work, overrides


def test_scripts_write_the_published_folders(b2n_runs):
    work, _ = b2n_runs
    base = work / "output/base2new/train_base/dtd/shots_2/CoOp/vit_b16_ep50_ctxv1/seed1"
    new = work / "output/base2new/test_new/dtd/shots_2/CoOp/vit_b16_ep50_ctxv1/seed1"
    assert (base / "prompt_learner" / "model.pth.tar-1").is_file()
    assert "* accuracy:" in (new / "log.txt").read_text()
    assert "SUBSAMPLE_CLASSES: new" in (new / "log.txt").read_text() or "* total: 46" in (new / "log.txt").read_text()


def test_rerun_on_finished_folder_skips(b2n_runs, dtd_root):
    work, overrides = b2n_runs
    p = run_script(work, "scripts/coop/base2new_train.sh", "dtd", "1", "vit_b16_ep50_ctxv1", "2", *overrides,
                   data=dtd_root)
    assert "results exist" in p.stdout


def test_results_table_mean_std_and_average(b2n_runs, capsys):
    work, _ = b2n_runs
    root = str(work / "output/base2new")
    assert results.main([root]) == 0
    text = capsys.readouterr().out
    groups = results.collect(root)
    g = groups[("dtd", "shots_2/CoOp/vit_b16_ep50_ctxv1")]
    assert sorted(g.base) == [1, 2] and sorted(g.new) == [1, 2]
    mb, mn = sum(g.base.values()) / 2, sum(g.new.values()) / 2
    sb, sn = (np.std(list(v.values())) for v in (g.base, g.new))  # population std (ddof 0), as parse_test_res.py
    assert f"{mb:.2f} ± {sb:.2f}" in text and f"{mn:.2f} ± {sn:.2f}" in text
    assert f"{results.harmonic_mean(mb, mn):.2f}" in text and "± = population std (ddof 0) over seeds" in text
    for fmt, marker in (("csv", "dataset,method,seeds,Base,New,HM"), ("markdown", "| dataset |"),
                        ("latex", r"\begin{tabular}")):
        assert results.main([root, "--format", fmt]) == 0
        assert marker in capsys.readouterr().out


def test_average_row_is_hm_of_mean_base_and_mean_new(tmp_path):
    for ds, b, n in (("dtd", 80.0, 50.0), ("eurosat", 90.0, 70.0)):
        for kind, acc in (("train_base", b), ("test_new", n)):
            d = tmp_path / kind / ds / "shots_16/CoOp/cfg/seed1"
            d.mkdir(parents=True)
            (d / "log.txt").write_text(f"=> result\n* accuracy: {acc:.1f}%\n")
    header, rows = results.build_rows(results.collect(str(tmp_path)))
    avg = rows[-1]
    assert avg[0] == "Average" and avg[3] == "85.00" and avg[4] == "60.00"
    assert avg[5] == f"{results.harmonic_mean(85.0, 60.0):.2f}"


def test_demo_runs_offline_and_prints_the_table():
    p = subprocess.run(["bash", str(REPO / "scripts/demo.sh"), "--epochs", "2"], env=script_env(), capture_output=True,
                       text=True, timeout=300)
    assert p.returncode == 0, p.stderr[-3000:]
    assert "Base" in p.stdout and "New" in p.stdout and "HM" in p.stdout and "Demo finished" in p.stdout


def test_main_zeroshot_and_cross_dataset_scripts(b2n_runs, dtd_root):
    work, overrides = b2n_runs
    def run(script, *argv):  # no ImageNet reader needed: the source is DTD here
        run_script(work, script, *argv, data=dtd_root, SEEDS="1", SOURCE="dtd")

    run("scripts/coop/main.sh", "dtd", "vit_b16_ep50", "middle", "4", "1", "False", *overrides)
    assert "* accuracy" in (work / "output/dtd/CoOp/vit_b16_ep50_1shots/nctx4_cscFalse_ctpmiddle/seed1/log.txt").read_text()
    run("scripts/coop/zeroshot.sh", "dtd", "vit_b16", *overrides)
    assert "* accuracy" in (work / "output/ZeroshotCLIP/vit_b16/dtd/log.txt").read_text()
    run("scripts/coop/xd_train.sh", "1", "vit_b16_ep50", "1", *overrides)
    run("scripts/coop/xd_test.sh", "dtd", "1", "vit_b16_ep50", "1", "1", *overrides)
    train_log = (work / "output/dtd/CoOp/vit_b16_ep50_1shots/seed1/log.txt").read_text()
    test_log = (work / "output/evaluation/CoOp/vit_b16_ep50_1shots/dtd/seed1/log.txt").read_text()
    assert "Loading weights to prompt_learner" in test_log and "* accuracy" in train_log
