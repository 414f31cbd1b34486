"""IVLP: Independent Vision-Language Prompting (deep prompts in both encoders, not coupled).

The baseline of Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023, arXiv 2210.03117
(published as ``trainers/independentVL.py`` with the MaPLe code). Learnable text context at layer 0
(CoOp's ``end`` layout) and independent text prompts at blocks ``1 .. PROMPT_DEPTH_TEXT-1``; independent
vision prompts appended to the image tokens at layer 0 and replacing them at blocks ``1 .. PROMPT_DEPTH_VISION-1``.
``PROMPT_DEPTH_VISION 0`` gives deep language prompting only (the vision tower then stays prompt-free).

Published options: ``N_CTX_VISION``, ``N_CTX_TEXT``, ``CTX_INIT``, ``PREC``, ``PROMPT_DEPTH_VISION``,
``PROMPT_DEPTH_TEXT`` (defaults of the published train.py). ``CTX_INIT`` follows MaPLe's rule (with
``N_CTX_TEXT <= 4`` the first ``N_CTX_TEXT`` tokens of the phrase become the context and the prompt keeps the
whole phrase; above 4 the context starts random). Checkpoints go to ``VLPromptLearner/`` with the published
keys (``prompt_learner.ctx``, ``image_encoder.VPT``, ``image_encoder.transformer.resblocks.<l>.VPT_shallow``,
``text_encoder.transformer.resblocks.<l>.VPT_shallow``), so published checkpoints, which hold the whole
model, load (their frozen keys are ignored with a logged note).

Differences (choices): no ``.half()`` casts of the prompts (clean float32; learnable parameters stay float32
under ``PREC fp16``); widths from the loaded model; depths above a tower's layer count are clipped to it (as
the published blocks do); the initial random values are not seed-for-seed the published ones (the published
code draws them while building CLIP); text features are computed once per evaluation.
"""
from __future__ import annotations

from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.independent_prompts import (CHECKPOINT_FOLDER, PUBLISHED_KEYS, REBUILT_KEYS,
                                               IndependentPromptCLIP, independent_prompt_keys)
from vlprompt.engine import Trainer
from vlprompt.registry import TRAINER_REGISTRY


class CustomCLIP(IndependentPromptCLIP):
    """Frozen CLIP encoders + ``prompts`` (IndependentVLPrompts) configured by ``cfg.TRAINER.IVLP``."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        c = cfg.TRAINER.IVLP
        super().__init__(clip_model, classnames, c.N_CTX_TEXT, c.CTX_INIT, c.PROMPT_DEPTH_TEXT, c.N_CTX_VISION,
                         c.PROMPT_DEPTH_VISION, "TRAINER.IVLP", "IVLP", cfg.MODEL.BACKBONE.NAME)


@TRAINER_REGISTRY.register()
class IVLP(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    #: rebuilt from the class names (published checkpoints also hold the frozen CLIP: skipped with a note)
    ignored_checkpoint_keys = REBUILT_KEYS
    checkpoint_key_map = {CHECKPOINT_FOLDER: PUBLISHED_KEYS}

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.IVLP = independent_prompt_keys(n_ctx=2)

    def build_model(self) -> nn.Module:
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {CHECKPOINT_FOLDER: self.model.prompts}

    def precompute(self) -> Tensor:
        return self.model.text_features().float()

    def model_inference(self, images: Tensor) -> Tensor:
        return self.model.cosine_logits(self.model.image_features(images), self.precomputed)
