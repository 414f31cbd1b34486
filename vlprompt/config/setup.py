"""Build the frozen config of a run: defaults -> plugin sections -> dataset YAML -> method YAML -> flags -> KEY VALUE."""
from __future__ import annotations

import argparse
import difflib
import os
from typing import Any, Iterable, Sequence

from yacs.config import CfgNode as CN

from .defaults import NO_EFFECT_KEYS, UNSUPPORTED_KEYS, get_cfg_default
from vlprompt.errors import ConfigError  # noqa: F401 (re-exported)


def _all_keys(cfg: CN, prefix: str = "") -> list[str]:
    keys = []
    for k, v in cfg.items():
        full = f"{prefix}{k}"
        keys.append(full)
        if isinstance(v, CN):
            keys += _all_keys(v, full + ".")
    return keys


def _unknown_key_error(key: str, cfg: CN, source: str) -> ConfigError:
    valid = _all_keys(cfg)
    close = difflib.get_close_matches(key, valid, n=1, cutoff=0.6)
    if not close:  # same last component elsewhere in the tree, e.g. N_CTX under another trainer
        last = key.rsplit(".", 1)[-1]
        close = [k for k in valid if k.rsplit(".", 1)[-1] == last][:1]
    hint = f" Did you mean '{close[0]}'?" if close else ""
    return ConfigError(f"{source}: unknown config key '{key}'.{hint} "
                       "Valid keys are listed in vlprompt/config/defaults.py and each trainer's add_config.")


def _file_not_found(path: str) -> ConfigError:
    """The missing config file, with the nearest file of its folder and that folder's YAML files."""
    folder, name = os.path.split(path)
    names = sorted(f for f in os.listdir(folder or ".") if f.endswith(".yaml")) if os.path.isdir(folder or ".") else []
    near = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    hint = f" (did you mean {os.path.join(folder, near[0])}?)" if near else ""
    listing = (f"; the files there: {', '.join(n[:-5] for n in names)}" if names else
               " (relative paths start from the current folder; the published files are under configs/trainers/ "
               "and configs/datasets/)")
    return ConfigError(f"Config file not found: {path}{hint}{listing}")


def merge_from_file(cfg: CN, path: str, method_sections: bool = True) -> None:
    """Merge a YAML file into ``cfg``; unknown keys raise a ConfigError naming the nearest valid key.
    ``method_sections`` False: leave out the ``TRAINER.<METHOD>`` sections (a check before the plugins exist)."""
    if not os.path.isfile(path):
        raise _file_not_found(path)
    with open(path, encoding="utf-8") as f:
        try:
            loaded = cfg.load_cfg(f)
        except Exception as e:  # yaml syntax errors
            raise ConfigError(f"{path}: cannot parse YAML ({e})") from e
    if not method_sections and isinstance(loaded.get("TRAINER"), CN):
        for key in [k for k in loaded.TRAINER if k not in cfg.TRAINER]:
            del loaded.TRAINER[key]
    if not method_sections and isinstance(loaded.get("DATASET"), CN):  # a dataset reader's section (IMAGE_FOLDER)
        for key in [k for k in loaded.DATASET if k not in cfg.DATASET and isinstance(loaded.DATASET[k], CN)]:
            del loaded.DATASET[key]
    _check_keys(loaded, cfg, path, root=cfg)
    try:
        cfg.merge_from_other_cfg(loaded)
    except ValueError as e:
        raise ConfigError(f"{path}: {e}") from e
    check_no_effect(cfg, _all_keys(loaded), path)


def _check_keys(new: CN, cfg: CN, source: str, root: CN, prefix: str = "") -> None:
    for k, v in new.items():
        full = f"{prefix}{k}"
        if k not in cfg:
            raise _unknown_key_error(full, root, source)
        if isinstance(v, CN) and isinstance(cfg[k], CN):
            _check_keys(v, cfg[k], source, root, full + ".")


def merge_from_list(cfg: CN, opts: Sequence[str], source: str = "command line") -> None:
    """Merge ``KEY VALUE`` pairs; unknown keys raise a ConfigError naming the nearest valid key."""
    opts = list(opts)
    if len(opts) % 2:
        raise ConfigError(f"{source}: overrides must come as KEY VALUE pairs, got an odd number: {opts}")
    valid = set(_all_keys(cfg))
    for key in opts[0::2]:
        if key not in valid:
            raise _unknown_key_error(key, cfg, source)
    try:
        cfg.merge_from_list(opts)
    except ValueError as e:
        raise ConfigError(f"{source}: {e}") from e
    check_no_effect(cfg, opts[0::2], f"the {source}")


def _lookup(cfg: CN, key: str) -> Any:
    node, leaf = _node(cfg, key)
    return node[leaf]


