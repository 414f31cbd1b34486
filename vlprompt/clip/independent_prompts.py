"""Independent deep vision-language prompts (IVLP; the prompts of PromptSRC): a learnable class-prompt context
at the text input, independent prompt tokens in the first layers of each tower, no coupling between them."""
from __future__ import annotations

from typing import Sequence

from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.errors import ConfigError

from .deep_prompts import BlockPrompts, init_fixed_context, usable_depth, vision_prompts
from .model import PromptedCLIP
from .prompts import ClassPrompts
from .text import PromptedTextEncoder
from .vision import PromptedImageEncoder

#: checkpoint key map of :class:`IndependentVLPrompts` to the published keys (``prompt_learner.ctx``,
#: ``text_encoder.transformer.resblocks.<l>.VPT_shallow``, ``image_encoder.VPT``, ...)
PUBLISHED_KEYS = [("text_deep.", "text_encoder."), ("vision.", "image_encoder.")]
#: the published checkpoint folder of these prompts, and the keys of published files rebuilt from the class names
CHECKPOINT_FOLDER = "VLPromptLearner"
REBUILT_KEYS = ("prompt_learner.token_prefix", "prompt_learner.token_suffix")


def independent_prompt_keys(n_ctx: int) -> CN:
    """The config node of IVLP-style prompts (``TRAINER.IVLP``, and the first keys of ``TRAINER.PROMPTSRC``),
    with the published defaults; ``n_ctx`` tokens per layer in both branches."""
    c = CN()
    # Number of prompt tokens per layer in the vision branch
    c.N_CTX_VISION = n_ctx
    # Number of context tokens per layer in the language branch
    c.N_CTX_TEXT = n_ctx
    # Words to initialise the language context with (used when N_CTX_TEXT <= 4)
    c.CTX_INIT = "a photo of a"
    # fp16, fp32, amp or bf16
    c.PREC = "fp16"
    # Prompted layers of the vision encoder (0 = no vision prompts)
    c.PROMPT_DEPTH_VISION = 9
    # Prompted layers of the text encoder (>= 1; 1 = layer-0 context only)
    c.PROMPT_DEPTH_TEXT = 9
    return c


class ClassContext(nn.Module):
    """Layer-0 text context ``ctx`` spliced into the class prompts (the published ``VLPromptLearner``)."""

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: Sequence[str], n_ctx: int, ctx_init: str,
                 key: str) -> None:
        super().__init__()
        ctx, prefix = init_fixed_context(text_encoder, n_ctx, ctx_init, key=key)
        self.ctx = nn.Parameter(ctx)
        self.prompts = ClassPrompts(text_encoder, list(classnames), prefix, n_ctx)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.prompts(self.ctx)


class IndependentVLPrompts(nn.Module):
    """Every learnable tensor: the class-prompt context (``prompt_learner``), the deep text prompts
    (``text_deep``) and the vision prompts (``vision``; none with ``depth_vision`` 0). ``node`` (e.g.
    ``TRAINER.IVLP``) names the config keys in errors, ``who`` the method (and ``backbone`` its CLIP)."""

    def __init__(self, text_encoder: PromptedTextEncoder, image_encoder: PromptedImageEncoder,
                 classnames: Sequence[str], n_ctx_text: int, ctx_init: str, depth_text: int, n_ctx_vision: int,
                 depth_vision: int, node: str, who: str, backbone: str = "") -> None:
        super().__init__()
        if depth_text < 1:
            raise ConfigError(f"{node}.PROMPT_DEPTH_TEXT must be >= 1, got {depth_text} (use the VPT trainer to "
                              "prompt the vision branch only).")
        if depth_vision < 0 or (depth_vision > 0 and n_ctx_vision < 1):
            raise ConfigError(f"{node}: PROMPT_DEPTH_VISION {depth_vision} with N_CTX_VISION {n_ctx_vision}; set "
                              "PROMPT_DEPTH_VISION 0 for no vision prompts, else N_CTX_VISION >= 1.")
        self.prompt_learner = ClassContext(text_encoder, classnames, n_ctx_text, ctx_init, f"{node}.N_CTX_TEXT")
        depth = usable_depth(depth_text, text_encoder.layers, f"{node}.PROMPT_DEPTH_TEXT")
        self.text_deep = BlockPrompts(n_ctx_text, text_encoder.width, depth, "VPT_shallow")
        self.vision = vision_prompts(image_encoder, n_ctx_vision, depth_vision, f"{node}.PROMPT_DEPTH_VISION",
                                     f"{who} with PROMPT_DEPTH_VISION {depth_vision} (MODEL.BACKBONE.NAME '{backbone}')")


class IndependentPromptCLIP(PromptedCLIP):
    """PromptedCLIP + :class:`IndependentVLPrompts` as ``prompts``."""

    def __init__(self, clip_model: nn.Module, classnames: Sequence[str], n_ctx_text: int, ctx_init: str,
                 depth_text: int, n_ctx_vision: int, depth_vision: int, node: str, who: str,
                 backbone: str = "") -> None:
        super().__init__(clip_model)
        self.prompts = IndependentVLPrompts(self.text_encoder, self.image_encoder, classnames, n_ctx_text, ctx_init,
                                            depth_text, n_ctx_vision, depth_vision, node, who, backbone)

    def text_features(self) -> Tensor:
        embeddings, eot = self.prompts.prompt_learner()
        return self.text_encoder.forward_shared(embeddings, eot, self.prompts.text_deep.deep())

    def image_features(self, images: Tensor) -> Tensor:
        vision = self.prompts.vision
        if vision.first() is None:  # language-only prompting: a frozen, prompt-free image tower
            return self.frozen_image_features(images)
        return self.image_encoder(images, vision.first(), vision.deep())

    def forward(self, images: Tensor) -> Tensor:
        return self.cosine_logits(self.image_features(images), self.text_features())
