"""``train.py``'s checks that need neither torch nor the plugins, run before anything heavy is imported: a mistake
in the command line or the file system is reported in well under a second, not after the imports, the dataset
listing and the CLIP load.

Checked here: the config files (with the nearest file name), every key and value outside the plugins'
``TRAINER.<METHOD>`` sections, the trainer and dataset names and the dataset's folder under the root (read off the
plugin files' source with ``ast``, with the reader's own layout message), the ``--model-dir`` checkpoints of ``--eval-only`` and a backbone given as a path. The
rest (the methods' own keys, the output folder's identity) follows once the plugins are imported, still before
any dataset or model is built.
"""
from __future__ import annotations

import argparse
import ast
import os
from pathlib import Path

from yacs.config import CfgNode

from vlprompt import plugins
from vlprompt.config.setup import setup_cfg
from vlprompt.engine.run_folder import is_checkpoint_dir
from vlprompt.errors import BackboneNotFoundError, CheckpointError, DatasetLayoutError
from vlprompt.registry import unknown_name

def registered(files: list[Path]) -> dict[str, dict[str, dict[str, str]]]:
    """``{"TRAINER": {name: attrs}, "DATASET": {name: attrs}}`` of the classes the plugin files register, with
    their literal string class attributes (a reader's ``dataset_dir``, ``layout``, ``source``), read from the
    source with ``ast`` (nothing is imported)."""
    found: dict[str, dict[str, dict[str, str]]] = {"TRAINER": {}, "DATASET": {}}
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8", errors="replace"))
        except SyntaxError:
            continue  # the import reports it
        for node in (n for n in tree.body if isinstance(n, ast.ClassDef)):
            for deco in node.decorator_list:
                kind, name = _registration(deco)
                if kind in found:
                    found[kind][name or node.name] = _string_attributes(node)
    return found


def _registration(deco: ast.expr) -> tuple[str, str]:
    """``@TRAINER_REGISTRY.register()`` -> ("TRAINER", ""); with a name argument -> ("TRAINER", name)."""
    if not (isinstance(deco, ast.Call) and isinstance(deco.func, ast.Attribute) and deco.func.attr == "register"
            and isinstance(deco.func.value, ast.Name) and deco.func.value.id.endswith("_REGISTRY")):
        return "", ""
    args = list(deco.args) + [k.value for k in deco.keywords if k.arg == "name"]
    name = args[0].value if args and isinstance(args[0], ast.Constant) and isinstance(args[0].value, str) else ""
    return deco.func.value.id[: -len("_REGISTRY")], name


def _string_attributes(cls: ast.ClassDef) -> dict[str, str]:
    attrs = {}
    for stmt in cls.body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            try:
                value = ast.literal_eval(stmt.value)
            except ValueError:
                continue
            if isinstance(value, str):
                attrs[stmt.targets[0].id] = value
    return attrs


def _check_model_dir(model_dir: str, load_epoch: int | None) -> None:
    """``--model-dir`` is a run folder with checkpoints (and the ``--load-epoch`` one)."""
    if not os.path.isdir(model_dir):
        raise CheckpointError(f"--model-dir {model_dir}: no such folder; pass the --output-dir of a training run")
    modules = [d for d in sorted(os.listdir(model_dir)) if is_checkpoint_dir(os.path.join(model_dir, d))]
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
    for kind, name in (("TRAINER", cfg.TRAINER.NAME), ("DATASET", cfg.DATASET.NAME)):
        if name and name not in names[kind]:
            raise unknown_name(kind, name, list(names[kind]))
    reader = names["DATASET"].get(cfg.DATASET.NAME, {})
    folder = reader.get("dataset_dir", "")
    root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
    if cfg.DATASET.NAME and folder and not os.path.isdir(os.path.join(root, folder)):
        raise DatasetLayoutError.of(cfg.DATASET.NAME, f"the folder {os.path.join(root, folder)} does not exist",
                                    root, reader.get("layout", f"{folder}/"), reader.get("source", ""), folder)
    if args.eval_only and args.model_dir:
        _check_model_dir(args.model_dir, args.load_epoch)
    _check_backbone(cfg.MODEL.BACKBONE.NAME)
    return cfg
