"""Zero-shot CLIP with the published per-dataset templates (ZeroshotCLIP) or a template ensemble (ZeroshotCLIP2).

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021.
Text features are computed once, at build time. Differences from the published code: PREC is
honoured (the published trainers always run in float16), and ZeroshotCLIP2 does not grow its
template list on every build (the published class attribute is appended to in place).
"""
from __future__ import annotations

import logging

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from vlprompt.clip.prompts import cosine_logits
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.tokens import CUSTOM_TEMPLATES, IMAGENET_TEMPLATES_SELECT, tokenize
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.engine import Trainer
from vlprompt.registry import TRAINER_REGISTRY

logger = logging.getLogger(__name__)


def zeroshot_text_features(encoder: PromptedTextEncoder, classnames: list[str], templates: list[str]) -> Tensor:
    """L2-normalised class features ``[n_cls, E]``: per template encode -> normalise, mean, normalise again
    (a single template is returned as is, normalised)."""
    total = 0.0
    with torch.no_grad():
        for template in templates:
            tokens = tokenize([template.format(c.replace("_", " ")) for c in classnames])
            tokens = tokens.to(encoder.token_embedding.weight.device)
            total = total + F.normalize(encoder.encode_tokens(tokens).float(), dim=-1)
    return F.normalize(total / len(templates), dim=-1)


class ZeroshotModel(nn.Module):
    def __init__(self, clip_model: nn.Module, text_features: Tensor) -> None:
        super().__init__()
        self.image_encoder = PromptedImageEncoder(clip_model)
        self.logit_scale = clip_model.logit_scale
        self.register_buffer("text_features", text_features)

    def forward(self, images: Tensor) -> Tensor:
        return cosine_logits(self.image_encoder(images).float(), self.text_features, self.logit_scale)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(Trainer):
    precision_node = "COOP"  # run with the CoOp configs, as the published zeroshot.sh

    @classmethod
    def templates_for(cls, dataset: str) -> list[str]:
        return [CUSTOM_TEMPLATES.get(dataset, "a photo of a {}.")]

    def build_model(self) -> nn.Module:
        clip_model = self.load_clip()
        encoder = PromptedTextEncoder(clip_model)
        templates = self.templates_for(self.cfg.DATASET.NAME)
        logger.info(f"Prompt templates (n={len(templates)}): {templates}")
        return ZeroshotModel(clip_model, zeroshot_text_features(encoder, self.classnames, templates))

    def model_inference(self, images: Tensor) -> Tensor:
        return self.model(images)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensemble: the 7 selected ImageNet templates plus the dataset's own (not for ImageNet)."""

    @classmethod
    def templates_for(cls, dataset: str) -> list[str]:
        extra = [] if dataset == "ImageNet" else super().templates_for(dataset)
        return IMAGENET_TEMPLATES_SELECT + extra
