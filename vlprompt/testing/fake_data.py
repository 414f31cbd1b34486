"""Synthetic dataset roots in the real on-disk layouts (tiny images, real class counts)."""
from __future__ import annotations

import json
import os
import random
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
