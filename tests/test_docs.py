"""The method docs list every config key of their trainers (docs stay in sync with the code)."""
import pytest

from conftest import REPO
from vlprompt.config.setup import get_cfg


@pytest.mark.parametrize("node,doc", [("METAPROTO", "metaproto.md"), ("INSTANCEPROMPT", "instance_prompt.md"),
                                      ("KGCOOP", "kgcoop.md"), ("LINEARPROBE", "linear_probe.md")])
def test_method_docs_cover_every_key(node, doc):
    text = (REPO / "docs" / "methods" / doc).read_text()
    for key in get_cfg().TRAINER[node]:
        assert f"`{key}`" in text, f"docs/methods/{doc} does not document TRAINER.{node}.{key}"
