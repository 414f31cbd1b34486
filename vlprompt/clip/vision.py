"""PromptedImageEncoder: open_clip's image tower with optional visual prompt tokens."""
from __future__ import annotations

import torch
from open_clip.modified_resnet import ModifiedResNet
from torch import Tensor, nn

from vlprompt.errors import ConfigError

from .blocks import DeepPrompts, check_prompt, run_blocks


class PromptedImageEncoder(nn.Module):
    """Image features, sharing (not copying) open_clip's visual modules.

    Without prompts this is open_clip's ``encode_image`` for any tower (ViT, ModifiedResNet, timm).
    Prompts need a native open_clip ``VisionTransformer``: ``prompts`` ``[P, W]`` or ``[B, P, W]`` are
    appended after the patch tokens (after the positional embedding, before ``ln_pre``, as MaPLe),
    and ``deep_prompts[l]`` replaces the last P tokens entering block ``l >= 1``.
    """

    def __init__(self, clip_model: nn.Module) -> None:
        super().__init__()
        self.visual = clip_model.visual
        self.is_vit = all(hasattr(self.visual, a) for a in ("conv1", "class_embedding", "transformer", "ln_pre"))
        self.width: int | None = self.visual.transformer.width if self.is_vit else None
        self.layers: int | None = len(self.visual.transformer.resblocks) if self.is_vit else None
        #: open_clip's convolutional tower (RN50, RN101, ...)
        self.is_resnet: bool = isinstance(self.visual, ModifiedResNet)

    def compile_units(self) -> list[nn.Module]:
        """The frozen open_clip modules that ``torch.compile`` compiles (``MODEL.COMPILE``): each transformer block
        of a ViT (prompted forwards run them one by one), else the whole tower."""
        return list(self.visual.transformer.resblocks) if self.is_vit else [self.visual]

    def prompt_width(self, who: str) -> int:
        """The width visual prompts must have; a ValueError naming ``who`` if this tower takes none."""
        if self.width is None:
            raise ConfigError(f"{who} needs a ViT image tower (visual prompts enter the vision transformer), but this "
                              f"backbone's image tower is {type(self.visual).__name__}. Set MODEL.BACKBONE.NAME "
                              "to a ViT backbone (ViT-B/16, ViT-B/32, ...).")
        return self.width

    @property
    def dtype(self) -> torch.dtype:
        conv = getattr(self.visual, "conv1", None)
        return conv.weight.dtype if conv is not None else next(self.visual.parameters()).dtype

    def forward(self, images: Tensor, prompts: Tensor | None = None, deep_prompts: DeepPrompts = ()) -> Tensor:
        """Returns ``[B, E]`` image features (not normalised)."""
        images = images.to(self.dtype)
        if prompts is None and not any(p is not None for p in deep_prompts):
            return self.visual(images)
        if not self.is_vit:
            raise TypeError(f"Visual prompts need an open_clip VisionTransformer; this backbone's image tower is "
                            f"{type(self.visual).__name__}. Use a ViT backbone (ViT-B/16, ViT-B/32, ...).")
        v = self.visual
        x = v.conv1(images).flatten(2).transpose(1, 2)  # [B, grid*grid, W]
        cls = v.class_embedding.to(x.dtype).view(1, 1, -1).expand(x.shape[0], -1, -1)
        x = torch.cat([cls, x], dim=1) + v.positional_embedding.to(x.dtype)
        n_prompt = 0
        if prompts is not None:
            check_prompt(prompts, self.width, 0, "vision")
            p = prompts.to(x.dtype)
            if p.dim() == 2:
                p = p.unsqueeze(0).expand(x.shape[0], -1, -1)
            n_prompt = p.shape[1]
            x = torch.cat([x, p], dim=1)
        x = v.patch_dropout(x)
        x = v.ln_pre(x)

        def put(h: Tensor, prompt: Tensor, layer: int) -> Tensor:
            check_prompt(prompt, self.width, layer, "vision")
            q = prompt.to(h.dtype)
            if q.dim() == 2:
                q = q.unsqueeze(0).expand(h.shape[0], -1, -1)
            return torch.cat([h[:, : h.shape[1] - q.shape[1]], q], dim=1)

        x = run_blocks(v.transformer.resblocks, x, None, deep_prompts, put, getattr(v.transformer, "batch_first", True))
        if n_prompt and getattr(v, "pool_type", "tok") == "avg":
            x = x[:, : x.shape[1] - n_prompt]  # prompts must not enter an average pool
        pooled, _ = v._pool(x)
        return pooled @ v.proj if v.proj is not None else pooled
