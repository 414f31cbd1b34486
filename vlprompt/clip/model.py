"""PromptedCLIP: the frozen CLIP every prompt-learning method starts from."""
from __future__ import annotations

from typing import Sequence

import torch
from torch import Tensor, nn

from .prompts import ContextPromptLearner, cosine_logits
from .text import PromptedTextEncoder
from .vision import PromptedImageEncoder


class PromptedCLIP(nn.Module):
    """CLIP's two promptable encoders (sharing, not copying, open_clip's frozen modules) and its logit scale,
    under the attribute names the published models use (``text_encoder``, ``image_encoder``,
    ``logit_scale``), so that a method's model subclasses it and adds only its prompts."""

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.embed_dim: int = clip_model.visual.output_dim

    def frozen_image_features(self, images: Tensor) -> Tensor:
        """Features of the prompt-free, frozen image tower, without autograd (nothing there learns)."""
        with torch.no_grad():
            return self.image_encoder(images)

    def cosine_logits(self, image_features: Tensor, text_features: Tensor) -> Tensor:
        """``exp(logit_scale) * norm(image) @ norm(text).T`` in float32."""
        return cosine_logits(image_features.float(), text_features.float(), self.logit_scale)


class ContextPromptCLIP(PromptedCLIP):
    """PromptedCLIP + a ContextPromptLearner (CoOp's image-independent class prompts).

    ``text_features()`` depends only on the prompts (a trainer's ``precompute`` for evaluation); images go
    through the frozen, prompt-free image tower.
    """

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], n_ctx: int, ctx_init: str = "",
                 csc: bool = False, position: str = "end") -> None:
        super().__init__(clip_model)
        self.prompt_learner = ContextPromptLearner(self.text_encoder, classnames, n_ctx, ctx_init, csc, position)

    def text_features(self) -> Tensor:
        return self.text_encoder.forward_shared(*self.prompt_learner())

    def logits_with(self, text_features: Tensor, images: Tensor) -> Tensor:
        """Logits of ``images`` against given (e.g. precomputed) class text features."""
        return self.cosine_logits(self.frozen_image_features(images), text_features)

    def forward(self, images: Tensor) -> Tensor:
        return self.logits_with(self.text_features(), images)
