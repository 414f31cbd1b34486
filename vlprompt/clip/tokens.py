"""CLIP tokenizer access, prompt templates, and the context splice (prefix | ctx | class | suffix)."""
from __future__ import annotations

from functools import lru_cache
from typing import Sequence

import torch
from open_clip.tokenizer import SimpleTokenizer
from torch import Tensor, nn

from vlprompt.errors import ConfigError

CONTEXT_LENGTH = 77

# Hand-written per-dataset templates of the published ZeroshotCLIP
CUSTOM_TEMPLATES = {
    "OxfordPets": "a photo of a {}, a type of pet.",
    "OxfordFlowers": "a photo of a {}, a type of flower.",
    "FGVCAircraft": "a photo of a {}, a type of aircraft.",
    "DescribableTextures": "{} texture.",
    "EuroSAT": "a centered satellite photo of {}.",
    "StanfordCars": "a photo of a {}.",
    "Food101": "a photo of {}, a type of food.",
    "SUN397": "a photo of a {}.",
    "Caltech101": "a photo of a {}.",
    "UCF101": "a photo of a person doing {}.",
    "ImageNet": "a photo of a {}.",
    "ImageNetSketch": "a photo of a {}.",
    "ImageNetV2": "a photo of a {}.",
    "ImageNetA": "a photo of a {}.",
    "ImageNetR": "a photo of a {}.",
}
# The 7-template ensemble selected from CLIP's ImageNet prompt-engineering notebook
IMAGENET_TEMPLATES_SELECT = [
    "itap of a {}.",
    "a bad photo of the {}.",
    "a origami {}.",
    "a photo of the large {}.",
    "a {} in a video game.",
    "art of the {}.",
    "a photo of the small {}.",
]
# The 60 ImageNet templates of CLIP's prompt-engineering notebook, as PromptSRC's teacher ensemble uses them
IMAGENET_TEMPLATES = [
    'a photo of a {}.',
    'a bad photo of a {}.',
    'a photo of many {}.',
    'a sculpture of a {}.',
    'a photo of the hard to see {}.',
    'a low resolution photo of the {}.',
    'a rendering of a {}.',
    'graffiti of a {}.',
    'a bad photo of the {}.',
    'a cropped photo of the {}.',
    'a tattoo of a {}.',
    'the embroidered {}.',
    'a photo of a hard to see {}.',
    'a bright photo of a {}.',
    'a photo of a clean {}.',
    'a photo of a dirty {}.',
    'a dark photo of the {}.',
    'a drawing of a {}.',
    'a photo of my {}.',
    'the plastic {}.',
    'a photo of the cool {}.',
    'a close-up photo of a {}.',
    'a black and white photo of the {}.',
    'a painting of the {}.',
    'a painting of a {}.',
    'a pixelated photo of the {}.',
    'a sculpture of the {}.',
    'a bright photo of the {}.',
    'a cropped photo of a {}.',
    'a plastic {}.',
    'a photo of the dirty {}.',
    'a jpeg corrupted photo of a {}.',
    'a blurry photo of the {}.',
    'a photo of the {}.',
    'a good photo of the {}.',
    'a rendering of the {}.',
    'a {} in a video game.',
    'a photo of one {}.',
    'a doodle of a {}.',
    'a close-up photo of the {}.',
    'the origami {}.',
    'the {} in a video game.',
    'a sketch of a {}.',
    'a doodle of the {}.',
    'a origami {}.',
    'a low resolution photo of a {}.',
    'the toy {}.',
    'a rendition of the {}.',
    'a photo of the clean {}.',
    'a photo of a large {}.',
    'a rendition of a {}.',
    'a photo of a nice {}.',
    'a photo of a weird {}.',
    'a blurry photo of a {}.',
    'a cartoon {}.',
    'art of a {}.',
    'a sketch of the {}.',
    'a embroidered {}.',
    'a pixelated photo of a {}.',
    'itap of the {}.',
]


@lru_cache(maxsize=1)
def get_tokenizer() -> SimpleTokenizer:
    return SimpleTokenizer(context_length=CONTEXT_LENGTH)


