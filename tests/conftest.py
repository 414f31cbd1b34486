"""Session fixtures: tiny CLIP checkpoints and a synthetic DTD root, built once per test session."""
from __future__ import annotations

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


@pytest.fixture(scope="session")
def tiny_clip(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("clip")
    paths = {}
    for spec in ("vit", "rn"):
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
