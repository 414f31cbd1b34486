"""What the repository offers a sweep: trainers, their configs and default configs, datasets, ``MAX_EPOCH``.

Everything is read from the repo's files (``configs/``, ``scripts/``), never by importing the plugins: a typo
is reported in well under a second, and the defaults are those of the published scripts.
"""
from __future__ import annotations

import difflib
import re
from pathlib import Path

import yaml

import vlprompt
from vlprompt.errors import ConfigError

ROOT = Path(vlprompt.__file__).resolve().parent.parent
TRAIN_PY = ROOT / "train.py"
FEWSHOT_DATASETS = ["imagenet", "caltech101", "oxford_pets", "stanford_cars", "oxford_flowers", "food101",
                    "fgvc_aircraft", "sun397", "dtd", "eurosat", "ucf101"]
DG_TARGETS = ["imagenetv2", "imagenet_sketch", "imagenet_a", "imagenet_r"]
# Methods without learnable parameters: a sweep evaluates them (``--eval-only``) once, with the first seed
EVAL_ONLY = {"ZeroshotCLIP": "vit_b16", "ZeroshotCLIP2": "vit_b16"}  # -> their default config
# Trainers that read another trainer's configs (ZeroshotCLIP2 runs with ZeroshotCLIP's)
CONFIG_FOLDER = {"ZeroshotCLIP2": "ZeroshotCLIP"}
_OWN_SCRIPTS = ("base2new_train.sh", "xd_train.sh")
_SCRIPT_CALL = re.compile(r"^\s*(base2new_train|xd_train)\s+([A-Za-z]\w*)\s+(\S+)", re.M)


def _unknown(what: str, value: str, choices: list[str], fix: str) -> ConfigError:
    near = [c for c in choices if c.lower() == value.lower()] or difflib.get_close_matches(value, choices, n=1)
    hint = f" (did you mean {near[0]}?)" if near else ""
    return ConfigError(f"unknown {what} '{value}'{hint}; {fix}: {', '.join(choices)}")


def trainers() -> list[str]:
    """Trainer names that have a config folder ``configs/trainers/<name>/`` (or read another's)."""
    folders = {p.name for p in (ROOT / "configs" / "trainers").iterdir() if p.is_dir()}
    return sorted(folders | {t for t, f in CONFIG_FOLDER.items() if f in folders})


def check_trainer(name: str) -> str:
    if name not in trainers():
        raise _unknown("trainer", name, trainers(), "pass --trainer as one of")
    return name


def config_file(trainer: str, cfg: str) -> Path:
    """``configs/trainers/<trainer>/<cfg>.yaml`` (absolute); an unknown name lists the trainer's configs."""
    path = ROOT / "configs" / "trainers" / CONFIG_FOLDER.get(trainer, trainer) / f"{cfg}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise _unknown(f"config for {trainer}", cfg, names, f"pass --config as a file name of {path.parent}")
    return path


def dataset_file(name: str, flag: str = "--datasets") -> Path:
    """``configs/datasets/<name>.yaml`` (absolute); ``flag``: the option that named it, for the message."""
    path = ROOT / "configs" / "datasets" / f"{name}.yaml"
    if not path.is_file():
        names = sorted(p.stem for p in path.parent.glob("*.yaml"))
        raise _unknown("dataset", name, names + (["all"] if flag == "--datasets" else []),
                       f"pass {flag} as one of")
    return path


def default_config(trainer: str, protocol: str) -> str:
    """The CFG default of ``scripts/<method>/xd_train.sh`` (protocols xd, dg) or ``base2new_train.sh``."""
    if trainer in EVAL_ONLY:
        return EVAL_ONLY[trainer]
    found: dict[str, str] = {}
    # the method's own base2new_train.sh / xd_train.sh first: alias scripts (language-prompting/, ...) may call
    # the same function with another config
    scripts = sorted((ROOT / "scripts").glob("*/*.sh"), key=lambda p: (p.name not in _OWN_SCRIPTS, str(p)))
    for script in scripts:
        for func, name, cfg in _SCRIPT_CALL.findall(script.read_text()):
            if name == trainer:
                found.setdefault(func, cfg)
    key = "xd_train" if protocol in ("xd", "dg") and "xd_train" in found else "base2new_train"
    if key not in found:
        names = sorted(p.stem for p in (ROOT / "configs" / "trainers" / trainer).glob("*.yaml"))
        raise ConfigError(f"{trainer} has no script with a default config; pass --config as one of: "
                          f"{', '.join(names)}")
    return found[key]


def max_epoch(path: Path) -> int:
    """``OPTIM.MAX_EPOCH`` of a method config (the checkpoint the evaluation loads, as ``common.sh``)."""
    with open(path) as f:
        data = yaml.safe_load(f) or {}
    try:
        return int(data["OPTIM"]["MAX_EPOCH"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError(f"{path} sets no OPTIM.MAX_EPOCH; add it there or pass OPTIM.MAX_EPOCH N") from None
