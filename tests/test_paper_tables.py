"""Our papers' tables in one command (``scripts/*/reproduce_table.sh`` -> ``python -m vlprompt.sweep.paper``): every
row runs through the sweep on the tiny CLIP and synthetic roots (numbers meaningless), the table has the paper's
layout and numbers, and the zero-shot template key the MetaProto table uses."""
import csv
import json
import re

import pytest

from conftest import assert_user_error, repo_copy, run_cli, run_script
from vlprompt.results import harmonic_mean
from vlprompt.sweep import paper
from vlprompt.sweep.jobs import SweepSpec, build_sweep
from vlprompt.sweep.paper_tables import INSTANCE_PROMPT, METAPROTO

FAST = ["INPUT.SIZE", "(32, 32)", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False",
        "TRAIN.TENSORBOARD", "False", "TRAINER.COOP.PREC", "fp32", "TRAINER.METAPROTO.PREC", "fp32",
        "TRAINER.METAPROTO.META_BATCH", "1", "TRAINER.METAPROTO.ITERS_PER_EPOCH", "1",
        "TRAINER.INSTANCEPROMPT.PREC", "fp32", "TRAINER.LINEARPROBE.PREC", "fp32",
        "TRAINER.LINEARPROBE.SEARCH_LIST", "[1.0, 0.01]", "TRAINER.LINEARPROBE.NUM_STEP", "1",
        "TRAINER.LINEARPROBE.MAX_ITER", "50"]


def read_csv(path):
    """(header, {method: its cells})."""
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], {r[0]: r for r in rows[1:]}


def num(cell):
    return None if cell == "-" else float(cell)