def check_no_effect(cfg: CN, keys: Iterable[str], source: str) -> None:
    """Of ``keys`` (those ``source`` set), reject each one listed in NO_EFFECT_KEYS or UNSUPPORTED_KEYS
    (defaults.py) whose value now differs from its default: a ConfigError naming key, value, why and source."""
    default = get_cfg_default()
    for key in keys:
        for table, verb in ((NO_EFFECT_KEYS, "has no effect"), (UNSUPPORTED_KEYS, "is not supported")):
            why = next((w for k, w in table.items() if key == k or (k.endswith(".") and key.startswith(k))), None)
            if why is None or isinstance(_lookup(cfg, key), CN):
                continue
            value = _lookup(cfg, key)
            if value != _lookup(default, key):
                shown = list(value) if isinstance(value, (tuple, list)) else value
                raise ConfigError(f"{key} {shown} {verb} in VLPrompt ({why}); remove it from {source}")


def add_plugin_configs(cfg: CN) -> None:
    """Let every registered trainer and dataset add its own section (TRAINER.COOP, ...)."""
    from vlprompt import plugins
    from vlprompt.registry import DATASET_REGISTRY, TRAINER_REGISTRY

    plugins.load()
    for registry in (TRAINER_REGISTRY, DATASET_REGISTRY):
        for name in registry.names():
            add = getattr(registry.get(name), "add_config", None)
            if add is not None:
                add(cfg)


def get_cfg(opts: Iterable[str] = ()) -> CN:
    """Defaults plus every plugin's section plus ``opts``, not frozen (handy in tests and notebooks)."""
    cfg = get_cfg_default()
    add_plugin_configs(cfg)
    merge_from_list(cfg, list(opts))
    check_cfg(cfg)
    return cfg


def setup_cfg(args: argparse.Namespace, method_sections: bool = True) -> CN:
    """The published ``train.py`` merge order, returning a frozen config. ``method_sections`` False: without the
    plugins' sections and the ``TRAINER.<METHOD>.*`` keys of files and overrides, which needs no plugin (and no
    torch): every other key, value and file is checked (``vlprompt.preflight``)."""
    cfg = get_cfg_default()
    if method_sections:
        add_plugin_configs(cfg)
    if getattr(args, "dataset_config_file", ""):
        merge_from_file(cfg, args.dataset_config_file, method_sections)
    if getattr(args, "config_file", ""):
        merge_from_file(cfg, args.config_file, method_sections)
    _apply_flags(cfg, args)
    opts = list(getattr(args, "opts", None) or [])
    if not method_sections:  # the plugins' keys wait for the plugins; an odd last item stays, to be reported
        pairs = list(zip(opts[0::2], opts[1::2]))
        opts = [x for k, v in pairs if not _method_key(k) for x in (k, v)] + opts[2 * len(pairs):]
    merge_from_list(cfg, opts)
    check_cfg(cfg)
    cfg.freeze()
    return cfg


def _method_key(key: str) -> bool:
    """``TRAINER.<METHOD>.<KEY>`` or ``DATASET.<READER>.<KEY>``: a key of a plugin's section."""
    parts = key.split(".")
    return len(parts) > 2 and parts[0] in ("TRAINER", "DATASET")


def check_cfg(cfg: CN) -> None:
    """Reject values no run can use, before any dataset or CLIP is loaded."""
    init = cfg.MODEL.INIT_WEIGHTS
    if init and not os.path.exists(init):
        raise ConfigError(f"MODEL.INIT_WEIGHTS {init}: no such file or folder; give a checkpoint file (e.g. "
                          "<run>/prompt_learner/model.pth.tar-<epoch>) or the output folder of a training run.")
    shots = cfg.DATASET.NUM_SHOTS
    if shots == 0 or shots < -1:
        raise ConfigError(f"DATASET.NUM_SHOTS must be -1 (all images) or >= 1, got {shots}. "
                          "Set DATASET.NUM_SHOTS 16 (or any K >= 1) for K-shot training, or -1 for the full set.")


def _apply_flags(cfg: CN, args: argparse.Namespace) -> None:
    flag_to_key: dict[str, str] = {
        "root": "DATASET.ROOT",
        "output_dir": "OUTPUT_DIR",
        "resume": "RESUME",
        "source_domains": "DATASET.SOURCE_DOMAINS",
        "target_domains": "DATASET.TARGET_DOMAINS",
        "transforms": "INPUT.TRANSFORMS",
        "trainer": "TRAINER.NAME",
        "backbone": "MODEL.BACKBONE.NAME",
        "head": "MODEL.HEAD.NAME",
    }
    for flag, key in flag_to_key.items():
        value: Any = getattr(args, flag, None)
        if value:  # empty strings mean "not given", as in the published train.py
            node, leaf = _node(cfg, key)
            node[leaf] = value
            check_no_effect(cfg, [key], f"the command line (--{flag.replace('_', '-')})")
    seed = getattr(args, "seed", None)
    if seed is not None:  # seed 0 is a seed
        cfg.SEED = seed
    if getattr(args, "no_feature_cache", False):
        cfg.MODEL.FEATURE_CACHE = False
    if getattr(args, "compile", False):
        cfg.MODEL.COMPILE = True


def _node(cfg: CN, key: str) -> tuple[CN, str]:
    *parents, leaf = key.split(".")
    node = cfg
    for p in parents:
        node = node[p]
    return node, leaf
