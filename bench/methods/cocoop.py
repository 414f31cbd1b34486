"""CoCoOp vs KaiyangZhou/CoOp ``trainers/cocoop.py``: N_CTX 4 "a photo of a" (its config)."""
from __future__ import annotations

from typing import Any

from .common import Method, Setting


class CoCoOpMethod(Method):
    key, title, trainer, node = "cocoop", "CoCoOp", "CoCoOp", "COCOOP"
    published_repo, published_file = "coop", "cocoop.py"
    # The published CoCoOp encodes batch x n_cls prompts per step and per evaluated image, one image at a time:
    # on CPU fewer classes and images (the published config trains with batch 1; 4 here).
    defaults = {"small": dict(classes=100, train_batch=4, test_images=100, test_batch=50),
                "full": dict(train_batch=4, test_images=100)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=4, CTX_INIT="a photo of a", PREC="fp32")
