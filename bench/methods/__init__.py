"""One file per benchmarked method on the shared helpers of ``common.py`` (ours) and ``published.py`` (the
published code); ``METHODS`` lists them in the order ``--method all`` runs them."""
from __future__ import annotations

from .cocoop import CoCoOpMethod
from .common import Method
from .coop import CoOpMethod
from .instanceprompt import InstancePromptMethod
from .maple import MaPLeMethod
from .metaproto import MetaProtoMethod

METHODS: dict[str, Method] = {m.key: m for m in (CoOpMethod(), CoCoOpMethod(), MaPLeMethod(), MetaProtoMethod(),
                                                   InstancePromptMethod())}

__all__ = ["METHODS", "Method"]
