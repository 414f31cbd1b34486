"""MetaProto, ours only (no published code): one meta-training iteration, and CoOp's eval.

The train step is one meta-batch of the trainer's own episodic loader (``build_train_loader``: META_BATCH 4
tasks of 5-way, 16 images per class, K_SHOT 2 support images) over a fake 16-shot training set of the bench's
classes; the bench takes the loader's first batch of indices and feeds random images with their labels.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from .common import Method, Setting, fake_train_items


class MetaProtoMethod(Method):
    key, title, trainer, node = "metaproto", "MetaProto", "MetaProto", "METAPROTO"
    N_WAY, K_SHOT, META_BATCH, PER_CLASS = 5, 2, 4, 16

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32", N_WAY=self.N_WAY, K_SHOT=self.K_SHOT,
                    META_BATCH=self.META_BATCH, IMAGES_PER_CLASS=self.PER_CLASS)

    def ours_setup(self, s: Setting) -> Callable[[Any], None]:
        if s.classes < self.N_WAY:
            raise SystemExit(f"MetaProto: {self.N_WAY}-way tasks need --classes >= {self.N_WAY}")
        labels = [c for c in range(s.classes) for _ in range(self.PER_CLASS)]  # a 16-shot train_x, class by class

        def setup(trainer: Any) -> None:  # the episodic loader reads the training items' labels
            trainer.dm = fake_train_items(labels)
        return setup

    def train_batch(self, s: Setting, gen: torch.Generator, ours: Any) -> dict[str, Tensor]:
        # the trainer's own loader (it also sets up what compute_loss reads); its sampler draws from torch's RNG
        loader = ours.build_train_loader()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(torch.randint(1 << 31, (), generator=gen)))
            keys = next(iter(loader.batch_sampler))  # task, then class, then image (supports first)
        indices = [k[0] if isinstance(k, tuple) else k for k in keys]  # (index, seed) with per-image seeds
        items = ours.dm.dataset.train_x
        labels = torch.tensor([items[i].label for i in indices])
        images = torch.randn(labels.numel(), 3, s.image_size, s.image_size, generator=gen)
        return {"img": images.to(s.device), "label": labels.to(s.device)}

    def train_label(self, s: Setting) -> str:
        n = self.META_BATCH * self.N_WAY * self.PER_CLASS
        return (f"meta-train iteration ({self.META_BATCH} tasks x {self.N_WAY}-way x {self.PER_CLASS} images, "
                f"K {self.K_SHOT}: {n} images)")
