"""MaPLe vs muzairkhattak/multimodal-prompt-learning ``trainers/maple.py`` (with its patched ``clip/``):
N_CTX 2 "a photo of a", lr 0.0035, batch 4 (its config); PROMPT_DEPTH 9 clipped to the model's layers.

The published forward casts the inserted prompts with ``.half()`` even under ``PREC fp32``, and its ``PREC fp32``
crashes on its half ``proj``: as in shared/golden, the published prompt learner gets ``proj.float()`` after
construction (the one change), its logits as published are compared loosely, and the logits and the SGD step
tightly with ``torch.Tensor.half`` made the identity. The timed published runs keep the casts.
"""
from __future__ import annotations

import contextlib
from typing import Any, ContextManager

from .common import LOGIT_TOL, Method, Setting, Variant
from .published import half_casts_neutralised


class MaPLeMethod(Method):
    key, title, trainer, node = "maple", "MaPLe", "MaPLe", "MAPLE"
    lr = 0.0035
    published_repo, published_file = "maple", "maple.py"
    step_label = "casts neutralised"
    # Two layers on CPU so that the deep (layer >= 1) prompts of both towers run (batch 4 as published).
    defaults = {"small": dict(layers=2, train_batch=4), "full": dict(train_batch=4)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        # PROMPT_DEPTH 9 (published config) needs 9 layers; both sides get the same clipped depth
        return dict(N_CTX=2, CTX_INIT="a photo of a", PREC="fp32", PROMPT_DEPTH=min(9, s.layers))

    def published_after_build(self, trainer: Any) -> None:
        # the published PREC fp32 crashes on its half `proj` (shared/golden/README.md): the one change needed
        trainer.model.prompt_learner.proj.float()

    def variants(self) -> list[Variant]:
        return [Variant("published as is (.half() casts of the prompts)", contextlib.nullcontext, LOGIT_TOL),
                Variant("casts neutralised", half_casts_neutralised, LOGIT_TOL)]

    def step_context(self) -> ContextManager:
        return half_casts_neutralised()
