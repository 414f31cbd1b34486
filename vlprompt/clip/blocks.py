"""The block loop shared by the promptable encoders."""
from __future__ import annotations

from typing import Callable, Optional, Sequence

from torch import Tensor, nn

DeepPrompts = Sequence[Optional[Tensor]]


def run_blocks(blocks: nn.ModuleList, x: Tensor, attn_mask: Optional[Tensor], deep_prompts: DeepPrompts,
               put: Callable[[Tensor, Tensor, int], Tensor], batch_first: bool = True) -> Tensor:
    """Run open_clip residual blocks on ``x`` ``[N, L, D]``; before block ``l >= 1`` with
    ``deep_prompts[l]`` given, ``x = put(x, deep_prompts[l], l)``."""
    if deep_prompts and deep_prompts[0] is not None:
        raise ValueError("deep_prompts[0] must be None: layer-0 prompts travel with the input embeddings.")
    if len(deep_prompts) > len(blocks):
        raise ValueError(f"{len(deep_prompts)} deep prompt layers given, but the tower has {len(blocks)} blocks.")
    if not batch_first:
        x = x.transpose(0, 1)
    for i, block in enumerate(blocks):
        if i < len(deep_prompts) and deep_prompts[i] is not None:
            if not batch_first:
                x = put(x.transpose(0, 1), deep_prompts[i], i).transpose(0, 1)
            else:
                x = put(x, deep_prompts[i], i)
        x = block(x, attn_mask=attn_mask)
    if not batch_first:
        x = x.transpose(0, 1)
    return x


def check_prompt(prompt: Tensor, width: int, layer: int, where: str) -> None:
    if prompt.shape[-1] != width or prompt.dim() not in (2, 3):
        raise ValueError(f"{where} prompt for layer {layer}: expected shape [P, {width}] or [N, P, {width}], "
                         f"got {tuple(prompt.shape)}.")
