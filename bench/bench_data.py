"""Data-side speed: building the lists of an ImageNet-size dataset, and loader throughput.

1. Reader / DataManager build time on a synthetic ImageNet root (``images/train|val/<wnid>/``, empty
   files: the readers only list folders and read paths) with realistic entry counts (default 1,281
   train images per class x 1000 classes = 1.28M, 50 val per class), for all classes (NUM_SHOTS -1),
   16 shots, and 16 shots + base classes.
2. Training-loader throughput (images/s) with the published CoOp transforms (random resized crop 224,
   bicubic, flip, normalize) on JPEGs of ImageNet's typical size (500x375), for several worker counts.

    python bench/bench_data.py --root /tmp/bench_imagenet            # creates the root once (a few minutes)
    python bench/bench_data.py --root /tmp/bench_imagenet --per-class 100 --workers 0 2 8
"""
from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from PIL import Image  # noqa: E402

from vlprompt import plugins  # noqa: E402
from vlprompt.config.setup import get_cfg  # noqa: E402
from vlprompt.data.manager import DataManager, build_loader  # noqa: E402
from vlprompt.data.transforms import build_transform  # noqa: E402
from vlprompt.registry import DATASET_REGISTRY  # noqa: E402


def make_imagenet(root: Path, per_class: int, val_per_class: int) -> None:
    folder = root / "imagenet"
    marker = folder / f".complete-{per_class}-{val_per_class}"
    if marker.exists():
        return
    (folder / "images").mkdir(parents=True, exist_ok=True)
    wnids = [f"n{10000000 + i:08d}" for i in range(1000)]
    (folder / "classnames.txt").write_text("".join(f"{w} class {i}\n" for i, w in enumerate(wnids)))
    t = time.time()
    for split, n in (("train", per_class), ("val", val_per_class)):
        for w in wnids:
            d = folder / "images" / split / w
            d.mkdir(parents=True, exist_ok=True)
            for j in range(n):
                (d / f"{w}_{j}.JPEG").touch()
    marker.touch()
    print(f"created {1000 * (per_class + val_per_class):,} empty files in {time.time() - t:.0f} s")


def time_reader(root: Path, opts: list[str]) -> tuple[float, float, int]:
    cfg = get_cfg(["DATASET.ROOT", str(root), "DATASET.NAME", "ImageNet", "SEED", "1",
                   "DATALOADER.NUM_WORKERS", "0"] + opts)
    t = time.time()
    ds = DATASET_REGISTRY.get("ImageNet")(cfg)
    t_reader = time.time() - t
    t = time.time()
    DataManager(cfg, dataset=ds)
    return t_reader, time.time() - t, len(ds.train_x)


def loader_throughput(tmp: Path, n_images: int, workers: list[int], batch: int) -> list[tuple[int, float]]:
    img_dir = tmp / "jpegs"
    img_dir.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n_images):
        p = img_dir / f"{i}.jpg"
        if not p.exists():
            Image.effect_noise((500, 375), 64).convert("RGB").save(p, quality=90)
        paths.append(str(p))
    from vlprompt.data.datum import Datum

    items = [Datum(impath=p, label=i % 10, classname=str(i % 10)) for i, p in enumerate(paths)]
    cfg = get_cfg(["INPUT.SIZE", "(224, 224)", "INPUT.INTERPOLATION", "bicubic",
                   "INPUT.TRANSFORMS", "('random_resized_crop', 'random_flip', 'normalize')"])
    tfm = build_transform(cfg, is_train=True)
    out = []
    for w in workers:
        loader = build_loader(items, tfm, batch, True, w)
        it = iter(loader)
        next(it)  # start the workers
        t, n = time.time(), 0
        for b in it:
            n += b["img"].shape[0]
        out.append((w, n / (time.time() - t)))
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--root", default="/tmp/bench_imagenet")
    ap.add_argument("--per-class", type=int, default=1281)
    ap.add_argument("--val-per-class", type=int, default=50)
    ap.add_argument("--workers", type=int, nargs="+", default=[0, 2, 8])
    ap.add_argument("--loader-images", type=int, default=512)
    ap.add_argument("--batch", type=int, default=32)
    args = ap.parse_args()
    plugins.load()
    root = Path(args.root)
    make_imagenet(root, args.per_class, args.val_per_class)
    print(f"cpu cores: {os.cpu_count()}")
    print(f"{'ImageNet setting':<28} | {'train_x':>9} | {'reader (s)':>10} | {'DataManager (s)':>15}")
    for label, opts in (("all images, all classes", []), ("16 shots, all classes", ["DATASET.NUM_SHOTS", "16"]),
                        ("16 shots, base classes", ["DATASET.NUM_SHOTS", "16", "DATASET.SUBSAMPLE_CLASSES", "base"])):
        t_reader, t_dm, n = time_reader(root, opts)
        print(f"{label:<28} | {n:>9,} | {t_reader:>10.2f} | {t_dm:>15.2f}")
    print(f"\nloader throughput, published train transforms, {args.loader_images} JPEGs of 500x375, batch {args.batch}:")
    for w, ips in loader_throughput(root, args.loader_images, args.workers, args.batch):
        print(f"  {w} workers: {ips:,.0f} images/s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
