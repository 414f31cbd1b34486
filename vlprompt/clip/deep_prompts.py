"""Building blocks of deep (multi-layer) prompting, shared by the methods that prompt several layers.

* ``init_fixed_context``: context vectors from the first ``n_ctx`` tokens of an init phrase, the phrase
  kept whole in the prompt text (the rule of the multi-layer prompting code, unlike CoOp's, where the
  phrase's word count sets ``n_ctx``).
* ``usable_depth``: a prompt depth clipped to the layers a tower has.
* ``BlockPrompts``: independent learnable tokens for blocks ``0 .. depth-1`` of one tower, named as in
  CLIP forks that keep each block's prompt inside the block, so their checkpoints load by name.
"""
from __future__ import annotations

import logging
from typing import Optional

import torch
from torch import Tensor, nn

from vlprompt.errors import ConfigError

from .text import PromptedTextEncoder
from .tokens import bpe_length, tokenize
from .vision import PromptedImageEncoder

logger = logging.getLogger(__name__)


def init_fixed_context(text_encoder: PromptedTextEncoder, n_ctx: int, ctx_init: str = "",
                       key: str = "N_CTX", init_up_to: int = 4) -> tuple[Tensor, str]:
    """Context ``[n_ctx, D]`` (float32) and the prompt prefix text, keeping ``n_ctx`` whatever ``ctx_init`` says.

    With ``ctx_init`` the context is the token embeddings of the phrase's first ``n_ctx`` BPE tokens and
    the prefix is the *whole* phrase, so its remaining tokens stay in every prompt as fixed words
    (``n_ctx`` 2 and ``"a photo of a"`` give ``SOS [ctx ctx] of a <name>.``). Without it, ``N(0, 0.02)``
    and the prefix ``"X X ... X"``.

    ``key`` names the config key of ``n_ctx`` in errors. Above ``init_up_to`` context tokens ``ctx_init`` is
    not used and the context starts random, as the published MaPLe / IVLP / PromptSRC prompt learners do.

    Raises:
        ConfigError: ``n_ctx`` < 1, or the phrase has fewer tokens than ``n_ctx`` (the context would
            overwrite class-name tokens).
    """
    if n_ctx < 1:
        raise ConfigError(f"{key} (the number of context tokens) must be >= 1, got {n_ctx}. Set {key} 2 (or more).")
    if ctx_init and n_ctx > init_up_to:
        logger.info(f'{key} {n_ctx} > {init_up_to}: CTX_INIT "{ctx_init}" is not used, the context starts random '
                    "(as published)")
        ctx_init = ""
    if ctx_init:
        words = ctx_init.replace("_", " ")
        n_tokens = bpe_length(words)
        if n_tokens < n_ctx:
            raise ConfigError(f'CTX_INIT "{ctx_init}" has {n_tokens} token(s), fewer than the {n_ctx} context tokens '
                              f"({key}): the context would cover class-name tokens. Use a longer phrase or a smaller "
                              f"{key}.")
        with torch.no_grad():
            emb = text_encoder.embed(tokenize(words).to(text_encoder.token_embedding.weight.device))
        ctx = emb[0, 1:1 + n_ctx].float().clone()
        prefix = words
    else:
        ctx = torch.empty(n_ctx, text_encoder.width)
        nn.init.normal_(ctx, std=0.02)
        prefix = " ".join(["X"] * n_ctx)
    logger.info(f'Initial context: "{prefix}"')
    logger.info(f"Number of context words (tokens): {n_ctx}")
    return ctx, prefix


def usable_depth(requested: int, layers: int, key: str) -> int:
    """``requested`` prompt depth, clipped (with a warning) to a tower's ``layers`` blocks."""
    if requested > layers:
        logger.warning(f"{key} {requested} exceeds the {layers} transformer layers of this backbone; "
                       f"prompting all {layers} layers.")
        return layers
    return requested


class BlockPrompts(nn.Module):
    """Independent learnable prompt tokens ``[n_ctx, width]`` of one tower, ``N(0, std)`` initialised.

    Block ``l`` in ``1 .. depth-1`` has ``transformer.resblocks.<l>.<deep_name>``; layer 0 has
    ``<first_name>`` when one is given (a text tower's layer-0 context usually lives in its class prompts
    instead). ``first()`` -> the layer-0 tokens or None; ``deep()`` -> the encoders' ``deep_prompts``
    list (index 0 None).
    """

    def __init__(self, n_ctx: int, width: int, depth: int, deep_name: str, first_name: Optional[str] = None,
                 std: float = 0.02) -> None:
        super().__init__()
        self.first_name = first_name
        self.deep_name = deep_name
        self.depth = depth
        if first_name is not None and depth >= 1:
            self.register_parameter(first_name, nn.Parameter(torch.empty(n_ctx, width).normal_(std=std)))
        blocks = nn.ModuleDict()
        for layer in range(1, depth):
            holder = nn.Module()
            holder.register_parameter(deep_name, nn.Parameter(torch.empty(n_ctx, width).normal_(std=std)))
            blocks[str(layer)] = holder
        self.transformer = nn.Module()
        self.transformer.resblocks = blocks

    def first(self) -> Optional[Tensor]:
        return getattr(self, self.first_name) if self.first_name is not None and self.depth >= 1 else None

    def deep(self) -> list[Optional[Tensor]]:
        blocks = self.transformer.resblocks
        return [None] + [getattr(blocks[str(layer)], self.deep_name) for layer in range(1, self.depth)]


def vision_prompts(image_encoder: PromptedImageEncoder, n_ctx: int, depth: int, key: str, who: str) -> BlockPrompts:
    """VPT-style vision prompts (published names: ``VPT`` at layer 0, ``...resblocks.<l>.VPT_shallow`` deeper)
    for ``depth`` layers of ``image_encoder`` (0 = none); ``key`` names the config key, ``who`` the method in errors."""
    if depth <= 0:
        return BlockPrompts(n_ctx, 0, 0, "VPT_shallow", first_name="VPT")
    width = image_encoder.prompt_width(who)
    return BlockPrompts(n_ctx, width, usable_depth(depth, image_encoder.layers, key), "VPT_shallow", first_name="VPT")
