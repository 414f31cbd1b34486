"""``vlprompt.results`` gives the numbers the published ``parse_test_res.py`` gives on our run folders, and its
--ddof / --ci95 / --keyword options compute what they say."""
import csv
import io
import os
import re

import numpy as np
import pytest

from conftest import REPO
from vlprompt import cli, results


def published_parse(directory, keyword="accuracy", test_log=False):
    """The published parser's rules, written here: every non-hidden entry of ``directory`` (sorted) is a run
    folder that must hold a log.txt; in each log, lines count once a stripped line equals the end signal
    ("Finish training", or "=> result" for test-only logs), and the last match of ``\\* <keyword>: (number)%``
    after it is the run's value (a log without one is left out). Returns the values in folder order."""
    end_signal = "=> result" if test_log else "Finish training"
    regex = re.compile(rf"\* {keyword}: ([\.\deE+-]+)%")
    values = []
    for entry in sorted(e for e in os.listdir(directory) if not e.startswith(".")):
        path = os.path.join(directory, entry, "log.txt")
        assert os.path.isfile(path), path
        started, value = False, None
        with open(path) as f:
            for line in f:
                line = line.strip()
                started = started or line == end_signal
                match = regex.search(line)
                if match and started:
                    value = float(match.group(1))
        if value is not None:
            values.append(value)
    assert values, f"Nothing found in {directory}"
    return values


def published_summary(values, ci95=False):
    """``* <keyword>: {mean:.2f}% +- {spread:.2f}%``: np.mean, and np.std (ddof 0) or 1.96 * np.std / sqrt(n)."""
    spread = 1.96 * np.std(values) / np.sqrt(len(values)) if ci95 else np.std(values)
    return f"{np.mean(values):.2f} ± {spread:.2f}"


def table(capsys, root, *options):
    """``python -m vlprompt.results root --format csv options`` -> (rows as dicts, the footer line)."""
    assert results.main([root, "--format", "csv", *options]) == 0
    text = capsys.readouterr().out
    lines = text.splitlines()
    assert lines[-1].startswith("# ") and "± = " in lines[-1]
    return list(csv.DictReader(io.StringIO("\n".join(lines[:-1])))), lines[-1]


def run_args(root, clip, out, subsample, seed, *extra):
    return ["--root", root, "--seed", str(seed), "--trainer", "CoOp",
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / "configs/trainers/CoOp/vit_b16_ep50.yaml"), "--output-dir", str(out), *extra,
            "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
            "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", "1", "OPTIM.WARMUP_EPOCH", "-1", "DATALOADER.NUM_WORKERS",
            "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "DATALOADER.TEST.BATCH_SIZE", "50", "DATASET.NUM_SHOTS", "1",
            "DATASET.SUBSAMPLE_CLASSES", subsample, "TEST.PER_CLASS_RESULT", "True", "VERBOSE", "False"]


@pytest.fixture(scope="module")
def b2n(dtd_root, tiny_clip, tmp_path_factory):
    """Seeds 1 and 2 in the published base-to-new layout: train on base classes (train logs), evaluate on new
    classes with --eval-only (test logs)."""
    root = tmp_path_factory.mktemp("b2n")
    method = "dtd/shots_1/CoOp/vit_b16_ep50"
    for seed in (1, 2):
        train = root / "train_base" / method / f"seed{seed}"
        assert cli.main(run_args(dtd_root, tiny_clip["vit"], train, "base", seed)) == 0
        assert cli.main(run_args(dtd_root, tiny_clip["vit"], root / "test_new" / method / f"seed{seed}", "new", seed,
                                 "--eval-only", "--model-dir", str(train), "--load-epoch", "1")) == 0
    return root, method


@pytest.mark.slow
@pytest.mark.parametrize("keyword", ["accuracy", "average"])
def test_published_parser_reads_our_runs_and_agrees(b2n, capsys, keyword):
    root, method = b2n
    base = published_parse(str(root / "train_base" / method), keyword)
    new = published_parse(str(root / "test_new" / method), keyword, test_log=True)
    assert len(base) == len(new) == 2
    options = [] if keyword == "accuracy" else ["--keyword", keyword]
    for ci95 in (False, True):
        rows, footer = table(capsys, str(root), *options, *(["--ci95"] if ci95 else []))
        row = next(r for r in rows if r["dataset"] == "dtd")
        assert row["method"] == "shots_1/CoOp/vit_b16_ep50" and row["seeds"] == "1,2"
        assert row["Base"] == published_summary(base, ci95) and row["New"] == published_summary(new, ci95)
        assert row["HM"] == f"{results.harmonic_mean(np.mean(base), np.mean(new)):.2f}"
        assert ("95% confidence interval" in footer) == ci95 and "population std (ddof 0)" in footer
    if keyword == "average":  # the per-class mean the published parser finds is the mean of the logged classes
        log = (root / "test_new" / method / "seed1" / "log.txt").read_text()
        accs = [float(a) for a in re.findall(r"^\* class: \d+ \(.*\)\ttotal: \d+\tcorrect: \d+\tacc: ([0-9.]+)%$",
                                             log, re.M)]
        assert len(accs) == 23 and abs(new[0] - np.mean(accs)) <= 0.05 + 1e-9  # 23 new classes; lines rounded


