"""Run identity and exclusive use of an output folder.

``OUT/run.json`` records what the folder holds (trainer, dataset, seed, shots, subsample, backbone, a hash
of every config key that changes results, mode, package version). Writing or resuming into a folder that
holds another run is an error naming both, unless ``--overwrite`` (which deletes the old run's
checkpoints, state and results; logs are kept). ``OUT/.lock`` is held (``flock``, released by the
kernel even on ``kill -9``) for the whole run, so a second run on the same folder fails at once.
"""
from __future__ import annotations

import datetime
import fcntl
import hashlib
import json
import logging
import os
import shutil
import socket
from typing import Any, Optional

from yacs.config import CfgNode

from vlprompt.errors import RunFolderError
from vlprompt.utils.files import atomic_write, folder_error, remove_temp_files

logger = logging.getLogger(__name__)
IDENTITY_FILE = "run.json"
LOCK_FILE = ".lock"
# keys that say where or how verbosely a run happens, not what it computes
OPERATIONAL_KEYS = ("OUTPUT_DIR", "RESUME", "DATASET.ROOT", "DATALOADER.NUM_WORKERS", "DATALOADER.SKIP_BAD_IMAGES",
                    "DATALOADER.CACHE_DECODED", "DATALOADER.CACHE_DECODED_MB", "DATALOADER.TEST.CACHE_MB",
                    "DATALOADER.TEST.BATCH_SIZE", "VERBOSE", "USE_CUDA", "TRAIN.PRINT_FREQ", "TRAIN.TENSORBOARD",
                    "TRAIN.MAX_PARAM_ABS", "MODEL.BACKBONE.CACHE_DIR", "TEST.PER_CLASS_RESULT",
                    "TEST.COMPUTE_CMAT", "MODEL.FEATURE_CACHE", "MODEL.FEATURE_CACHE_DIR", "MODEL.COMPILE")
SHOWN = ("mode", "trainer", "dataset", "seed", "shots", "subsample", "backbone", "config_hash", "model_dir",
         "load_epoch")
_held: dict[str, int] = {}  # folder -> fd of its lock, for the life of the process


