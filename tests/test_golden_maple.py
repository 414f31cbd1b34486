"""MaPLe logits, loss and gradients against the published code (golden on the tiny ViT CLIP).

Two references: ``nohalf`` (the published code with its ``.half()`` prompt casts patched out), which a
clean float32 implementation must match tightly, and ``published`` (with the casts), matched loosely
(the casts round the prompts and their gradients to float16; see tests/data/README.md).
"""
import re
import zlib

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from conftest import golden
from vlprompt.clip.load import load_clip
from vlprompt.config.setup import get_cfg
from vlprompt.utils.seed import set_random_seed

TOL = {"nohalf": dict(logits=3e-5, loss=1e-5, grad=2e-5), "published": dict(logits=1e-3, loss=3e-4, grad=2e-3)}
RECIPE = re.compile(r"float16\(([0-9.e-]+) \* numpy\.random\.RandomState\(zlib\.crc32\('([^']+)'\.encode\(\)\)\)"
                    r"\.standard_normal\(\(([0-9, ]+)\)\)\) as float32")


def maple_cfg(depth: int, n_ctx: int = 2, ctx_init: str = "a photo of a"):
    return get_cfg(["TRAINER.MAPLE.N_CTX", str(n_ctx), "TRAINER.MAPLE.CTX_INIT", ctx_init,
                    "TRAINER.MAPLE.PREC", "fp32", "TRAINER.MAPLE.PROMPT_DEPTH", str(depth)])


def from_recipe(recipe: str) -> torch.Tensor:
    std, name, shape = RECIPE.fullmatch(recipe).groups()
    shape = tuple(int(s) for s in shape.split(",") if s.strip())
    values = float(std) * np.random.RandomState(zlib.crc32(name.encode())).standard_normal(shape)
    return torch.from_numpy(values.astype(np.float16).astype(np.float32))


def build(loaded_clip, depth: int):
    from vlprompt_plugins.trainers.maple import CustomCLIP

    g = golden(f"maple_vit_depth{depth}.pt")
    model = CustomCLIP(maple_cfg(depth), g["classnames"], loaded_clip("vit"))
    params = dict(model.named_parameters())
    with torch.no_grad():
        for name, recipe in g["param_recipes"].items():
            value = from_recipe(recipe)
            if name in g["params"]:
                assert torch.equal(value, g["params"][name].float()), name  # the recipe reads as intended
            else:
                info = g["params_not_stored"][name]
                assert tuple(value.shape) == tuple(info["shape"])
                assert torch.equal(value[0, :8], info["first_row_first8"].float()), name
                assert abs(value.double().abs().sum().item() - info["abs_sum"]) < 1e-6 * info["abs_sum"], name
            params[name].copy_(value)
    return model, g


@pytest.mark.parametrize("depth", [3, 1])
def test_prompts_and_context_init_as_published(loaded_clip, depth):
    model, g = build(loaded_clip, depth)
    pl = model.prompt_learner
    # CTX_INIT quirk: N_CTX 2 keeps 2 context vectors ("a", "photo"), the prompt keeps "a photo of a <name>."
    assert pl.ctx.shape == (2, 512) and torch.equal(pl.ctx.detach(), g["ctx"])
    assert torch.equal(pl.prompts.tokenized_prompts, g["tokenized_prompts"])
    assert pl.prompts.prompt_texts[1] == "a photo of a golden retriever."
    assert len(pl.compound_prompts_text) == len(pl.compound_prompt_projections) == depth - 1


@pytest.mark.parametrize("depth", [3, 1])
def test_logits(loaded_clip, depth):
    model, g = build(loaded_clip, depth)
    model.eval()
    with torch.no_grad():
        logits = model(g["images"])
    for ref, tol in TOL.items():
        diff = (logits - g[ref]["logits"]).abs().max().item()
        assert diff <= tol["logits"], f"{ref}: max|logits diff| {diff:.2e}"


