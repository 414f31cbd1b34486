"""Class prompts with learnable context (CoOp's prompt layout), shared by every CoOp-style method."""
from __future__ import annotations

import logging
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .text import PromptedTextEncoder
from .tokens import ContextSplice, bpe_length, tokenize

logger = logging.getLogger(__name__)


def init_context(text_encoder: PromptedTextEncoder, n_ctx: int, ctx_init: str = "",
                 shape_prefix: Sequence[int] = ()) -> tuple[Tensor, str]:
    """Initial context vectors and the prompt prefix text.

    With ``ctx_init`` the vectors are the token embeddings of those words (their count overrides
    ``n_ctx``, as published); otherwise ``N(0, 0.02)`` of shape ``[*shape_prefix, n_ctx, D]`` with
    prefix ``"X X ... X"``. Returned in float32 (learnable parameters are kept in float32).
    """
    if ctx_init:
        words = ctx_init.replace("_", " ")
        n_ctx = len(words.split(" "))
        with torch.no_grad():
            emb = text_encoder.embed(tokenize(words).to(text_encoder.token_embedding.weight.device))
        ctx = emb[0, 1:1 + n_ctx].float().clone()
        prefix = words
    else:
        ctx = torch.empty(*shape_prefix, n_ctx, text_encoder.width)
        nn.init.normal_(ctx, std=0.02)
        prefix = " ".join(["X"] * n_ctx)
    logger.info(f'Initial context: "{prefix}"')
    logger.info(f"Number of context words (tokens): {n_ctx}")
    return ctx, prefix


class ClassPrompts(nn.Module):
    """Tokenised ``"<prefix> <classname>."`` prompts of every class, and the splice of context into them.

    ``forward(ctx)`` -> (embeddings ``[n_cls, L, D]``, eot_index ``[n_cls]``).
    """

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: Sequence[str], prefix: str, n_ctx: int,
                 position: str = "end") -> None:
        super().__init__()
        names = [name.replace("_", " ") for name in classnames]
        self.prompt_texts = [f"{prefix} {name}." for name in names]
        device = text_encoder.token_embedding.weight.device
        tokens = tokenize(self.prompt_texts).to(device)
        eot = tokens.argmax(dim=-1)
        # with a causal mask, positions after the last EOT never reach a text feature: keep only the ones before
        length = int(eot.max()) + 1 if text_encoder.attn_mask is not None else tokens.shape[1]
        with torch.no_grad():
            emb = text_encoder.embed(tokens[:, :length]).float()
        self.register_buffer("tokenized_prompts", tokens, persistent=False)
        self.register_buffer("eot_index", eot, persistent=False)
        self.splice = ContextSplice(emb, n_ctx, [bpe_length(n) for n in names], position)

    def forward(self, ctx: Tensor, rows: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """``rows`` ``[R]`` (class index per row of ``ctx``) builds R prompts instead of one per class."""
        if rows is None:
            return self.splice(ctx), self.eot_index
        return self.splice(ctx, rows), self.eot_index[rows]


def cosine_logits(image_features: Tensor, text_features: Tensor, logit_scale: Tensor) -> Tensor:
    """``exp(logit_scale) * norm(image) @ norm(text).T`` -> ``[B, n_cls]``."""
    image_features = F.normalize(image_features, dim=-1)
    text_features = F.normalize(text_features, dim=-1)
    return logit_scale.exp() * image_features @ text_features.t()


class ContextPromptLearner(nn.Module):
    """Learnable context ``ctx`` spliced into every class prompt (CoOp's prompt learner).

    ``ctx`` is ``[n_ctx, D]`` (shared) or ``[n_cls, n_ctx, D]`` (class-specific, ``csc`` without init words).
    ``forward()`` -> (embeddings ``[n_cls, L, D]``, eot_index ``[n_cls]``).
    """

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: Sequence[str], n_ctx: int,
                 ctx_init: str = "", csc: bool = False, position: str = "end") -> None:
        super().__init__()
        shape = (len(classnames),) if (csc and not ctx_init) else ()
        ctx, prefix = init_context(text_encoder, n_ctx, ctx_init, shape)
        self.ctx = nn.Parameter(ctx)
        self.n_ctx = ctx.shape[-2]
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, self.n_ctx, position)

    def forward(self) -> tuple[Tensor, Tensor]:
        return self.prompts(self.ctx)
