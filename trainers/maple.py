"""MaPLe: Multi-modal Prompt Learning.

Khattak et al., "MaPLe: Multi-modal Prompt Learning", CVPR 2023, arXiv 2210.03117.
Learnable language context in the first J layers of the text encoder (``PROMPT_DEPTH`` = J); each layer's
text prompt is mapped by its own linear coupling function (text width -> vision width) to that layer's
vision prompt, so the two branches are prompted jointly. Both CLIP encoders stay frozen.

Layout (published): layer 0 splices ``ctx`` after SOS (CoOp's ``end`` layout) and appends
``proj(ctx)`` to the image tokens (after the positional embedding, before ``ln_pre``); block ``i+1``
(``i < J-1``) replaces those slots by ``compound_prompts_text[i]`` in the text tower and by
``compound_prompt_projections[i](compound_prompts_text[i])`` in the image tower.
``logits = exp(logit_scale) * cos(image, text)``.

Published options: ``N_CTX``, ``CTX_INIT``, ``PREC``, ``PROMPT_DEPTH`` (defaults of the published train.py).
Parameter names follow the published code (``prompt_learner.ctx``, ``.proj``, ``.compound_prompts_text.<i>``,
``.compound_prompt_projections.<i>``) and checkpoints go to ``MultiModalPromptLearner/`` as published, so
published checkpoints (which hold the whole model) load; their frozen keys are ignored with a logged note.

Published behaviour kept on purpose:
* ``CTX_INIT`` with ``N_CTX <= 4`` keeps ``N_CTX``: the context is the first ``N_CTX`` token embeddings of
  the phrase while the prompt text keeps the whole phrase (``N_CTX`` 2, ``"a photo of a"`` ->
  ``SOS [ctx ctx] of a <name>.``). With ``N_CTX > 4`` the phrase is ignored and the context is random.
  (A phrase with fewer tokens than ``N_CTX`` is refused: the published code would overwrite class-name tokens.)
* The compound projections start as copies of one Linear; the initial ``proj`` values are rounded to
  float16 (the published module is half precision). With the same seed the initial prompts equal the
  published ones (for ``PROMPT_DEPTH`` <= the backbone's layers).

Differences (choices):
* Clean float32: no ``.half()`` casts of the prompts inside the forward, and ``proj`` is a float32 module
  (the published ``PREC fp32`` crashes on its half ``proj``). Golden tests hold this implementation to the
  published code with the casts patched out (``nohalf``: logits 3e-5, loss 1e-5, grads 2e-5 x max|grad|)
  and to the published casts only loosely (1e-3, 3e-4, 2e-3 x max|grad|), since those round the prompts to
  float16. Learnable parameters stay float32 under ``PREC fp16`` (see ``vlprompt.engine.precision``).
* Widths come from the loaded model, so MaPLe runs on any open_clip ViT (the published code fixes 512/768).
* ``PROMPT_DEPTH`` above the number of layers of either tower is clipped to it with a warning.
* The text features and vision prompts are computed once per evaluation (images still pass the prompted
  image tower per batch).
"""
from __future__ import annotations

import copy
import logging
from typing import NamedTuple, Optional

import torch
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.deep_prompts import init_fixed_context, usable_depth
from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.prompts import ClassPrompts, cosine_logits
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.engine import Trainer
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY

logger = logging.getLogger(__name__)


class MaPLePrompts(NamedTuple):
    """What one prompt-learner forward gives the two encoders."""
    embeddings: Tensor  # [n_cls, L, D_text] class prompts with ctx spliced in
    eot_index: Tensor  # [n_cls]
    text_deep: list[Optional[Tensor]]  # [None, [n_ctx, D_text] x (J-1)]
    vision: Tensor  # [n_ctx, D_vision] layer-0 vision prompts
    vision_deep: list[Optional[Tensor]]  # [None, [n_ctx, D_vision] x (J-1)]


