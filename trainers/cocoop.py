"""CoCoOp: Conditional Context Optimization.

Zhou et al., "Conditional Prompt Learning for Vision-Language Models", CVPR 2022, arXiv 2203.05557.
CoOp's context vectors are shifted per image by a light meta-network of the image feature, so every
image gets its own class prompts (B x n_cls text sequences per batch).

Published options: ``N_CTX``, ``CTX_INIT`` (its word count overrides N_CTX), ``PREC``. Parameter names
follow the published code (``prompt_learner.ctx``, ``prompt_learner.meta_net.linear1/linear2``) so its
checkpoints load. Differences: the meta-network and context stay float32 under ``PREC fp16``; the
B x n_cls prompts of a batch go through the text encoder together (EOT-truncated), in chunks of
``TRAINER.COCOOP.MAX_TEXT_BATCH`` sequences, instead of one image at a time.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.prompts import ClassPrompts, init_context
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.engine import Trainer
from vlprompt.registry import TRAINER_REGISTRY


class PromptLearner(nn.Module):
    """``ctx`` ``[n_ctx, D]`` plus ``meta_net`` (E -> E/16 -> D) mapping an image feature to a context shift."""

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: list[str], n_ctx: int, ctx_init: str,
                 vis_dim: int) -> None:
        super().__init__()
        ctx, prefix = init_context(text_encoder, n_ctx, ctx_init)
        self.ctx = nn.Parameter(ctx)
        width = text_encoder.width
        self.meta_net = nn.Sequential(OrderedDict([
            ("linear1", nn.Linear(vis_dim, vis_dim // 16)),
            ("relu", nn.ReLU(inplace=True)),
            ("linear2", nn.Linear(vis_dim // 16, width)),
        ]))
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, ctx.shape[0])

    def forward(self, image_features: Tensor) -> tuple[Tensor, Tensor]:
        """``image_features`` ``[B, E]`` (normalised) -> prompt embeddings ``[B, n_cls, L, D]`` and EOT ``[n_cls]``."""
        shift = self.meta_net(image_features.to(self.ctx.dtype))  # [B, D]
        ctx = self.ctx.unsqueeze(0) + shift.unsqueeze(1)  # [B, n_ctx, D]
        n_cls = self.prompts.eot_index.shape[0]
        return self.prompts(ctx.unsqueeze(1).expand(-1, n_cls, -1, -1))


class CustomCLIP(PromptedCLIP):
    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        super().__init__(clip_model)
        c = cfg.TRAINER.COCOOP
        self.prompt_learner = PromptLearner(self.text_encoder, classnames, c.N_CTX, c.CTX_INIT, self.embed_dim)
        self.max_text_batch = cfg.TRAINER.COCOOP.MAX_TEXT_BATCH

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, n_cls]``: each image against its own conditioned class prompts."""
        return self.logits_of_features(self.frozen_image_features(images))

    def logits_of_features(self, image_features: Tensor) -> Tensor:
        """Logits ``[B, n_cls]`` of the frozen tower's image features ``[B, E]`` (they condition the prompts and
        are scored against them)."""
        image_features = F.normalize(image_features.float(), dim=-1)
        n_cls = self.prompt_learner.prompts.eot_index.shape[0]
        step = max(1, self.max_text_batch // n_cls)
        logits = []
        for feats in image_features.split(step):
            embeddings, eot = self.prompt_learner(feats)  # [b, n_cls, L, D]
            b = embeddings.shape[0]
            text = self.text_encoder(embeddings.flatten(0, 1), eot.repeat(b)).float().view(b, n_cls, -1)
            text = F.normalize(text, dim=-1)
            logits.append(torch.einsum("be,bce->bc", feats, text))
        return self.logit_scale.exp() * torch.cat(logits)


@TRAINER_REGISTRY.register()
class CoCoOp(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.COCOOP = CN()
        # Number of context vectors (ignored when CTX_INIT is given)
        cfg.TRAINER.COCOOP.N_CTX = 16
        # Words to initialise the context with ("" = random init)
        cfg.TRAINER.COCOOP.CTX_INIT = ""
        # fp16, fp32, amp or bf16
        cfg.TRAINER.COCOOP.PREC = "fp16"
        # Most text sequences (images x classes) encoded at once; bounds memory for many classes
        cfg.TRAINER.COCOOP.MAX_TEXT_BATCH = 8192

    def build_model(self) -> nn.Module:
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner}

    def features_to_logits(self, features: Tensor) -> Tensor:
        return self.model.logits_of_features(features)
