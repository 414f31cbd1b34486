"""InstancePrompt, ours only (no published code): one train step with 4 shots x classes instance prompts and a
batch of 32 images, and a full eval with the top-4 rule."""
from __future__ import annotations

from typing import Any, Callable

import torch
from torch import Tensor

from .common import Method, Setting, fake_train_items


class InstancePromptMethod(Method):
    key, title, trainer, node = "instanceprompt", "InstancePrompt", "InstancePrompt", "INSTANCEPROMPT"
    SHOTS = 4
    defaults = {"small": dict(train_batch=32), "full": dict(train_batch=32)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX_GLOBAL=4, CTX_INIT="a photo of a", N_CTX_INSTANCE=4, PICKS_PER_CLASS=2, TOPK=4,
                    PREC="fp32")

    def ours_setup(self, s: Setting) -> Callable[[Any], None]:
        labels = [c for c in range(s.classes) for _ in range(self.SHOTS)]  # a few-shot train_x, class by class

        def setup(trainer: Any) -> None:  # build_model reads the training items' labels
            trainer.dm = fake_train_items(labels)
        return setup

    def train_batch(self, s: Setting, gen: torch.Generator, ours: Any) -> dict[str, Tensor]:
        instance_labels = ours.model.prompt_learner.instance_labels.cpu()
        if s.train_batch > instance_labels.numel():
            raise SystemExit(f"InstancePrompt: --train-batch {s.train_batch} exceeds the {instance_labels.numel()} "
                             f"training images ({self.SHOTS} shots per class)")
        own = torch.randperm(instance_labels.numel(), generator=gen)[: s.train_batch]  # the loader's "index"
        images = torch.randn(own.numel(), 3, s.image_size, s.image_size, generator=gen)
        return {"img": images.to(s.device), "label": instance_labels[own].to(s.device), "index": own.to(s.device)}

    def train_label(self, s: Setting) -> str:
        return f"train step (batch {s.train_batch}, {self.SHOTS * s.classes} instance prompts)"
