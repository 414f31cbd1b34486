"""Hand-crafted class text features of the frozen CLIP (zero-shot CLIP; the targets of KgCoOp and PromptSRC)."""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

from .text import PromptedTextEncoder
from .tokens import CUSTOM_TEMPLATES, IMAGENET_TEMPLATES_SELECT, tokenize


def dataset_template(dataset: str) -> str:
    """The published per-dataset template (CoOp's ``CUSTOM_TEMPLATES``; ``"a photo of a {}."`` otherwise)."""
    return CUSTOM_TEMPLATES.get(dataset, "a photo of a {}.")


def ensemble_templates(dataset: str, template: str = "") -> list[str]:
    """ZeroshotCLIP2's ensemble: the 7 selected ImageNet templates plus the dataset's own (not for ImageNet),
    or plus ``template`` when it is given."""
    own = [template] if template else [] if dataset == "ImageNet" else [dataset_template(dataset)]
    return IMAGENET_TEMPLATES_SELECT + own


def zeroshot_text_features(encoder: PromptedTextEncoder, classnames: list[str], templates: list[str]) -> Tensor:
    """L2-normalised class features ``[n_cls, E]``: per template encode -> normalise, mean, normalise again
    (a single template is returned as is, normalised). No gradients."""
    total = 0.0
    with torch.no_grad():
        for template in templates:
            tokens = tokenize([template.format(c.replace("_", " ")) for c in classnames])
            tokens = tokens.to(encoder.token_embedding.weight.device)
            total = total + F.normalize(encoder.encode_tokens(tokens).float(), dim=-1)
    return F.normalize(total / len(templates), dim=-1)