def _write_runs(folder, values, keyword="accuracy"):
    for seed, value in enumerate(values, 1):
        d = folder / f"seed{seed}"
        d.mkdir(parents=True)
        (d / "log.txt").write_text(f"epoch [1/1] ...\nFinish training\n=> result\n* {keyword}: {value}%\n")


def test_std_ddof_and_ci95_are_numpy_s(tmp_path, capsys):
    values = [71.3, 68.9, 74.6, 70.2]
    _write_runs(tmp_path / "fewshot", values)
    n = len(values)
    expected = {(): np.std(values), ("--ddof", "1"): np.std(values, ddof=1),
                ("--ci95",): 1.96 * np.std(values) / np.sqrt(n),
                ("--ci95", "--ddof", "1"): 1.96 * np.std(values, ddof=1) / np.sqrt(n)}
    assert len({f"{v:.2f}" for v in expected.values()}) == 4  # the four numbers differ at the shown precision
    cells = {}
    for options, spread in expected.items():
        rows, footer = table(capsys, str(tmp_path), *options)
        assert rows == [{"run": "fewshot", "seeds": "1,2,3,4", "Accuracy": f"{np.mean(values):.2f} ± {spread:.2f}"}]
        assert ("sample std (ddof 1)" in footer) == ("1" in options)
        assert ("population std (ddof 0)" in footer) == ("1" not in options)
        cells[options] = rows[0]["Accuracy"]
    parsed = published_parse(str(tmp_path / "fewshot"))
    assert parsed == values  # the published rules find every seed
    assert published_summary(parsed) == cells[()] and published_summary(parsed, ci95=True) == cells[("--ci95",)]
    with pytest.raises(SystemExit):  # only 0 and 1
        results.main([str(tmp_path), "--ddof", "2"])


def test_every_format_says_what_the_spread_is(tmp_path, capsys):
    _write_runs(tmp_path / "b" / "train_base" / "dtd" / "m", [80.0, 82.0])
    _write_runs(tmp_path / "b" / "test_new" / "dtd" / "m", [60.0, 64.0])
    for fmt, table_marker in (("text", "Base"), ("csv", "dataset,method,seeds,Base,New,HM"),
                              ("markdown", "| dataset |"), ("latex", r"\begin{tabular}")):
        assert results.main([str(tmp_path / "b"), "--format", fmt, "--ci95"]) == 0
        out = capsys.readouterr().out
        assert table_marker in out and "81.00" in out and "62.00" in out
        assert "95% confidence interval over seeds: 1.96 * population std (ddof 0) / sqrt(n)" in out
        assert f"{1.96 * np.std([80.0, 82.0]) / np.sqrt(2):.2f}" in out


def test_multi_experiment_average_matches_the_average_row(tmp_path, capsys):
    """The published --multi-exp mean of each experiment's mean equals our Average row (per dataset)."""
    for ds, base, new in (("dtd", [80.0, 83.0], [55.0, 52.0]), ("eurosat", [90.0, 92.5], [70.0, 71.5])):
        _write_runs(tmp_path / "train_base" / ds / "cfg", base)
        _write_runs(tmp_path / "test_new" / ds / "cfg", new)
    exp_means = {kind: [np.mean(published_parse(str(tmp_path / kind / ds / "cfg"), test_log=kind == "test_new"))
                        for ds in sorted(os.listdir(tmp_path / kind))] for kind in ("train_base", "test_new")}
    rows, _ = table(capsys, str(tmp_path))
    avg = next(r for r in rows if r["dataset"] == "Average")
    assert avg["Base"] == f"{np.mean(exp_means['train_base']):.2f}" and avg["New"] == f"{np.mean(exp_means['test_new']):.2f}"
