"""CoOp vs KaiyangZhou/CoOp ``trainers/coop.py``: N_CTX 16, random init, class token at the end (its config)."""
from __future__ import annotations

from typing import Any

from .common import Method, Setting


class CoOpMethod(Method):
    key, title, trainer, node = "coop", "CoOp", "CoOp", "COOP"
    published_repo, published_file = "coop", "coop.py"
    defaults = {"small": dict(train_batch=8), "full": dict(train_batch=32)}

    def ours_values(self, s: Setting) -> dict[str, Any]:
        return dict(N_CTX=16, CSC=False, CTX_INIT="", CLASS_TOKEN_POSITION="end", PREC="fp32")
