"""Import the plugin folders (``trainers/``, ``datasets/``) once, by file path.

Plugins are imported under the private namespace ``vlprompt_plugins.<folder>.<file>``,
never as top-level ``datasets``/``trainers`` (HuggingFace ``datasets`` would clash).
Extra folders come from ``VLPROMPT_PLUGINS`` (os.pathsep separated) or ``load(extra=...)``.
"""
from __future__ import annotations

import importlib.util
import os
import sys
import types
from pathlib import Path
from typing import Iterable

from vlprompt.errors import ConfigError

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FOLDERS = (REPO_ROOT / "trainers", REPO_ROOT / "datasets")
_loaded: set[Path] = set()


def _namespace(name: str) -> types.ModuleType:
    """An empty package in sys.modules (``vlprompt_plugins``, ``vlprompt_plugins.trainers``), so plugin
    modules import and pickle like ordinary ones."""
    if name not in sys.modules:
        module = types.ModuleType(name)
        module.__path__ = []  # a package
        sys.modules[name] = module
        parent, _, child = name.rpartition(".")
        if parent:
            setattr(_namespace(parent), child, module)
    return sys.modules[name]


def _import_file(path: Path) -> None:
    package = _namespace(f"vlprompt_plugins.{path.parent.name}")
    module_name = f"{package.__name__}.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot import plugin file {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception:
        del sys.modules[module_name]
        raise
    setattr(package, path.stem, module)


def plugin_files(extra: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """The ``*.py`` files (not starting with ``_``) of the plugin folders: the repo's, ``VLPROMPT_PLUGINS``'s and
    ``extra``'s (``--plugins``), in import order."""
    folders = list(DEFAULT_FOLDERS)
    env = os.environ.get("VLPROMPT_PLUGINS", "")
    folders += [Path(p) for p in env.split(os.pathsep) if p]
    folders += [Path(p) for p in extra]
    files = []
    for folder in folders:
        folder = folder.resolve()
        if not folder.is_dir():
            raise ConfigError(f"Plugin folder {folder} does not exist (from --plugins or VLPROMPT_PLUGINS). Pass "
                              "an existing folder of trainer/dataset .py files, or fix VLPROMPT_PLUGINS "
                              f"(folders separated by '{os.pathsep}').")
        files += [p for p in sorted(folder.glob("*.py")) if not p.name.startswith("_")]
    return files


def load(extra: Iterable[str | os.PathLike] = ()) -> None:
    """Import every plugin file (:func:`plugin_files`), each once."""
    for path in plugin_files(extra):
        if path not in _loaded:
            _loaded.add(path)
            _import_file(path)
