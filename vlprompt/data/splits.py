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
from vlprompt.errors import ConfigError, SplitFileError


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

    train, val, test = convert("train"), convert("val"), convert("test")
    check_labels({"train": train, "val": val, "test": test}, f"Split file {path}",
                 "Fix or remove that entry, or delete the file to rebuild it from the dataset folders, or download "
                 "it again (see docs/DATASETS.md).", image_dir=image_dir)
    return train, val, test


def check_labels(lists: dict[str, Sequence[Datum]], source: str, fix: str, image_dir: str = "") -> None:
    """Raise a SplitFileError naming the first entry whose label or class name cannot be right.

    The train labels (the test labels when there is no train list) must be 0..n-1 without gaps, every
    val/test label must be one of them, and a label must have one class name everywhere. Errors show
    entries as ``[path relative to image_dir, label, classname]``, as in a split file.
    """
    def show(key: str, i: int) -> str:
        d = lists[key][i]
        path = os.path.relpath(d.impath, image_dir) if image_dir else d.impath
        return f"entry {key}[{i}] = {[path, d.label, d.classname]!r}"

    reference = "train" if lists.get("train") else "test"
    labels = {d.label for d in lists.get(reference, ())}
    n = len(labels)
    pairs = {(d.label, d.classname) for items in lists.values() for d in items}
    if labels == set(range(n)) and len(pairs) == n and {y for y, _ in pairs} == labels:
        return  # the common case, without the slower search for the first bad entry below
    for i, d in enumerate(lists.get(reference, ())):
        if not 0 <= d.label < n:
            gaps = sorted(set(range(n)) - labels)
            unused = f"; label(s) {gaps[:5]}{' ...' if len(gaps) > 5 else ''} have no {reference} entry" if gaps else ""
            raise SplitFileError(f"{source}: {show(reference, i)} has label {d.label}, out of range: the {n} distinct "
                                 f"labels of the {reference} list must be 0..{n - 1}{unused}. {fix}")
    names: dict[int, tuple[str, str]] = {}
    for key in ("train", "val", "test"):
        for i, d in enumerate(lists.get(key, ())):
            if d.label not in labels:
                raise SplitFileError(f"{source}: {show(key, i)} has label {d.label}, which no {reference} entry has "
                                     f"({reference} labels are 0..{n - 1}); every val/test label must be a "
                                     f"{reference} label. {fix}")
            first = names.setdefault(d.label, (d.classname, f"{key}[{i}]"))
            if first[0] != d.classname:
                raise SplitFileError(f"{source}: {show(key, i)} gives label {d.label} the class name '{d.classname}', "
                                     f"but entry {first[1]} names it '{first[0]}'; a label must have one class "
                                     f"name. {fix}")


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
        raise ConfigError(f"DATASET.SUBSAMPLE_CLASSES must be all, base or new; got '{subsample}'. "
                          "Set DATASET.SUBSAMPLE_CLASSES base (or new, or all).")
    if subsample == "all":
        return [list(s) for s in splits]
    labels = sorted({d.label for d in splits[0]})
    m = math.ceil(len(labels) / 2)
    selected = labels[:m] if subsample == "base" else labels[m:]
    relabel = {y: i for i, y in enumerate(selected)}
    return [[replace(d, label=relabel[d.label]) for d in s if d.label in relabel] for s in splits]