def tokenize(texts: str | Sequence[str]) -> Tensor:
    """Token ids ``[N, 77]`` (SOT ... EOT, zero padded; too-long texts are truncated with EOT last)."""
    if isinstance(texts, str):
        texts = [texts]
    return get_tokenizer()(list(texts))


def bpe_length(text: str) -> int:
    """Number of BPE tokens of ``text`` without SOT/EOT (CoOp's ``name_lens``)."""
    return len(get_tokenizer().encode(text))


def eot_index(tokens: Tensor) -> Tensor:
    """Position of the EOT token (the largest id) in each row of ``tokens``."""
    return tokens.argmax(dim=-1)


class ContextSplice(nn.Module):
    """Puts learnable context vectors into tokenised class prompts.

    The prompts are tokenised as ``"<prefix words> <classname>."`` where the prefix has ``n_ctx``
    tokens (``"X X ... X"`` or the init phrase). ``forward(ctx)`` returns the embeddings with the
    context at ``position``: ``end`` = SOS|ctx|class.|EOT, ``middle`` = SOS|ctx[:n//2]|class|ctx[n//2:]|.EOT,
    ``front`` = SOS|class|ctx|.EOT (the published layouts). One gather, no per-class loop.

    Buffers ``token_embedding`` [n_cls, L, D] and ``index`` [n_cls, L] are not learnable.
    """

    def __init__(self, token_embeddings: Tensor, n_ctx: int, name_lens: Sequence[int], position: str = "end") -> None:
        super().__init__()
        if position not in ("end", "middle", "front"):
            raise ConfigError(f"CLASS_TOKEN_POSITION must be end, middle or front; got '{position}'. Set the "
                              "method's key (e.g. TRAINER.COOP.CLASS_TOKEN_POSITION end) to one of them.")
        n_cls, length, _ = token_embeddings.shape
        self.n_ctx = n_ctx
        self.position = position
        self.register_buffer("token_embedding", token_embeddings, persistent=False)
        rows = []
        for name_len in name_lens:
            ctx = list(range(length, length + n_ctx))  # ctx slots live after the L token slots in the source
            name = list(range(1 + n_ctx, 1 + n_ctx + name_len))
            rest = list(range(1 + n_ctx + name_len, length))
            if position == "end":
                order = [0] + ctx + name + rest
            elif position == "middle":
                half = n_ctx // 2
                order = [0] + ctx[:half] + name + ctx[half:] + rest
            else:
                order = [0] + name + ctx + rest
            rows.append(order)
        self.register_buffer("index", torch.tensor(rows, dtype=torch.long), persistent=False)
        if n_cls != len(name_lens):
            raise ValueError(f"{n_cls} prompts but {len(name_lens)} name lengths")

    def forward(self, ctx: Tensor, rows: Tensor | None = None) -> Tensor:
        """Args: ctx ``[n_ctx, D]`` (shared), ``[n_cls, n_ctx, D]`` (class-specific) or ``[B, n_cls, n_ctx, D]``;
        ``rows`` ``[R]``: build only these class prompts (``ctx`` then has R rows instead of n_cls).
        Returns prompt embeddings ``[n_cls, L, D]`` (or ``[B, n_cls, L, D]``, ``[R, L, D]``)."""
        emb, index = self.token_embedding, self.index
        if rows is not None:
            emb, index = emb[rows], index[rows]
        n_cls, _, dim = emb.shape
        batched = ctx.dim() == 4
        if ctx.dim() == 2:
            ctx = ctx.unsqueeze(0).expand(n_cls, -1, -1)
        if batched:
            b = ctx.shape[0]
            src = torch.cat([emb.unsqueeze(0).expand(b, -1, -1, -1).to(ctx.dtype), ctx], dim=2)
            idx = index.unsqueeze(0).unsqueeze(-1).expand(b, -1, -1, dim)
            return src.gather(2, idx)
        src = torch.cat([emb.to(ctx.dtype), ctx], dim=1)
        return src.gather(1, index.unsqueeze(-1).expand(-1, -1, dim))
