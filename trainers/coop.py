"""CoOp: Context Optimization.

Zhou et al., "Learning to Prompt for Vision-Language Models", IJCV 2022, arXiv 2109.01134.
Learnable context vectors replace the hand-written prompt words; the CLIP encoders stay frozen.

Published options: ``N_CTX``, ``CTX_INIT`` (its word count overrides N_CTX, as published), ``CSC``
(class-specific context), ``CLASS_TOKEN_POSITION`` (end / middle / front), ``PREC``.
Learnable parameter names follow the published code (``prompt_learner.ctx``), so published
checkpoints load. Differences: learnable context stays float32 under ``PREC fp16`` (see
``vlprompt.engine.precision``); image features are computed without autograd and the class text
features once per evaluation (same values, less work).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.prompts import ClassPrompts, cosine_logits, init_context
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.engine import Trainer
from vlprompt.registry import TRAINER_REGISTRY


class PromptLearner(nn.Module):
    """``ctx`` (``[n_ctx, D]`` or ``[n_cls, n_ctx, D]`` with CSC) spliced into every class prompt."""

    def __init__(self, cfg: CN, classnames: list[str], text_encoder: PromptedTextEncoder) -> None:
        super().__init__()
        c = cfg.TRAINER.COOP
        shape = (len(classnames),) if (c.CSC and not c.CTX_INIT) else ()
        ctx, prefix = init_context(text_encoder, c.N_CTX, c.CTX_INIT, shape)
        self.ctx = nn.Parameter(ctx)
        self.n_ctx = ctx.shape[-2]
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, self.n_ctx, c.CLASS_TOKEN_POSITION)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.prompts(self.ctx)


class CustomCLIP(nn.Module):
    """Frozen CLIP encoders + the prompt learner."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        super().__init__()
        self.text_encoder = PromptedTextEncoder(clip_model)
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.prompt_learner = PromptLearner(cfg, classnames, self.text_encoder)

    def text_features(self) -> Tensor:
        return self.text_encoder(*self.prompt_learner())

    def image_features(self, images: Tensor) -> Tensor:
        with torch.no_grad():  # the image tower is frozen and prompt-free
            return self.image_encoder(images)

    def forward(self, images: Tensor) -> Tensor:
        return cosine_logits(self.image_features(images).float(), self.text_features().float(), self.logit_scale)


@TRAINER_REGISTRY.register()
class CoOp(Trainer):
    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.COOP = CN()
        # Number of context vectors (ignored when CTX_INIT is given)
        cfg.TRAINER.COOP.N_CTX = 16
        # Class-specific context
        cfg.TRAINER.COOP.CSC = False
        # Words to initialise the context with, e.g. "a photo of a" ("" = random init)
        cfg.TRAINER.COOP.CTX_INIT = ""
        # fp16, fp32, amp or bf16
        cfg.TRAINER.COOP.PREC = "fp16"
        # Where the class name goes: end, middle or front
        cfg.TRAINER.COOP.CLASS_TOKEN_POSITION = "end"

    def build_model(self) -> nn.Module:
        clip_model = self.load_clip()
        self._text_features: Tensor | None = None
        return CustomCLIP(self.cfg, self.classnames, clip_model)

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner}

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        self._text_features = None  # the prompts are about to change
        logits = self.model(batch["img"])
        label = batch["label"]
        return {"loss": F.cross_entropy(logits, label),
                "acc": (logits.argmax(dim=1) == label).float().mean() * 100.0}

    def prepare_eval(self) -> None:
        self._text_features = self.model.text_features().float()

    def model_inference(self, images: Tensor) -> Tensor:
        if self._text_features is None:
            self.prepare_eval()
        return cosine_logits(self.model.image_features(images).float(), self._text_features, self.model.logit_scale)
