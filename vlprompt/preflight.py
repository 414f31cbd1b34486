"""``train.py``'s checks that need neither torch nor the plugins, run before anything heavy is imported: a mistake
in the command line or the file system is reported in well under a second, not after the imports, the dataset
listing and the CLIP load.

Checked here: the config files (with the nearest file name), every key and value outside the plugins'
``TRAINER.<METHOD>`` sections, the trainer and dataset names (read off the plugin files' source), the dataset
folder under the root, the ``--model-dir`` checkpoints of ``--eval-only`` and a backbone given as a path. The
rest (the methods' own keys, the output folder's identity) follows once the plugins are imported, still before
any dataset or model is built.
"""
from __future__ import annotations

import argparse
import difflib
import os
import re
from pathlib import Path

from yacs.config import CfgNode

from vlprompt import plugins
from vlprompt.config.setup import setup_cfg
from vlprompt.errors import BackboneNotFoundError, CheckpointError, ConfigError

_REGISTERED = re.compile(r"@(TRAINER|DATASET)_REGISTRY\.register\((?:name=)?(?:['\"](\w+)['\"])?\)\s*\n"
                         r"class\s+(\w+)\b(.*?)(?=\n@|\nclass\s|\Z)", re.S)
_DATASET_DIR = re.compile(r"^\s+dataset_dir\s*=\s*['\"]([^'\"]+)['\"]", re.M)


def registered(files: list[Path]) -> dict[str, dict[str, str]]:
    """``{"TRAINER": {name: ""}, "DATASET": {name: dataset_dir or ""}}`` of the classes the plugin files register
    (read from their source, so nothing is imported)."""
    found: dict[str, dict[str, str]] = {"TRAINER": {}, "DATASET": {}}
    for path in files:
        for kind, given, cls, body in _REGISTERED.findall(path.read_text(encoding="utf-8", errors="replace")):
            folder = _DATASET_DIR.search(body)
            found[kind][given or cls] = folder.group(1) if folder else ""
    return found


def _check_name(kind: str, name: str, names: dict[str, str], fix: str) -> None:
    if name and names and name not in names:
        near = [n for n in names if n.lower() == name.lower()] or difflib.get_close_matches(name, list(names), n=1)
        hint = f" (did you mean {near[0]}?)" if near else ""
        raise ConfigError(f"unknown {kind} '{name}'{hint}; {fix}: {', '.join(sorted(names))}")


def _check_model_dir(model_dir: str, load_epoch: int | None) -> None:
    """``--model-dir`` is a run folder with checkpoints (and the ``--load-epoch`` one)."""
    if not os.path.isdir(model_dir):
        raise CheckpointError(f"--model-dir {model_dir}: no such folder; pass the --output-dir of a training run")
    modules = [d for d in sorted(os.listdir(model_dir)) if os.path.isfile(os.path.join(model_dir, d, "checkpoint"))
               or any(f.startswith("model") for f in _files(os.path.join(model_dir, d)))]
    if not modules:
        raise CheckpointError(f"--model-dir {model_dir} holds no checkpoint (no <module>/model.pth.tar-N); pass the "
                              "--output-dir of a finished training run")
    if load_epoch is not None:
        name = f"model.pth.tar-{load_epoch}"
        if not any(name in _files(os.path.join(model_dir, m)) for m in modules):
            saved = sorted({f.rsplit("-", 1)[-1] for m in modules for f in _files(os.path.join(model_dir, m))
                            if f.startswith("model.pth.tar-")}, key=lambda e: (len(e), e))
            raise CheckpointError(f"--load-epoch {load_epoch}: {model_dir} has no {name} (saved epochs: "
                                  f"{', '.join(saved) or 'none'}); pass one of those")


def _files(folder: str) -> list[str]:
    return os.listdir(folder) if os.path.isdir(folder) else []


def _check_backbone(name: str) -> None:
    looks_like_path = name.startswith(("/", ".", "~")) or name.endswith((".pt", ".pth", ".bin", ".safetensors"))
    if looks_like_path and ":" not in name and not os.path.isfile(os.path.expanduser(name)):
        raise BackboneNotFoundError(f"MODEL.BACKBONE.NAME '{name}' looks like a file path, but no file is there.")


def check_command_line(args: argparse.Namespace) -> CfgNode:
    """Run the checks above on ``train.py``'s parsed arguments -> the config without the methods' sections."""
    cfg = setup_cfg(args, method_sections=False)
    names = registered(plugins.plugin_files(args.plugins))
    _check_name("trainer", cfg.TRAINER.NAME, names["TRAINER"], "pass --trainer as one of")
    _check_name("dataset", cfg.DATASET.NAME, names["DATASET"],
                "set DATASET.NAME (in --dataset-config-file) to one of")
    root, folder = os.path.expanduser(cfg.DATASET.ROOT), names["DATASET"].get(cfg.DATASET.NAME, "")
    if cfg.DATASET.ROOT and not os.path.isdir(root):
        raise ConfigError(f"--root {cfg.DATASET.ROOT}: no such folder; pass the folder that holds the datasets "
                          "(dtd/, imagenet/, ...; docs/DATASETS.md)")
    if cfg.DATASET.ROOT and folder and not os.path.isdir(os.path.join(root, folder)):
        raise ConfigError(f"{cfg.DATASET.NAME} is read from {os.path.join(root, folder)}, which does not exist; put "
                          f"the dataset there (docs/DATASETS.md) or pass the --root that holds {folder}/")
    if args.eval_only and args.model_dir:
        _check_model_dir(args.model_dir, args.load_epoch)
    _check_backbone(cfg.MODEL.BACKBONE.NAME)
    return cfg