@pytest.mark.slow
def test_metaproto_table_runs_every_row_and_prints_the_papers_layout(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    p = run_script(work, "scripts/metaproto/reproduce_table.sh", "--workers", "2", "MODEL.BACKBONE.NAME",
                   tiny_clip["vit"], *FAST, data=dtd_root, SEEDS="1")
    folder = work / "output/paper/metaproto"
    header, rows = read_csv(folder / "table.csv")
    assert header == ["Method", "Base", "Base (paper)", "Δ", "New", "New (paper)", "Δ", "H", "H (paper)", "Δ",
                      "seeds"]
    assert list(rows) == [r.label for r in METAPROTO.rows]
    for row in METAPROTO.rows:
        cells = rows[row.label]
        base, new, h = num(cells[1]), num(cells[4]), num(cells[7])
        assert None not in (base, new, h) and cells[-1] == "1", cells  # the row ran, with seed 1
        assert h == pytest.approx(harmonic_mean(base, new), abs=0.01)
        for i, published in enumerate(row.paper or (None,) * 3):
            paper_cell, delta = cells[2 + 3 * i], cells[3 + 3 * i]
            if published is None:
                assert paper_cell == "-" and delta == "-"
            else:
                assert num(paper_cell) == published
                assert num(delta) == pytest.approx(num(cells[1 + 3 * i]) - published, abs=0.011)
    text = (folder / "table.txt").read_text()
    assert text in p.stdout + p.stderr and "Fig. 3" in text
    assert (folder / "table.md").read_text().count("|") > 50

    # each row as the paper ran it: the zero-shot prompt, CoOp's 4 context words, MetaProto's N-way
    run = folder / "base2new/test_base/dtd/shots_16/ZeroshotCLIP/vit_b16/seed1"
    assert "Prompt templates (n=1): ['a photo of a {}.']" in (run / "log.txt").read_text()
    config = lambda rel: json.loads((folder / "base2new" / rel / "seed1/run.json").read_text())["config"]  # noqa
    coop = config("train_base/dtd/shots_16/CoOp/vit_b16_ctxv1")
    assert coop["TRAINER.COOP.CTX_INIT"] == "a photo of a" and coop["DATALOADER.TRAIN_X.BATCH_SIZE"] == 32
    for way in (5, 10, 20):
        assert config(f"train_base/dtd/shots_16/MetaProto/vit_b16_ep100_n{way}_k2")["TRAINER.METAPROTO.N_WAY"] == way

    # the same command again: every job finished, nothing runs, the same table
    again = run_script(work, "scripts/metaproto/reproduce_table.sh", "MODEL.BACKBONE.NAME", tiny_clip["vit"],
                       *FAST, data=dtd_root, SEEDS="1")
    assert "5 jobs, 5 finished (skipped)" in again.stdout + again.stderr
    assert (folder / "table.txt").read_text() == text


@pytest.mark.slow
def test_instance_prompt_table_rows_and_published_columns(image_roots, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    run_script(work, "scripts/instance_prompt/reproduce_table.sh", "--workers", "2", "--datasets", "oxford_pets",
               "MODEL.BACKBONE.NAME", tiny_clip["vit"], *FAST, data=image_roots, SEEDS="1")
    header, rows = read_csv(work / "output/paper/instance_prompt/table.csv")
    assert header[1:4] == ["Flowers102", "Flowers102 (paper)", "Δ"] and header[-4:-1] == [
        "FGVCAircraft", "FGVCAircraft (paper)", "Δ"]
    assert list(rows) == [r.label for r in INSTANCE_PROMPT.rows]
    for row in INSTANCE_PROMPT.rows:
        cell = dict(zip(header, rows[row.label]))  # named columns (the Δ ones repeat)
        assert [num(cell[f"{c} (paper)"]) for c in INSTANCE_PROMPT.columns] == list(row.paper)
        if not row.trainer:  # LFA: the paper's numbers only
            assert {cell[c] for c in INSTANCE_PROMPT.columns} == {"not implemented"}
            continue
        assert num(cell["OxfordPets"]) is not None and cell["seeds"] == "1", (row.label, cell)  # it ran
        assert cell["Flowers102"] == "-"  # not asked for (--datasets)


def test_zero_shot_jobs_evaluate_once_without_training(tmp_path):
    sweep = build_sweep(SweepSpec("base2new", "ZeroshotCLIP", datasets=("dtd",), seeds=(1, 2, 3),
                                  output=str(tmp_path)))
    assert len(sweep.jobs) == 1 and sweep.config == "vit_b16"
    steps = sweep.jobs[0].steps
    assert [s.name for s in steps] == ["test_base", "test_new"]
    assert all("--eval-only" in s.command and "--model-dir" not in s.command for s in steps)
    assert steps[1].folder.endswith("base2new/test_new/dtd/shots_16/ZeroshotCLIP/vit_b16/seed1")
    fewshot = build_sweep(SweepSpec("fewshot", "ZeroshotCLIP2", config="rn50", datasets=("dtd", "eurosat"),
                                    shots=(4,), output=str(tmp_path)))
    assert [len(j.steps) for j in fewshot.jobs] == [1, 1] and "ZeroshotCLIP/rn50.yaml" in " ".join(
        fewshot.jobs[0].steps[0].command)


def test_paper_command_bad_input_is_one_line(tmp_path, capsys):
    for argv, names in ((["instance_prompt", "--datasets", "dtd"], ["--datasets", "oxford_pets"]),
                        (["metaprot"], ["metaproto"])):
        with pytest.raises(SystemExit) as e:
            paper.run(argv + ["--output", str(tmp_path), "--root", str(tmp_path)])
        out = capsys.readouterr()
        assert_user_error(e.value.code, out.out + out.err, *names)
    assert not (tmp_path / "paper").exists()


def test_dry_run_lists_every_row_of_the_table(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        paper.run(["instance_prompt", "--dry-run", "--seeds", "1", "2", "--output", str(tmp_path)])
    text = capsys.readouterr().out
    assert e.value.code == 0
    # 4 datasets x (zero-shot once + 3 trained methods x 2 seeds); LFA has no job
    assert "28 jobs, 28 steps" in text and "LFA" not in text


@pytest.mark.parametrize("template,expected", [("a photo of a {}.", 0), ("a photo of a", 2)])
def test_zero_shot_template_key(template, expected, dtd_root, tiny_clip, tmp_path, capsys):
    code, text = run_cli(["--root", dtd_root, "--trainer", "ZeroshotCLIP", "--dataset-config-file",
                          "configs/datasets/dtd.yaml", "--config-file", "configs/trainers/ZeroshotCLIP/vit_b16.yaml",
                          "--output-dir", str(tmp_path / "zs"), "--eval-only", "MODEL.BACKBONE.NAME", tiny_clip["vit"],
                          "INPUT.SIZE", "(32, 32)", "DATALOADER.NUM_WORKERS", "0", "TRAINER.COOP.PREC", "fp32",
                          "TRAINER.ZEROSHOT.TEMPLATE", template], capsys)
    if expected:
        assert_user_error(code, text, "TRAINER.ZEROSHOT.TEMPLATE", "{}")
    else:
        assert code == 0, text[-2000:]
        assert "['a photo of a {}.']" in text and re.search(r"^\* accuracy: ", text, re.M)
