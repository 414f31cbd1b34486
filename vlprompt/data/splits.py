"""Split json I/O, few-shot sampling and base/new class subsampling.

The picks equal the published readers' (Dassl ``generate_fewshot_dataset`` and the
``subsample_classes`` of CoOp/MaPLe) for the same seed: the published code draws from
the global ``random`` right after ``set_random_seed(seed)``, which is the same stream as
``random.Random(seed)`` here; we pass the generator explicitly instead of using global state.
"""
from __future__ import annotations

import json
import math
import os
import random
from dataclasses import replace
from typing import Sequence

from .datum import Datum
from vlprompt.errors import SplitFileError  # noqa: F401 (re-exported)


def read_split(path: str, image_dir: str) -> tuple[list[Datum], list[Datum], list[Datum]]:
    """Read a ``split_zhou_*.json`` file: ``{"train"|"val"|"test": [[relpath, label, classname], ...]}``.

    Paths in the file are relative to ``image_dir``.
    """
    try:
        with open(path, encoding="utf-8") as f:
            split = json.load(f)
    except json.JSONDecodeError as e:
        raise SplitFileError(f"Split file {path} is not valid JSON ({e}). Delete it to rebuild it, "
                             "or download it again (see docs/DATASETS.md).") from e
    if not isinstance(split, dict):
        raise SplitFileError(f"Split file {path} must hold a JSON object with keys train, val, test; "
                             f"got {type(split).__name__}.")
    missing = [k for k in ("train", "val", "test") if k not in split]
    if missing:
        raise SplitFileError(f"Split file {path} lacks the key(s) {missing}; it must have train, val and test.")

    def convert(key: str) -> list[Datum]:
        items = []
        for i, entry in enumerate(split[key]):
            try:
                impath, label, classname = entry
                label = int(label)  # the published reader accepts labels stored as strings too
                if not (isinstance(impath, str) and isinstance(classname, str)):
                    raise TypeError
            except (TypeError, ValueError):
                raise SplitFileError(f"Split file {path}: entry {key}[{i}] = {entry!r} is not "
                                     "[relative image path, integer label, class name].") from None
            items.append(Datum(impath=os.path.join(image_dir, impath), label=label, classname=classname))
        return items

    return convert("train"), convert("val"), convert("test")


def save_split(train: Sequence[Datum], val: Sequence[Datum], test: Sequence[Datum], path: str, image_dir: str) -> None:
    """Write a split json in the published format (paths relative to ``image_dir``), atomically."""
    def convert(items: Sequence[Datum]) -> list:
        prefix = image_dir.rstrip(os.sep) + os.sep
        return [[d.impath[len(prefix):] if d.impath.startswith(prefix) else d.impath, d.label, d.classname]
                for d in items]

    payload = {"train": convert(train), "val": convert(val), "test": convert(test)}
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(payload, f, indent=4, separators=(",", ": "))
    os.replace(tmp, path)


def _group_by_label(items: Sequence[Datum]) -> dict[int, list[Datum]]:
    groups: dict[int, list[Datum]] = {}
    for item in items:  # dicts keep first-appearance order, as the published defaultdict
        groups.setdefault(item.label, []).append(item)
    return groups


def generate_fewshot(items: Sequence[Datum], num_shots: int, rng: random.Random) -> list[Datum]:
    """Take ``num_shots`` random items per label (all of a label if it has fewer); -1 or 0 keeps everything."""
    if num_shots < 1:
        return list(items)
    out: list[Datum] = []
    for group in _group_by_label(items).values():
        out += rng.sample(group, num_shots) if len(group) >= num_shots else group
    return out


def subsample_classes(*splits: Sequence[Datum], subsample: str = "all") -> list[list[Datum]]:
    """Keep the base (first ceil(n/2) labels of the first split) or new classes, relabelled 0.. in order."""
    if subsample not in ("all", "base", "new"):
        raise ValueError(f"DATASET.SUBSAMPLE_CLASSES must be all, base or new; got '{subsample}'.")
    if subsample == "all":
        return [list(s) for s in splits]
    labels = sorted({d.label for d in splits[0]})
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabel = {y: i for i, y in enumerate(selected)}
    return [[replace(d, label=relabel[d.label]) for d in s if d.label in relabel] for s in splits]
