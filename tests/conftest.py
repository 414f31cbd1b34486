"""Session fixtures: tiny CLIP checkpoints and a synthetic DTD root, built once per test session."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vlprompt import plugins
from vlprompt.testing.fake_data import make_dtd
from vlprompt.testing.tiny_clip import write_tiny_clip

DATA = Path(__file__).parent / "data"
REPO = Path(__file__).resolve().parent.parent

plugins.load()


def golden(name: str) -> dict:
    return torch.load(DATA / "golden" / name, weights_only=False)


def pytest_collection_modifyitems(config, items):
    if not torch.cuda.is_available():
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "cuda" in item.keywords:
                item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def hermetic_feature_cache(tmp_path_factory):
    """The feature cache of this session (``MODEL.FEATURE_CACHE_DIR`` "" and the processes tests start) is a temp
    folder, never the user's ``~/.cache/vlprompt/features``."""
    from vlprompt.engine.feature_cache import ENV_DIR

    folder = str(tmp_path_factory.mktemp("feature_cache"))
    before = os.environ.get(ENV_DIR)
    os.environ[ENV_DIR] = folder
    yield folder
    if before is None:
        os.environ.pop(ENV_DIR, None)
    else:
        os.environ[ENV_DIR] = before


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("clip")
    paths = {}
    for spec in ("vit", "rn", "vit_s"):
        paths[spec] = str(folder / f"tiny_clip_{spec}.pt")
        paths[f"{spec}_digest"] = write_tiny_clip(spec, paths[spec])
    return paths


@pytest.fixture(scope="session")
def dtd_root(tmp_path_factory) -> str:
    root = tmp_path_factory.mktemp("data")
    make_dtd(str(root), images_per_class=8)
    return str(root)


@pytest.fixture(scope="session")
def loaded_clip(tiny_clip):
    from vlprompt.clip.load import load_clip

    cache = {}

    def get(spec: str):
        if spec not in cache:
            cache[spec] = load_clip(tiny_clip[spec])
        return cache[spec]

    return get


@pytest.fixture(scope="session")
def image_roots(tmp_path_factory) -> str:
    """All 15 synthetic roots with real tiny images (for runs that load images)."""
    from vlprompt.testing.fake_data import build_roots

    root = tmp_path_factory.mktemp("roots_images")
    build_roots(str(DATA / "roots" / "meta"), str(DATA / "roots" / "manifests"), str(root))
    return str(root)


def repo_copy(folder: Path) -> Path:
    """A folder laid out like the repo (symlinks), so the scripts write their output/ there."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("train.py", "configs", "scripts", "trainers", "datasets"):
        os.symlink(REPO / name, folder / name)
    return folder


def script_env(data: str = "", **extra: str) -> dict:
    """The environment for the scripts: DATA, and this interpreter's python first on PATH."""
    path = os.path.dirname(sys.executable) + os.pathsep + os.environ["PATH"]
    return dict(os.environ, DATA=data, PATH=path, **extra)


def run_script(work: Path, script: str, *argv: str, data: str = "", check: bool = True, **env):
    """``bash work/script argv...`` in ``work``; asserts success (showing the output) unless ``check`` is False."""
    p = subprocess.run(["bash", str(work / script), *argv], cwd=work, env=script_env(data, **env),
                       capture_output=True, text=True, timeout=600)
    if check:
        assert p.returncode == 0, f"{script}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return p


def run_cli(argv, capsys):
    """``train.py argv`` in-process through ``cli.run`` -> (exit code, everything it printed)."""
    from vlprompt import cli
    from vlprompt.utils.logging import setup_logger

    setup_logger()  # log to this test's captured stdout also before train.py sets up its own logger
    with pytest.raises(SystemExit) as e:
        cli.run(argv)
    out = capsys.readouterr()
    return e.value.code, out.out + out.err


def assert_user_error(code, text, *names):
    """Exit code 2, no traceback, one ``Error:`` line naming each of ``names``; returns that line."""
    assert code == 2, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("Error:")]
    assert len(lines) == 1, text[-3000:]
    for name in names:
        assert name in lines[0], lines[0]
    return lines[0]


def read_logs(folder) -> str:
    """Every log file of a run folder, oldest attempt first (``log.txt``, then each later attempt's
    ``log.txt-<date-time>``)."""
    from vlprompt.utils.logging import log_files

    return "".join(Path(p).read_text() for p in log_files(str(folder)))
