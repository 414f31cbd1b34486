"""Zero-shot CLIP with the published per-dataset templates (ZeroshotCLIP) or a template ensemble (ZeroshotCLIP2).

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021.
Text features are computed once, at build time. Differences from the published code: PREC is
honoured (the published trainers always run in float16), and ZeroshotCLIP2 does not grow its
template list on every build (the published class attribute is appended to in place).

``TRAINER.ZEROSHOT.TEMPLATE`` replaces the dataset's own template (ZeroshotCLIP: the only one; ZeroshotCLIP2: the
one added to the 7-template ensemble), e.g. ``"a photo of a {}."``, the prompt of the MetaProto paper's zero-shot
baseline. Empty (default): the published per-dataset template (``"{} texture."`` for DTD, ...).
"""
from __future__ import annotations

import logging

from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.zeroshot import dataset_template, ensemble_templates, zeroshot_text_features
from vlprompt.engine import Trainer
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY

logger = logging.getLogger(__name__)


class ZeroshotModel(PromptedCLIP):
    def __init__(self, clip_model: nn.Module, text_features: Tensor) -> None:
        super().__init__(clip_model)
        self.register_buffer("text_features", text_features)

    def forward(self, images: Tensor) -> Tensor:
        return self.cosine_logits(self.frozen_image_features(images), self.text_features)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP(Trainer):
    precision_node = "COOP"  # run with the CoOp configs, as the published zeroshot.sh
    learns_weights = False

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.ZEROSHOT = CN()
        # The dataset's template, one "{}" for the class name ("" = the published per-dataset template)
        cfg.TRAINER.ZEROSHOT.TEMPLATE = ""

    @classmethod
    def templates_for(cls, dataset: str, template: str = "") -> list[str]:
        """The prompt templates for ``dataset``; ``template`` (if given) replaces the dataset's own."""
        return [template or dataset_template(dataset)]

    def build_model(self) -> nn.Module:
        clip_model = self.load_clip()
        encoder = PromptedTextEncoder(clip_model)
        template = self.cfg.TRAINER.ZEROSHOT.TEMPLATE
        if template and template.count("{}") != 1:
            raise ConfigError(f"TRAINER.ZEROSHOT.TEMPLATE '{template}' must hold exactly one {{}} for the class "
                              "name, e.g. 'a photo of a {}.'")
        templates = self.templates_for(self.cfg.DATASET.NAME, template)
        logger.info(f"Prompt templates (n={len(templates)}): {templates}")
        return ZeroshotModel(clip_model, zeroshot_text_features(encoder, self.classnames, templates))

    def features_to_logits(self, features: Tensor) -> Tensor:
        return self.model.cosine_logits(features, self.model.text_features)


@TRAINER_REGISTRY.register()
class ZeroshotCLIP2(ZeroshotCLIP):
    """Prompt ensemble: the 7 selected ImageNet templates plus the dataset's own (not for ImageNet)."""

    @classmethod
    def templates_for(cls, dataset: str, template: str = "") -> list[str]:
        return ensemble_templates(dataset, template)