class MultiModalPromptLearner(nn.Module):
    """``ctx``, ``proj`` and the ``J-1`` compound text prompts with their coupling projections."""

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: list[str], n_ctx: int, ctx_init: str,
                 vision_width: int, depth: int) -> None:
        super().__init__()
        text_width = text_encoder.width
        # parameters are created in the published order, so a seed gives the published initial values
        ctx, prefix = init_fixed_context(text_encoder, n_ctx, ctx_init, key="TRAINER.MAPLE.N_CTX")
        self.ctx = nn.Parameter(ctx)
        self.proj = nn.Linear(text_width, vision_width)
        with torch.no_grad():
            for p in self.proj.parameters():
                p.copy_(p.half().float())  # the published proj is a half-precision module
        self.compound_prompts_text = nn.ParameterList(
            [nn.Parameter(torch.empty(n_ctx, text_width)) for _ in range(depth - 1)])
        for p in self.compound_prompts_text:
            nn.init.normal_(p, std=0.02)
        single = nn.Linear(text_width, vision_width)
        self.compound_prompt_projections = nn.ModuleList([copy.deepcopy(single) for _ in range(depth - 1)])
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, n_ctx)
        logger.info(f"MaPLe: {n_ctx} context tokens in the first {depth} layer(s) of both encoders")

    def forward(self) -> MaPLePrompts:
        embeddings, eot = self.prompts(self.ctx)
        vision_deep = [layer(p) for layer, p in zip(self.compound_prompt_projections, self.compound_prompts_text)]
        return MaPLePrompts(embeddings, eot, [None, *self.compound_prompts_text], self.proj(self.ctx),
                            [None, *vision_deep])


class CustomCLIP(PromptedCLIP):
    """Frozen CLIP encoders + the multi-modal prompt learner (published names)."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        super().__init__(clip_model)
        who = f"MaPLe (MODEL.BACKBONE.NAME '{cfg.MODEL.BACKBONE.NAME}')"
        vision_width = self.image_encoder.prompt_width(who)
        if cfg.TRAINER.MAPLE.PROMPT_DEPTH < 1:
            raise ConfigError(f"TRAINER.MAPLE.PROMPT_DEPTH must be >= 1 (1 = prompts at the input only), "
                              f"got {cfg.TRAINER.MAPLE.PROMPT_DEPTH}. Set e.g. TRAINER.MAPLE.PROMPT_DEPTH 9.")
        layers = min(self.text_encoder.layers, self.image_encoder.layers)
        depth = usable_depth(cfg.TRAINER.MAPLE.PROMPT_DEPTH, layers, "TRAINER.MAPLE.PROMPT_DEPTH")
        self.prompt_learner = MultiModalPromptLearner(self.text_encoder, classnames, cfg.TRAINER.MAPLE.N_CTX,
                                                      cfg.TRAINER.MAPLE.CTX_INIT, vision_width, depth)

    def text_features(self, p: MaPLePrompts) -> Tensor:
        return self.text_encoder.forward_shared(p.embeddings, p.eot_index, p.text_deep)

    def image_features(self, images: Tensor, p: MaPLePrompts) -> Tensor:
        # the vision prompts learn: no torch.no_grad() here, unlike the prompt-free image tower of CoOp
        return self.image_encoder(images, p.vision, p.vision_deep)

    def forward(self, images: Tensor) -> Tensor:
        """Logits ``[B, n_cls]``."""
        p = self.prompt_learner()
        return cosine_logits(self.image_features(images, p).float(), self.text_features(p).float(), self.logit_scale)


@TRAINER_REGISTRY.register()
class MaPLe(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    #: rebuilt from the class names; published checkpoints also hold the frozen image_encoder.*, text_encoder.*
    #: and logit_scale, which this model does not have: the loader skips those with a logged note
    ignored_checkpoint_keys = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")
    #: the published file holds the whole model: the prompt learner's keys start with "prompt_learner."
    checkpoint_key_map = {"MultiModalPromptLearner": [("", "prompt_learner.")]}

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.MAPLE = CN()
        # Number of context tokens per layer (text and vision)
        cfg.TRAINER.MAPLE.N_CTX = 2
        # Words to initialise the context with (used when N_CTX <= 4; N_CTX stays, see the docstring)
        cfg.TRAINER.MAPLE.CTX_INIT = "a photo of a"
        # fp16, fp32, amp or bf16
        cfg.TRAINER.MAPLE.PREC = "fp16"
        # Prompted layers J of both encoders (1 = input layer only, shallow MaPLe; at most the layer count)
        cfg.TRAINER.MAPLE.PROMPT_DEPTH = 9

    def build_model(self) -> nn.Module:
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"MultiModalPromptLearner": self.model.prompt_learner}

    def precompute(self) -> tuple[MaPLePrompts, Tensor]:
        p = self.model.prompt_learner()
        return p, self.model.text_features(p).float()

    def model_inference(self, images: Tensor) -> Tensor:
        p, text_features = self.precomputed
        return cosine_logits(self.model.image_features(images, p).float(), text_features, self.model.logit_scale)
