"""KgCoOp logits, CE, knowledge-guidance score, loss and ctx gradients equal the published code's (goldens on
the tiny ViT CLIP), and a base-to-new run through the scripts.

Tolerances (golden README): against ``hc_fp32`` (hand-crafted features from the fp32 tower, what this
implementation computes with PREC fp32) logits atol 3e-5, loss_ce / kg_score / loss atol 1e-5, grad_ctx
max|diff| <= 2e-5 * max|grad|; against ``published`` (its float16 second CLIP) kg_score atol 5e-4, loss atol 5e-3,
grad_ctx <= 2e-3 * max|grad|.
"""
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import golden, repo_copy, run_script
from vlprompt.config.setup import get_cfg

FILES = {  # N_CTX, CTX_INIT, DATASET.NAME (golden README table)
    "kgcoop_vit_default.pt": (4, "a photo of a", "DescribableTextures"),
    "kgcoop_vit_rand16_w1.pt": (16, "", "EuroSAT"),
}


def build(loaded_clip, fname):
    from vlprompt_plugins.trainers.kgcoop import CustomCLIP

    n_ctx, init, dataset = FILES[fname]
    g = golden(fname)
    cfg = get_cfg(["TRAINER.KGCOOP.N_CTX", str(n_ctx), "TRAINER.KGCOOP.CTX_INIT", init, "TRAINER.KGCOOP.PREC", "fp32",
                   "TRAINER.KGCOOP.W", str(g["W"]), "DATASET.NAME", dataset])
    return CustomCLIP(cfg, g["classnames"], loaded_clip("vit")), g


def train_step(model, g):
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(g["ctx"])
    model.prompt_learner.train()
    logits, score = model.logits_and_score(g["images"])
    ce = F.cross_entropy(logits, g["labels"])
    loss = ce + g["W"] * score
    loss.backward()
    return logits.detach(), ce.item(), score.item(), loss.item(), model.prompt_learner.ctx.grad


@pytest.mark.parametrize("fname", FILES)
def test_kgcoop_matches_published(loaded_clip, fname):
    model, g = build(loaded_clip, fname)
    from vlprompt_plugins.trainers.kgcoop import kgcoop_template

    assert kgcoop_template(FILES[fname][2]) == g["hc_template"]
    assert model.prompt_learner.prompts.prompt_texts == g["prompt_texts"]
    assert torch.equal(model.prompt_learner.prompts.tokenized_prompts, g["tokenized_prompts"])
    if g["ctx_as_built"] is not None:  # CTX_INIT: the context is the embeddings of "a photo of a"
        torch.testing.assert_close(model.prompt_learner.ctx.data, g["ctx_as_built"], rtol=0, atol=0)
    assert model.prompt_learner.ctx.shape == g["ctx"].shape
    torch.testing.assert_close(model.ori_embedding, g["hc_text_features_fp32"], rtol=0, atol=1e-5)
    assert (model.ori_embedding - g["hc_text_features_published"].float()).abs().max() <= 5e-4
    assert [n for n, p in model.named_parameters() if p.requires_grad] == ["prompt_learner.ctx"]

    logits, ce, score, loss, grad = train_step(model, g)
    for variant, tol_score, tol_loss, tol_grad in (("hc_fp32", 1e-5, 1e-5, 2e-5), ("published", 5e-4, 5e-3, 2e-3)):
        ref = g[variant]
        torch.testing.assert_close(logits, ref["logits"], rtol=0, atol=3e-5)
        assert abs(ce - ref["loss_ce"].item()) <= 1e-5
        assert abs(score - ref["kg_score"].item()) <= tol_score, variant
        assert abs(loss - ref["loss"].item()) <= tol_loss, variant
        assert (grad - ref["grad_ctx"]).abs().max() <= tol_grad * ref["grad_ctx"].abs().max(), variant
    model.prompt_learner.eval()
    # a published checkpoint's prompt_learner: ctx, the unused bias_vectors / meta_net, the token buffers
    from vlprompt.engine.checkpoint import load_state_dict_checked
    from vlprompt_plugins.trainers.kgcoop import KgCoOp

    d = g["ctx"].shape[-1]
    published = {"ctx": g["ctx"] * 2, "bias_vectors": torch.zeros(1, d), "meta_net.linear1.weight": torch.zeros(d, d),
                 "meta_net.linear1.bias": torch.zeros(d), "token_prefix": torch.zeros(5, 1, d),
                 "token_suffix": torch.zeros(5, 72, d)}
    load_state_dict_checked(model.prompt_learner, published, "published", KgCoOp.ignored_checkpoint_keys)
    assert torch.equal(model.prompt_learner.ctx.data, g["ctx"] * 2)
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(g["ctx"])
    with torch.no_grad():
        text = F.normalize(model.text_features(), dim=-1)
        torch.testing.assert_close(text, g["published"]["text_features"], rtol=0, atol=1e-5)
        torch.testing.assert_close(model(g["images"]), g["hc_fp32"]["logits"], rtol=0, atol=3e-5)


def test_kgcoop_seed1_context_equals_published(tiny_clip):
    from vlprompt.clip.load import load_clip
    from vlprompt.utils.seed import set_random_seed
    from vlprompt_plugins.trainers.kgcoop import CustomCLIP

    g = golden("kgcoop_vit_rand16_w1.pt")
    cfg = get_cfg(["TRAINER.KGCOOP.N_CTX", "16", "TRAINER.KGCOOP.PREC", "fp32", "DATASET.NAME", "EuroSAT"])
    set_random_seed(1)  # as train.py: the CLIP construction, then the context, draw from the seeded RNG
    model = CustomCLIP(cfg, g["classnames"], load_clip(tiny_clip["vit"]))
    assert torch.equal(model.prompt_learner.ctx.data, g["ctx_as_built_seed1"])


@pytest.mark.slow
def test_kgcoop_base_to_new_through_scripts(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)", "OPTIM.MAX_EPOCH", "1",
            "TRAINER.KGCOOP.PREC", "fp32", "DATALOADER.NUM_WORKERS", "0", "TRAIN.TENSORBOARD", "False"]
    for script, extra in (("base2new_train.sh", []), ("base2new_test.sh", ["1"])):
        run_script(work, f"scripts/kgcoop/{script}", "dtd", "1", "vit_b16_ep100_ctxv1", "2", *extra, *opts,
                   data=dtd_root)
    run = "dtd/shots_2/KgCoOp/vit_b16_ep100_ctxv1/seed1"
    train_log = (work / f"output/base2new/train_base/{run}/log.txt").read_text()
    assert 'Initial context: "a photo of a"' in train_log
    assert (work / f"output/base2new/train_base/{run}/prompt_learner/model.pth.tar-1").is_file()
    new_log = (work / f"output/base2new/test_new/{run}/log.txt").read_text()
    assert "Loading weights to prompt_learner" in new_log
    assert re.search(r"^\* accuracy: [0-9.]+%$", new_log, re.M)
