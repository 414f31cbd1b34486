"""Training batches split across processes, and per-image augmentation seeds.

A global batch is what one process would draw (same sampler, same RNG); rank ``r`` of ``W`` takes the
``r``-th contiguous slice of it, in whole units (an image, or an episode's task for episodic samplers).
With per-image seeds every image's augmentation is drawn from its own seed (a seed drawn once per epoch
from the global torch generator, plus the image's position in the epoch), so the augmentation an image
gets does not depend on which process or DataLoader worker loads it: a run then gives the same batches at
any world size and any ``DATALOADER.NUM_WORKERS``.
"""
from __future__ import annotations

from typing import Iterable, Iterator, Sized

import torch
from torch.utils.data import Sampler

from vlprompt.utils.distributed import shard_bounds

SEED_RANGE = 2 ** 63


class ShardedBatchSampler(Sampler[list]):
    """This rank's slice of each global batch of ``batches`` (lists of dataset indices).

    Items are dataset indices, or ``(index, seed)`` pairs with ``per_image_seeds`` (read by
    :class:`vlprompt.data.manager.DatasetWrapper`). ``unit``: indices that must stay on one rank (an
    episodic task); a global batch is split in whole units.
    """

    def __init__(self, batches: Iterable[list[int]], unit: int = 1, world: int = 1, rank: int = 0,
                 per_image_seeds: bool = False) -> None:
        self.batches, self.unit, self.world, self.rank = batches, unit, world, rank
        self.per_image_seeds = per_image_seeds

    def __len__(self) -> int:
        assert isinstance(self.batches, Sized)
        return len(self.batches)

    def __iter__(self) -> Iterator[list]:
        # drawn before the batches' own draws, identically on every rank
        epoch_seed = int(torch.empty((), dtype=torch.int64).random_().item()) if self.per_image_seeds else 0
        position = 0  # of the batch's first image in the epoch
        for batch in self.batches:
            start, stop = shard_bounds(len(batch) // self.unit, self.world, self.rank)
            first = start * self.unit
            keys: list = list(batch[first: stop * self.unit])
            if self.per_image_seeds:
                keys = [(index, (epoch_seed + position + first + j) % SEED_RANGE) for j, index in enumerate(keys)]
            position += len(batch)
            yield keys