@pytest.mark.parametrize("depth", [3, 1])
def test_loss_gradients_and_only_prompts_learn(loaded_clip, depth):
    model, g = build(loaded_clip, depth)
    model.prompt_learner.train()
    loss = F.cross_entropy(model(g["images"]), g["labels"])
    loss.backward()
    params = dict(model.named_parameters())
    learnable = {n for n, p in params.items() if p.requires_grad}
    assert learnable == set(g["nohalf"]["grads"])  # exactly the published learnable names
    assert all(p.grad is None for n, p in params.items() if n not in learnable)
    for ref, tol in TOL.items():
        assert abs(loss.item() - g[ref]["loss"].item()) <= tol["loss"], ref
        for name, grad in g[ref]["grads"].items():
            rel = ((params[name].grad - grad).abs().max() / grad.abs().max()).item()
            assert rel <= tol["grad"], f"{ref}: {name} max|grad diff| / max|grad| = {rel:.2e}"


def test_compound_projections_start_identical_and_seed_gives_published_init(tiny_clip):
    """With seed 1 the initial prompts equal the published ones (rng_init golden), proj rounded to float16."""
    from vlprompt_plugins.trainers.maple import CustomCLIP

    rng = golden("rng_init.pt")
    ref = rng["values"]["tiny_vit/maple_n2_init_depth3"]
    set_random_seed(1)
    clip = load_clip(tiny_clip["vit"])  # a fresh build: open_clip draws from the RNG like OpenAI's CLIP
    pl = CustomCLIP(maple_cfg(3), rng["meta"]["classnames"], clip).prompt_learner
    weight = pl.proj.weight.detach().flatten()
    assert torch.equal(weight[:16], ref["proj.weight"]["first16"].float())
    assert torch.equal(weight[::997], ref["proj.weight"]["every_997th"].float())
    assert torch.equal(pl.proj.bias.detach(), ref["proj.bias"].float())
    assert torch.equal(torch.stack(list(pl.compound_prompts_text)).detach(), ref["compound_prompts_text"])
    first = pl.compound_prompt_projections[0]
    assert torch.equal(first.weight.detach().flatten()[::997],
                       ref["compound_prompt_projections.0.weight"]["every_997th"].float())
    assert torch.equal(first.bias.detach(), ref["compound_prompt_projections.0.bias"])
    for other in pl.compound_prompt_projections[1:]:
        assert torch.equal(other.weight, first.weight) and torch.equal(other.bias, first.bias)
        assert other.weight is not first.weight  # copies, not one shared module


def test_ctx_init_quirk_variants(loaded_clip):
    from vlprompt_plugins.trainers.maple import CustomCLIP

    clip = loaded_clip("vit")
    names = ["banded", "golden_retriever"]
    four = CustomCLIP(maple_cfg(1, n_ctx=4), names, clip).prompt_learner
    phrase = four.prompts.splice.token_embedding[0, 1:5]  # "a photo of a" as embedded in the prompt
    assert torch.equal(four.ctx.detach(), phrase) and four.prompts.prompt_texts[0] == "a photo of a banded."
    rand = CustomCLIP(maple_cfg(1, n_ctx=8), names, clip).prompt_learner  # N_CTX > 4: the phrase is not used
    assert rand.ctx.shape == (8, 512) and rand.prompts.prompt_texts[0] == "X X X X X X X X banded."
    assert 0.01 < rand.ctx.std().item() < 0.03
    with pytest.raises(ValueError, match="fewer than the 4 context tokens"):
        CustomCLIP(maple_cfg(1, n_ctx=4, ctx_init="a photo"), names, clip)


def test_resnet_backbone_and_bad_depth_are_refused_at_build(loaded_clip):
    from vlprompt_plugins.trainers.maple import CustomCLIP

    with pytest.raises(ValueError, match=r"MaPLe .*needs a ViT image tower.*ModifiedResNet"):
        CustomCLIP(maple_cfg(3), ["a", "b"], loaded_clip("rn"))
    with pytest.raises(ValueError, match="PROMPT_DEPTH must be >= 1"):
        CustomCLIP(maple_cfg(0), ["a", "b"], loaded_clip("vit"))
    deep = CustomCLIP(maple_cfg(12), ["a", "b"], loaded_clip("vit")).prompt_learner  # 4-layer towers: clipped
    assert len(deep.compound_prompts_text) == 3
