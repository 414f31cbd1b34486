"""PromptedTextEncoder: open_clip's text tower, run block by block with prompts as arguments."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from vlprompt.errors import ConfigError
from vlprompt.utils.distributed import split_rows

from .blocks import DeepPrompts, check_prompt, run_blocks


class PromptedTextEncoder(nn.Module):
    """Text features of prompt embeddings, sharing (not copying) open_clip's text modules.

    With a causal mask, positions after the EOT cannot change the EOT feature, so only the
    first ``max(eot_index) + 1`` positions are run (exact, and 3-4x less compute than 77).
    """

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        text = getattr(clip_model, "text", None)
        if text is not None and not hasattr(clip_model, "token_embedding"):
            clip_model = text  # CustomTextCLIP keeps its open_clip TextTransformer under .text
        for attr in ("token_embedding", "positional_embedding", "transformer", "ln_final"):
            if not hasattr(clip_model, attr):
                raise ConfigError(f"{type(clip_model).__name__} has no '{attr}': prompt learning needs a CLIP-style "
                                  "text transformer (HF text towers are not supported). Set MODEL.BACKBONE.NAME to an "
                                  "OpenAI name (ViT-B/16, RN50, ...) or an open_clip model with its own text tower.")
        self.token_embedding = clip_model.token_embedding
        self.transformer = clip_model.transformer
        self.ln_final = clip_model.ln_final
        self.positional_embedding = clip_model.positional_embedding  # the same Parameter objects, shared
        self.text_projection = clip_model.text_projection
        mask = getattr(clip_model, "attn_mask", None)
        self.register_buffer("attn_mask", mask if isinstance(mask, Tensor) else None, persistent=False)
        self.width: int = clip_model.transformer.width
        self.layers: int = len(clip_model.transformer.resblocks)
        self.batch_first: bool = getattr(clip_model.transformer, "batch_first", True)

    @property
    def dtype(self) -> torch.dtype:
        return self.transformer.get_cast_dtype()

    def compile_units(self) -> list[nn.Module]:
        """The frozen open_clip modules that ``torch.compile`` compiles (``MODEL.COMPILE``): each transformer block."""
        return list(self.transformer.resblocks)

    def embed(self, tokens: Tensor) -> Tensor:
        """Token embeddings ``[N, L, D]`` of token ids ``[N, L]``."""
        return self.token_embedding(tokens)

    def forward(self, embeddings: Tensor, eot_index: Tensor, deep_prompts: DeepPrompts = (),
                ctx_start: int = 1) -> Tensor:
        """Args:
            embeddings: ``[N, L, D]`` prompt embeddings (context already spliced in).
            eot_index: ``[N]`` position of each sequence's EOT token.
            deep_prompts: ``deep_prompts[l]`` (``[P, D]`` or ``[N, P, D]``) replaces positions
                ``ctx_start .. ctx_start+P`` entering block ``l >= 1``.
        Returns: ``[N, E]`` text features (not normalised).
        """
        mask = self.attn_mask
        length = int(eot_index.max()) + 1 if mask is not None else embeddings.shape[1]
        dtype = self.dtype
        x = embeddings[:, :length].to(dtype) + self.positional_embedding[:length].to(dtype)
        if mask is not None:
            mask = mask[:length, :length]

        def put(h: Tensor, prompt: Tensor, layer: int) -> Tensor:
            check_prompt(prompt, self.width, layer, "text")
            p = prompt.to(h.dtype)
            if p.dim() == 2:
                p = p.unsqueeze(0).expand(h.shape[0], -1, -1)
            return torch.cat([h[:, :ctx_start], p, h[:, ctx_start + p.shape[1]:]], dim=1)

        x = run_blocks(self.transformer.resblocks, x, mask, deep_prompts, put, self.batch_first)
        x = self.ln_final(x)
        x = x[torch.arange(x.shape[0], device=x.device), eot_index]
        proj = self.text_projection
        if proj is None:
            return x
        return proj(x) if isinstance(proj, nn.Module) else x @ proj

    def forward_shared(self, embeddings: Tensor, eot_index: Tensor, deep_prompts: DeepPrompts = (),
                       ctx_start: int = 1) -> Tensor:
        """``forward`` of prompts that are the same in every process (the class prompts of CoOp, MaPLe, ...):
        with several processes (torchrun) each encodes a contiguous slice of the rows and the features are
        gathered with their gradients, so the text tower's cost per step is divided by the number of processes.
        Per-row deep prompts (``[N, P, D]``) are sliced with the rows."""
        per_row = [i for i, p in enumerate(deep_prompts) if p is not None and p.dim() == 3]

        def encode(emb: Tensor, eot: Tensor, *row_prompts: Tensor) -> Tensor:
            deep = list(deep_prompts)
            for i, p in zip(per_row, row_prompts):
                deep[i] = p
            return self(emb, eot, deep, ctx_start)

        return split_rows(encode, [embeddings, eot_index, *(deep_prompts[i] for i in per_row)])

    def encode_tokens(self, tokens: Tensor) -> Tensor:
        """Features of plain token ids ``[N, L]`` (equals open_clip's ``encode_text``)."""
        return self(self.embed(tokens), tokens.argmax(dim=-1))
