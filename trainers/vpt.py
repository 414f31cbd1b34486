"""VPT: deep Visual Prompt Tuning on CLIP's image encoder, with fixed hand-written class prompts.

Jia et al., "Visual Prompt Tuning", ECCV 2022, arXiv 2203.12119, as the vision-only baseline of
"MaPLe: Multi-modal Prompt Learning" (Khattak et al., CVPR 2023; published as ``trainers/vpt.py`` with the
MaPLe code). Learnable tokens are appended to the image tokens at layer 0 and replace them at blocks
``1 .. PROMPT_DEPTH_VISION-1``; the text side is the frozen features of ``"<CTX_INIT> <class name>."``.

Published options: ``N_CTX_VISION``, ``CTX_INIT``, ``PREC``, ``PROMPT_DEPTH_VISION`` (defaults of the published
train.py). Checkpoints go to ``prompt_learner/`` with the published keys (``image_encoder.VPT``,
``image_encoder.transformer.resblocks.<l>.VPT_shallow``); published checkpoints hold the whole model, whose
frozen keys are ignored with a logged note.

Differences (choices): the published code always writes ``"a photo of a <name>."`` and never reads
``CTX_INIT``; here ``CTX_INIT`` is that phrase (same default, so the published config gives the same prompts).
No ``.half()`` casts of the prompts (clean float32); widths from the loaded model; a depth above the layer
count is clipped to it; the initial random values are not seed-for-seed the published ones.
"""
from __future__ import annotations

from typing import Optional

import torch
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.deep_prompts import vision_prompts
from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.prompts import cosine_logits
from vlprompt.clip.tokens import tokenize
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.engine import Trainer
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY


class VisionPrompts(nn.Module):
    """The learnable part: the vision prompts (saved under the published keys ``image_encoder.*``)."""

    def __init__(self, image_encoder: PromptedImageEncoder, n_ctx: int, depth: int, backbone: str = "") -> None:
        super().__init__()
        if depth < 1 or n_ctx < 1:
            raise ConfigError(f"TRAINER.VPT.PROMPT_DEPTH_VISION and N_CTX_VISION must be >= 1, got {depth} and "
                              f"{n_ctx}. Set both to 1 or more.")
        self.vision = vision_prompts(image_encoder, n_ctx, depth, "TRAINER.VPT.PROMPT_DEPTH_VISION",
                                     f"VPT (MODEL.BACKBONE.NAME '{backbone}')")


class CustomCLIP(PromptedCLIP):
    """Frozen CLIP encoders, fixed class text features, learnable ``prompts`` (VisionPrompts)."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        super().__init__(clip_model)
        c = cfg.TRAINER.VPT
        self.prompts = VisionPrompts(self.image_encoder, c.N_CTX_VISION, c.PROMPT_DEPTH_VISION,
                                     cfg.MODEL.BACKBONE.NAME)
        phrase = (cfg.TRAINER.VPT.CTX_INIT or "a photo of a").replace("_", " ")
        texts = [f"{phrase} {name.replace('_', ' ')}." for name in classnames]
        self.register_buffer("tokens", tokenize(texts), persistent=False)
        self._text_features: Optional[Tensor] = None

    def text_features(self) -> Tensor:
        """``[n_cls, E]``, encoded once (on the model's device) and kept: the text side never changes."""
        if self._text_features is None or self._text_features.device != self.tokens.device:
            with torch.no_grad():
                self._text_features = self.text_encoder.encode_tokens(self.tokens).float()
        return self._text_features

    def image_features(self, images: Tensor) -> Tensor:
        vision = self.prompts.vision
        return self.image_encoder(images, vision.first(), vision.deep())

    def forward(self, images: Tensor) -> Tensor:
        return cosine_logits(self.image_features(images).float(), self.text_features(), self.logit_scale)


@TRAINER_REGISTRY.register()
class VPT(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    checkpoint_key_map = {"prompt_learner": [("vision.", "image_encoder.")]}
    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.VPT = CN()
        # Number of prompt tokens per layer in the vision branch
        cfg.TRAINER.VPT.N_CTX_VISION = 2
        # The fixed text prompt before the class name (the published code always uses "a photo of a")
        cfg.TRAINER.VPT.CTX_INIT = "a photo of a"
        # fp16, fp32, amp or bf16
        cfg.TRAINER.VPT.PREC = "fp16"
        # Prompted layers of the vision encoder (1 = input layer only, shallow VPT)
        cfg.TRAINER.VPT.PROMPT_DEPTH_VISION = 1

    def build_model(self) -> nn.Module:
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompts}
