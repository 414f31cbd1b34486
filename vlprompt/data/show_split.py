"""Show the lists a run would use (few-shot picks, base/new classes), or write them as JSON to diff.

    python -m vlprompt.data.show_split --root DATA --dataset-config-file configs/datasets/dtd.yaml --seed 1 \
        DATASET.NUM_SHOTS 16 DATASET.SUBSAMPLE_CLASSES base [--json split.json]

JSON: ``{"classnames": [...], "train_x": [[impath relative to DATASET.ROOT, label, classname], ...],
"val": [...], "test": [...]}`` (the format of the published-code goldens).
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from typing import Optional, Sequence

from vlprompt import plugins
from vlprompt.config import setup_cfg
from vlprompt.data.dataset_base import DatasetBase
from vlprompt.registry import DATASET_REGISTRY


def split_lists(dataset: DatasetBase, root: str) -> dict:
    rows = lambda items: [[os.path.relpath(d.impath, root), d.label, d.classname] for d in items]  # noqa: E731
    return {"classnames": dataset.classnames, "train_x": rows(dataset.train_x), "val": rows(dataset.val),
            "test": rows(dataset.test)}


def summary(dataset: DatasetBase, name: str) -> str:
    rows = [("dataset", name), ("classes", len(dataset.classnames)), ("train_x", len(dataset.train_x)),
            ("val", len(dataset.val)), ("test", len(dataset.test))]
    per_class = {}
    for d in dataset.train_x:
        per_class[d.label] = per_class.get(d.label, 0) + 1
    if per_class:
        rows.append(("train_x per class", f"{min(per_class.values())}-{max(per_class.values())}"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"{k:<{width}}  {v}" for k, v in rows) + "\n"


def main(argv: Optional[Sequence[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", required=True, help="folder holding the datasets (DATASET.ROOT)")
    ap.add_argument("--dataset-config-file", required=True, help="configs/datasets/<name>.yaml")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", default="", help="write the lists here instead of printing a summary")
    ap.add_argument("opts", nargs="*", help="KEY VALUE overrides (DATASET.NUM_SHOTS 16 ...); flags may follow them")
    args = ap.parse_intermixed_args(argv)
    plugins.load()
    cfg = setup_cfg(argparse.Namespace(root=args.root, dataset_config_file=args.dataset_config_file,
                                       seed=args.seed, opts=args.opts))
    dataset = DATASET_REGISTRY.get(cfg.DATASET.NAME)(cfg)
    root = os.path.abspath(os.path.expanduser(cfg.DATASET.ROOT))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(split_lists(dataset, root), f)
        print(f"Wrote {args.json}")
    else:
        sys.stdout.write(summary(dataset, cfg.DATASET.NAME))
    return 0


if __name__ == "__main__":
    sys.exit(main())
