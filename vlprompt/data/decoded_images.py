"""Training images decoded once (``DATALOADER.CACHE_DECODED``): the RGB pixels of each image file, kept in memory.

Few-shot training reads the same few hundred images every epoch, and decoding them (JPEG -> RGB) is a large part
of a step at the small class counts of most datasets. With the cache, the images are decoded once, up front (in
threads: PIL releases the GIL while it decodes), and every epoch's augmentations run on the kept pixels. A kept
image is the same ``PIL.Image`` (mode RGB, same pixels) that decoding the file gives, so every crop, flip and
jitter is the same for the same seed: training is bit-identical with and without the cache.

The pixels are kept as numpy arrays, which DataLoader workers share with the main process (fork: copy-on-write
pages that nobody writes). ``DATALOADER.CACHE_DECODED_MB`` bounds the memory: images are kept in the order of the
training list until the next would pass the budget (its size read from the file's header, without decoding); the
rest are decoded every time, as without the cache. Unreadable files are not kept: reading them fails, or is
skipped, exactly as without the cache.
"""
from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Optional, Sequence

import numpy as np
from PIL import Image
from tqdm import tqdm

from .datum import Datum

logger = logging.getLogger(__name__)
MB = 1 << 20


def _header_bytes(path: str) -> Optional[int]:
    """The RGB size of the image at ``path`` from its header (no decoding); None if it cannot be opened."""
    try:
        with Image.open(path) as f:
            width, height = f.size
    except Exception:  # noqa: BLE001 (an unreadable file is left to the loader, which reports or skips it)
        return None
    return width * height * 3


def _decode(path: str) -> Optional[np.ndarray]:
    """The RGB pixels ``[H, W, 3]`` uint8 of the image at ``path``, as the loader decodes it; None if unreadable."""
    try:
        with Image.open(path) as f:
            pixels = np.asarray(f.convert("RGB"))
    except Exception:  # noqa: BLE001 (as above)
        return None
    pixels.flags.writeable = False
    return pixels


class DecodedImages:
    """The decoded pixels of (a budget's worth of) the images of ``items``, by file path.

    Args:
        items: the images to keep (e.g. a run's few-shot training set); a path listed twice is kept once.
        budget_mb: the most memory the pixels may take, in MiB.
        threads: decoding threads.
    """

    def __init__(self, items: Sequence[Datum], budget_mb: int, threads: int = 1) -> None:
        self.pixels: dict[str, np.ndarray] = {}
        paths = list(dict.fromkeys(d.impath for d in items))
        budget, chosen = budget_mb * MB, []
        with ThreadPoolExecutor(max(1, threads)) as pool:
            for path, size in zip(paths, pool.map(_header_bytes, paths)):
                if size is None:  # unreadable: left to the loader
                    continue
                if size > budget:  # keep a prefix of the list: later, smaller images are not squeezed in
                    break
                budget -= size
                chosen.append(path)
            decoded = pool.map(_decode, chosen)
            for path, pixels in tqdm(zip(chosen, decoded), total=len(chosen), desc="decoding training images",
                                     leave=False):
                if pixels is not None:
                    self.pixels[path] = pixels
        self.nbytes = sum(p.nbytes for p in self.pixels.values())
        logger.info(f"DATALOADER.CACHE_DECODED: {len(self.pixels):,} of {len(paths):,} training images decoded once "
                    f"and kept in memory ({self.nbytes / MB:,.1f} MiB)"
                    + (f"; {len(paths) - len(chosen):,} are read from disk every time (over DATALOADER."
                       f"CACHE_DECODED_MB {budget_mb}, or unreadable)" if len(chosen) < len(paths) else ""))

    def __len__(self) -> int:
        return len(self.pixels)

    def get(self, path: str) -> Optional[Image.Image]:
        """The image at ``path`` (mode RGB) if it is kept, else None."""
        pixels = self.pixels.get(path)
        return None if pixels is None else Image.fromarray(pixels)
