"""Synthetic dataset roots in the real on-disk layouts (tiny images, real class counts)."""
from __future__ import annotations

import json
import os
import random
import sys
import zlib

from PIL import Image

# the 47 DTD classes, in the published label order
DTD_CLASSES = (
    "banded blotchy braided bubbly bumpy chequered cobwebbed cracked crosshatched crystalline dotted fibrous "
    "flecked freckled frilly gauzy grid grooved honeycombed interlaced knitted lacelike lined marbled matted "
    "meshed paisley perforated pitted pleated polka-dotted porous potholed scaly smeared spiralled sprinkled "
    "stained stratified striped studded swirly veined waffled woven wrinkled zigzagged"
).split()


def write_image(path: str, class_index: int, size: int = 40) -> None:
    """A small JPEG whose colour encodes the class (so a model can learn it) plus per-file noise."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    h = zlib.crc32(path.encode())
    rng = random.Random(h)
    hue = (class_index * 37) % 256
    base = (hue, (hue * 3 + 80) % 256, (255 - hue) % 256)
    img = Image.new("RGB", (size + h % 9, size + (h >> 4) % 9), base)
    px = img.load()
    for _ in range(40):
        x, y = rng.randrange(img.width), rng.randrange(img.height)
        px[x, y] = tuple((c + rng.randrange(-40, 40)) % 256 for c in base)
    img.save(path, format="JPEG", quality=90)


def make_dtd(root: str, images_per_class: int = 10, with_split: bool = True, seed: int = 0) -> str:
    """Write ``root/dtd/images/<class>/<class>_NNNN.jpg`` for all 47 classes and, if ``with_split``,
    ``root/dtd/split_zhou_DescribableTextures.json`` (50/20/30 per class). Returns the dataset folder."""
    folder = os.path.join(root, "dtd")
    rng = random.Random(seed)
    split: dict[str, list] = {"train": [], "val": [], "test": []}
    for label, name in enumerate(DTD_CLASSES):
        files = [f"{name}/{name}_{i:04d}.jpg" for i in range(1, images_per_class + 1)]
        for rel in files:
            write_image(os.path.join(folder, "images", rel), label)
        rng.shuffle(files)
        n_train, n_val = round(len(files) * 0.5), round(len(files) * 0.2)
        for key, part in (("train", files[:n_train]), ("val", files[n_train:n_train + n_val]),
                          ("test", files[n_train + n_val:])):
            split[key] += [[rel, label, name] for rel in part]
    if with_split:
        with open(os.path.join(folder, "split_zhou_DescribableTextures.json"), "w") as f:
            json.dump(split, f)
    return folder


def tiny_image(relpath: str) -> Image.Image:
    """An 8-15 px picture whose colour depends on its folder (the class) and its details on the file."""
    h = zlib.crc32(relpath.encode())
    hc = zlib.crc32(os.path.dirname(relpath).encode())
    base = (hc & 255, (hc >> 8) & 255, (hc >> 16) & 255)
    img = Image.new("RGB", (8 + h % 8, 8 + (h >> 3) % 8), base)
    px = img.load()
    for x in range(img.width):
        px[x, (x + h) % img.height] = ((h >> 8) & 255, (h >> 16) & 255, (h >> 24) & 255)
    return img


def build_roots(meta_dir: str, manifest_dir: str, out: str, only: list[str] | None = None,
                images: bool = True) -> list[str]:
    """Lay out synthetic dataset roots: copy every non-image file from ``meta_dir/<dataset_dir>/`` and write
    each image listed in ``manifest_dir/<dataset_dir>.txt.gz`` (paths relative to ``out``).
    ``images=False`` writes empty files (enough for the readers, which only list and read paths)."""
    import gzip
    import shutil

    names = sorted(d for d in os.listdir(meta_dir) if os.path.isdir(os.path.join(meta_dir, d)))
    names = [n for n in names if only is None or n in only]
    for name in names:
        shutil.copytree(os.path.join(meta_dir, name), os.path.join(out, name), dirs_exist_ok=True)
        manifest = os.path.join(manifest_dir, f"{name}.txt.gz")
        if not os.path.isfile(manifest):
            continue
        with gzip.open(manifest, "rt", encoding="utf-8") as f:
            relpaths = [line.strip() for line in f if line.strip()]
        for rel in relpaths:
            path = os.path.join(out, rel)
            os.makedirs(os.path.dirname(path), exist_ok=True)
            if images:
                tiny_image(rel).save(path, format="PNG" if rel.lower().endswith(".png") else "JPEG", quality=90)
            else:
                open(path, "wb").close()
    return names


ROOTS = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "tests", "data",
                     "roots")


def dataset_folders() -> dict[str, str]:
    """``{dataset config name (dtd, imagenet_a, ...): its folder under the root (dtd, imagenet-adversarial)}`` for
    every ``configs/datasets/*.yaml`` whose reader is registered and has a fixed folder (not ``image_folder``)."""
    import yaml

    from vlprompt import plugins
    from vlprompt.registry import DATASET_REGISTRY

    plugins.load()
    folders = {}
    configs = os.path.join(str(plugins.REPO_ROOT), "configs", "datasets")
    for name in sorted(f[:-5] for f in os.listdir(configs) if f.endswith(".yaml")):
        with open(os.path.join(configs, f"{name}.yaml")) as f:
            reader = (yaml.safe_load(f) or {}).get("DATASET", {}).get("NAME", "")
        if reader in DATASET_REGISTRY.names() and DATASET_REGISTRY.get(reader).dataset_dir:
            folders[name] = DATASET_REGISTRY.get(reader).dataset_dir  # not ImageFolder: your own data, no layout
    return folders


def main(argv: list[str] | None = None) -> int:
    """``python -m vlprompt.testing.fake_data --dataset dtd [...] --out DIR``: small synthetic datasets in the real
    layouts (every class, a few tiny images each, the published split files), for a dry run without data."""
    import argparse

    from vlprompt.errors import ConfigError, user_message

    ap = argparse.ArgumentParser(prog="python -m vlprompt.testing.fake_data",
                                 description="Small synthetic datasets in the real layouts, for a dry run without "
                                             "data (random tiny images: numbers are meaningless).")
    ap.add_argument("--dataset", nargs="+", required=True, metavar="NAME",
                    help="names of configs/datasets/*.yaml (dtd, oxford_pets, imagenet_a, ...) or 'all'")
    ap.add_argument("--out", required=True, help="the dataset root to write (pass it as DATA or --root)")
    args = ap.parse_args(argv)
    folders = dataset_folders()
    names = list(folders) if "all" in args.dataset else args.dataset
    try:
        wrong = [n for n in names if n not in folders]
        if wrong:
            import difflib

            near = difflib.get_close_matches(wrong[0], list(folders), n=1)
            raise ConfigError(f"unknown dataset '{wrong[0]}'{f' (did you mean {near[0]}?)' if near else ''}; "
                              f"pass --dataset as some of: {', '.join(folders)} or all")
        if not os.path.isdir(ROOTS):
            raise ConfigError(f"{ROOTS} is missing: the synthetic layouts come with the repository's tests/ "
                              "folder; install from a clone (pip install -e .)")
    except ConfigError as e:
        print(f"Error: {user_message(e)}", file=sys.stderr)
        return 2
    build_roots(os.path.join(ROOTS, "meta"), os.path.join(ROOTS, "manifests"), args.out,
                only=sorted({folders[n] for n in names}))
    for n in names:
        print(f"{n}: {os.path.join(os.path.abspath(args.out), folders[n])}")
    print(f"Pass the root as DATA={os.path.abspath(args.out)} (scripts) or --root (train.py).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
