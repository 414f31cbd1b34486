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

from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import ContextPromptCLIP
from vlprompt.engine import Trainer
from vlprompt.registry import TRAINER_REGISTRY


class CustomCLIP(ContextPromptCLIP):
    """The published name: frozen CLIP + ``prompt_learner`` configured by ``cfg.TRAINER.COOP``."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        c = cfg.TRAINER.COOP
        super().__init__(clip_model, classnames, c.N_CTX, c.CTX_INIT, c.CSC, c.CLASS_TOKEN_POSITION)


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
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner}

    def precompute(self) -> Tensor:
        return self.model.text_features().float()

    def features_to_logits(self, features: Tensor) -> Tensor:
        return self.model.cosine_logits(features, self.precomputed)
