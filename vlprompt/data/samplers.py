"""Batch samplers beyond torch's random/sequential ones."""
from __future__ import annotations

import random
from typing import Iterator, Sequence

import torch
from torch.utils.data import Sampler

from vlprompt.errors import ConfigError


class EpisodicBatchSampler(Sampler[list[int]]):
    """N-way episodes for meta-training: each batch holds ``tasks`` tasks; a task picks ``n_way`` classes
    and ``per_class`` images of each, in a random order whose first ``k_shot`` are the support set.

    Index order of a batch: task-major, then class, then image (support first), so a batch of
    features reshapes to ``[tasks, n_way, per_class, ...]``. ``per_class`` defaults to the size of the
    smallest class (all 16 shots in a 16-shot set). Randomness is drawn from torch's RNG at the start of
    every epoch, so runs are reproducible for a seed, like torch's RandomSampler.
    """

    def __init__(self, labels: Sequence[int], n_way: int, k_shot: int, tasks: int, iterations: int,
                 per_class: int = -1) -> None:
        self.by_label: dict[int, list[int]] = {}
        for i, y in enumerate(labels):
            self.by_label.setdefault(int(y), []).append(i)
        smallest = min((len(v) for v in self.by_label.values()), default=0)
        self.per_class = smallest if per_class < 1 else per_class
        if n_way > len(self.by_label):
            raise ConfigError(f"{n_way}-way episodes need at least {n_way} classes; the training set has "
                              f"{len(self.by_label)}. Lower the method's N_WAY (e.g. TRAINER.METAPROTO.N_WAY).")
        if self.per_class > smallest:
            raise ConfigError(f"{self.per_class} images per class requested, but a class has only {smallest}. "
                              "Lower the method's IMAGES_PER_CLASS (-1 = the smallest class), or raise "
                              "DATASET.NUM_SHOTS.")
        if not 0 < k_shot < self.per_class:
            raise ConfigError(f"K-shot support {k_shot} must be at least 1 and leave queries among the "
                              f"{self.per_class} images per class. Set the method's K_SHOT (e.g. "
                              f"TRAINER.METAPROTO.K_SHOT) between 1 and {self.per_class - 1}, or raise "
                              "DATASET.NUM_SHOTS.")
        self.n_way, self.k_shot, self.tasks, self.iterations = n_way, k_shot, tasks, iterations

    def __len__(self) -> int:
        return self.iterations

    def __iter__(self) -> Iterator[list[int]]:
        rng = random.Random(int(torch.empty((), dtype=torch.int64).random_().item()))
        labels = sorted(self.by_label)
        for _ in range(self.iterations):
            batch: list[int] = []
            for _ in range(self.tasks):
                for y in rng.sample(labels, self.n_way):
                    batch += rng.sample(self.by_label[y], self.per_class)
            yield batch