def _flatten(node: CfgNode, prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in node.items():
        key = f"{prefix}{k}"
        out.update(_flatten(v, key + ".") if isinstance(v, CfgNode) else {key: v})
    return out


def result_config(cfg: CfgNode) -> dict[str, Any]:
    """Every config key that changes what a run computes, as JSON-able values."""
    flat = {k: v for k, v in _flatten(cfg).items() if k not in OPERATIONAL_KEYS}
    return json.loads(json.dumps(flat, sort_keys=True, default=str))


def config_hash(cfg: CfgNode) -> str:
    """SHA-256 (16 hex) of :func:`result_config`."""
    return hashlib.sha256(json.dumps(result_config(cfg), sort_keys=True).encode()).hexdigest()[:16]


def run_identity(cfg: CfgNode, eval_only: bool = False, model_dir: str = "",
                 load_epoch: Optional[int] = None) -> dict[str, Any]:
    from vlprompt import __version__

    ident = {"mode": "eval" if eval_only else "train", "trainer": cfg.TRAINER.NAME, "dataset": cfg.DATASET.NAME,
             "seed": cfg.SEED, "shots": cfg.DATASET.NUM_SHOTS, "subsample": cfg.DATASET.SUBSAMPLE_CLASSES,
             "backbone": cfg.MODEL.BACKBONE.NAME, "config_hash": config_hash(cfg)}
    if eval_only:
        ident.update(model_dir=os.path.abspath(model_dir) if model_dir else "", load_epoch=load_epoch)
    # how many processes ran it (torchrun); informative, not compared: any number continues the same run
    ident.update(version=__version__, processes=int(os.environ.get("WORLD_SIZE", "1")), config=result_config(cfg))
    return ident


def describe(ident: dict[str, Any]) -> str:
    return ", ".join(f"{k} {ident[k]}" for k in SHOWN if k in ident)


def differences(held: dict[str, Any], ours: dict[str, Any]) -> list[str]:
    """``"key held vs ours"`` for each identity field and each config key that differs."""
    diff = [f"{k} {held.get(k)!r} vs {ours.get(k)!r}" for k in SHOWN if k != "config_hash"
            and (k in held or k in ours) and held.get(k) != ours.get(k)]
    a, b = held.get("config", {}), ours.get("config", {})
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    diff += [f"{k} {a.get(k, '(absent)')!r} vs {b.get(k, '(absent)')!r}" for k in keys[:8]]
    if len(keys) > 8:
        diff.append(f"and {len(keys) - 8} more config key(s)")
    if held.get("config_hash") != ours.get("config_hash") and not keys:
        diff.append(f"config_hash {held.get('config_hash')} vs {ours.get('config_hash')}")
    return diff


def read_identity(folder: str) -> Optional[dict[str, Any]]:
    """The folder's run.json; for a folder written before run.json existed, what its results.json says."""
    for name in (IDENTITY_FILE, "results.json"):
        path = os.path.join(folder, name)
        if os.path.isfile(path):
            try:
                with open(path) as f:
                    data = json.load(f)
            except (OSError, ValueError):
                raise RunFolderError(f"{path} is unreadable; delete it if the folder holds no run you want to keep, "
                                     "or use another --output-dir.") from None
            if name == IDENTITY_FILE:
                return data
            return {"trainer": data.get("trainer"), "dataset": data.get("dataset"), "seed": data.get("seed"),
                    "subsample": data.get("subsample"), "legacy": True}
    return None


def check_same_run(folder: str, ours: dict[str, Any], what: str) -> None:
    held = read_identity(folder)
    if held is None:
        return
    if held.get("legacy"):
        diff = [f"{k} {held[k]!r} vs {ours.get(k)!r}" for k in ("trainer", "dataset", "seed", "subsample")
                if held[k] is not None and held[k] != ours.get(k)]
    else:
        diff = differences(held, ours)
    if diff:
        raise RunFolderError(
            f"{what} {folder} holds another run ({describe(held)}), not this one ({describe(ours)}); they differ "
            f"in: {'; '.join(diff)}. Use another --output-dir, or add --overwrite to delete that run's checkpoints "
            "and results and start this one there.")
    if not held.get("legacy") and held.get("version") != ours.get("version"):
        logger.warning(f"{folder} was written by vlprompt {held.get('version')}; this is {ours.get('version')}")


def acquire_lock(folder: str) -> None:
    """Hold ``folder/.lock`` until the process ends; fail at once if another process holds it."""
    if folder in _held:
        return
    path = os.path.join(folder, LOCK_FILE)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise folder_error(path, e) from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.pread(fd, 512, 0).decode(errors="replace").strip() or "another process"
        os.close(fd)
        raise RunFolderError(f"output folder {folder} is in use by {holder}; wait for that run to end, or use "
                             "another --output-dir.") from None
    stamp = datetime.datetime.now().isoformat(timespec="seconds")
    os.ftruncate(fd, 0)
    os.pwrite(fd, f"pid {os.getpid()} on host {socket.gethostname()} (since {stamp})\n".encode(), 0)
    _held[folder] = fd


def release_lock(folder: str) -> None:
    fd = _held.pop(folder, None)
    if fd is not None:
        os.close(fd)


def is_checkpoint_dir(path: str) -> bool:
    """``path`` is a module folder of Dassl checkpoints (a ``checkpoint`` pointer or ``model*`` files)."""
    return os.path.isdir(path) and (os.path.isfile(os.path.join(path, "checkpoint"))
                                    or any(f.startswith("model") for f in os.listdir(path)))


def saved_work(folder: str) -> list[str]:
    """What a run saved in ``folder`` that another run must not mix with: results, run state, checkpoints."""
    return [e for e in sorted(os.listdir(folder)) if e in ("results.json", "run_state")
            or is_checkpoint_dir(os.path.join(folder, e))]


def remove_run(folder: str) -> None:
    """``--overwrite``: delete what a run saved in ``folder`` (checkpoints, run state, results, TensorBoard
    events, run.json); the logs stay."""
    for entry in saved_work(folder) + ["tensorboard", IDENTITY_FILE]:
        path = os.path.join(folder, entry)
        if os.path.isdir(path):
            shutil.rmtree(path)
        elif os.path.exists(path):
            os.remove(path)
    logger.info(f"--overwrite: removed the previous run's checkpoints and results from {folder}")


def open_run_folder(cfg: CfgNode, identity: dict[str, Any], overwrite: bool = False) -> None:
    """Claim ``cfg.OUTPUT_DIR`` for this run: writable, locked, holding this run (or nothing), no temp files;
    ``cfg.RESUME`` must exist and hold this run. Called before anything is written there (even the log)."""
    folder = cfg.OUTPUT_DIR
    resume = cfg.RESUME
    if resume:
        if not os.path.isdir(resume):
            raise RunFolderError(f"--resume {resume}: no such folder; give the --output-dir of the run to resume "
                                 "(re-running the same command resumes its own --output-dir).")
        if os.path.abspath(resume) != os.path.abspath(folder or "."):
            check_same_run(resume, identity, "--resume folder")
    if not folder:
        return
    try:
        os.makedirs(folder, exist_ok=True)
    except OSError as e:
        raise folder_error(folder, e, "create the output folder") from None
    acquire_lock(folder)
    if overwrite:
        remove_run(folder)
    elif saved_work(folder):  # a folder whose run saved nothing (it failed at start) is simply taken over
        check_same_run(folder, identity, "output folder")
    removed = remove_temp_files(folder)
    if removed:
        logger.info(f"Removed {len(removed)} temporary file(s) left by an interrupted save in {folder}")
    atomic_write(os.path.join(folder, IDENTITY_FILE), json.dumps(identity, indent=2) + "\n")
