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

from vlprompt.clip.deep_prompts import BlockPrompts, init_fixed_context, usable_depth, vision_prompts
from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.prompts import ClassPrompts, cosine_logits
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.engine import Trainer
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY



class VLPromptLearner(nn.Module):
    """Layer-0 text context ``ctx`` spliced into the class prompts."""

    def __init__(self, cfg: CN, classnames: list[str], text_encoder: PromptedTextEncoder) -> None:
        super().__init__()
        c = cfg.TRAINER.IVLP
        ctx, prefix = init_fixed_context(text_encoder, c.N_CTX_TEXT, c.CTX_INIT, key="TRAINER.IVLP.N_CTX_TEXT")
        self.ctx = nn.Parameter(ctx)
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, c.N_CTX_TEXT)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.prompts(self.ctx)


class IndependentPrompts(nn.Module):
    """Every learnable tensor, laid out as the published checkpoint keys."""

    def __init__(self, cfg: CN, classnames: list[str], text_encoder: PromptedTextEncoder,
                 image_encoder: PromptedImageEncoder) -> None:
        super().__init__()
        c = cfg.TRAINER.IVLP
        if c.PROMPT_DEPTH_TEXT < 1:
            raise ConfigError(f"TRAINER.IVLP.PROMPT_DEPTH_TEXT must be >= 1, got {c.PROMPT_DEPTH_TEXT} "
                              "(use the VPT trainer to prompt the vision branch only).")
        if c.PROMPT_DEPTH_VISION < 0 or (c.PROMPT_DEPTH_VISION > 0 and c.N_CTX_VISION < 1):
            raise ConfigError(f"TRAINER.IVLP: PROMPT_DEPTH_VISION {c.PROMPT_DEPTH_VISION} with N_CTX_VISION "
                              f"{c.N_CTX_VISION}; set PROMPT_DEPTH_VISION 0 for no vision prompts, else "
                              "N_CTX_VISION >= 1.")
        self.prompt_learner = VLPromptLearner(cfg, classnames, text_encoder)
        depth = usable_depth(c.PROMPT_DEPTH_TEXT, text_encoder.layers, "TRAINER.IVLP.PROMPT_DEPTH_TEXT")
        self.text_encoder = BlockPrompts(c.N_CTX_TEXT, text_encoder.width, depth, "VPT_shallow")
        self.image_encoder = vision_prompts(
            image_encoder, c.N_CTX_VISION, c.PROMPT_DEPTH_VISION, "TRAINER.IVLP.PROMPT_DEPTH_VISION",
            f"IVLP with PROMPT_DEPTH_VISION {c.PROMPT_DEPTH_VISION} (MODEL.BACKBONE.NAME '{cfg.MODEL.BACKBONE.NAME}')")


class CustomCLIP(PromptedCLIP):
    """Frozen CLIP encoders + ``prompts`` (IndependentPrompts)."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        super().__init__(clip_model)
        self.prompts = IndependentPrompts(cfg, classnames, self.text_encoder, self.image_encoder)

    def text_features(self) -> Tensor:
        embeddings, eot = self.prompts.prompt_learner()
        return self.text_encoder.forward_shared(embeddings, eot, self.prompts.text_encoder.deep())

    def image_features(self, images: Tensor) -> Tensor:
        vision = self.prompts.image_encoder
        if vision.first() is None:  # language-only prompting: a frozen, prompt-free image tower
            return self.frozen_image_features(images)
        return self.image_encoder(images, vision.first(), vision.deep())

    def forward(self, images: Tensor) -> Tensor:
        return cosine_logits(self.image_features(images).float(), self.text_features().float(), self.logit_scale)


@TRAINER_REGISTRY.register()
class IVLP(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    #: rebuilt from the class names (published checkpoints also hold the frozen CLIP: skipped with a note)
    ignored_checkpoint_keys = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.IVLP = CN()
        # Number of prompt tokens per layer in the vision branch
        cfg.TRAINER.IVLP.N_CTX_VISION = 2
        # Number of context tokens per layer in the language branch
        cfg.TRAINER.IVLP.N_CTX_TEXT = 2
        # Words to initialise the language context with (used when N_CTX_TEXT <= 4)
        cfg.TRAINER.IVLP.CTX_INIT = "a photo of a"
        # fp16, fp32, amp or bf16
        cfg.TRAINER.IVLP.PREC = "fp16"
        # Prompted layers of the vision encoder (0 = no vision prompts)
        cfg.TRAINER.IVLP.PROMPT_DEPTH_VISION = 9
        # Prompted layers of the text encoder (>= 1; 1 = layer-0 context only)
        cfg.TRAINER.IVLP.PROMPT_DEPTH_TEXT = 9

    def build_model(self) -> nn.Module:
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"VLPromptLearner": self.model.prompts}

    def precompute(self) -> Tensor:
        return self.model.text_features().float()

    def model_inference(self, images: Tensor) -> Tensor:
        return cosine_logits(self.model.image_features(images).float(), self.precomputed, self.model.logit_scale)
