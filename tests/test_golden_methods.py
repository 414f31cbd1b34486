"""ZeroshotCLIP and CoOp logits, loss and gradients equal the published code's (goldens on the tiny CLIPs)."""
import pytest
import torch
import torch.nn.functional as F

from conftest import golden
from vlprompt.clip.tokens import bpe_length, tokenize
from vlprompt.config.setup import get_cfg

COOP_FILES = ["coop_vit_n4_init_end.pt", "coop_vit_n16_rand_end.pt", "coop_vit_n16_rand_csc_middle.pt",
              "coop_vit_n8_rand_front.pt", "coop_rn_n16_rand_end.pt"]
CONFIGS = {  # N_CTX, CTX_INIT, CSC, CLASS_TOKEN_POSITION (golden README table)
    "coop_vit_n4_init_end.pt": (4, "a photo of a", False, "end"),
    "coop_vit_n16_rand_end.pt": (16, "", False, "end"),
    "coop_vit_n16_rand_csc_middle.pt": (16, "", True, "middle"),
    "coop_vit_n8_rand_front.pt": (8, "", False, "front"),
    "coop_rn_n16_rand_end.pt": (16, "", False, "end"),
}


def test_tokenizer_matches_published_ids():
    g = golden("tokenizer.pt")
    assert torch.equal(tokenize(g["names"]), g["ids"])
    assert [bpe_length(n) for n in g["names"]] == g["name_lens"]


def coop_model(loaded_clip, fname):
    from vlprompt_plugins.trainers.coop import CustomCLIP

    n_ctx, init, csc, pos = CONFIGS[fname]
    g = golden(fname)
    cfg = get_cfg(["TRAINER.COOP.N_CTX", str(n_ctx), "TRAINER.COOP.CTX_INIT", init, "TRAINER.COOP.CSC", str(csc),
                   "TRAINER.COOP.CLASS_TOKEN_POSITION", pos, "TRAINER.COOP.PREC", "fp32"])
    model = CustomCLIP(cfg, g["classnames"], loaded_clip("vit" if "_vit_" in fname else "rn"))
    return model, g


@pytest.mark.parametrize("fname", COOP_FILES)
def test_coop_prompts_and_logits(loaded_clip, fname):
    model, g = coop_model(loaded_clip, fname)
    assert torch.equal(model.prompt_learner.prompts.tokenized_prompts, g["tokenized_prompts"])
    if g["ctx_as_built"] is not None:  # CTX_INIT: the context is the init words' embeddings
        torch.testing.assert_close(model.prompt_learner.ctx.data, g["ctx_as_built"].float())
    assert model.prompt_learner.ctx.shape == g["ctx"].shape
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(g["ctx"])
        torch.testing.assert_close(model.text_features(), g["text_features"], rtol=1e-5, atol=3e-5)
        torch.testing.assert_close(model(g["images"]), g["logits"], rtol=1e-5, atol=3e-5)


@pytest.mark.parametrize("fname", COOP_FILES)
def test_coop_loss_and_gradients(loaded_clip, fname):
    model, g = coop_model(loaded_clip, fname)
    with torch.no_grad():
        model.prompt_learner.ctx.copy_(g["ctx"])
    model.prompt_learner.train()
    loss = F.cross_entropy(model(g["images"]), g["labels"])
    loss.backward()
    assert abs(loss.item() - g["loss"].item()) <= 1e-5
    grad, ref = model.prompt_learner.ctx.grad, g["grad_ctx"]
    assert (grad - ref).abs().max() <= 2e-5 * ref.abs().max()
    learnable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert learnable == ["prompt_learner.ctx"]


def test_zeroshot_and_ensemble_match_published(loaded_clip):
    from vlprompt.clip.text import PromptedTextEncoder
    from vlprompt.clip.zeroshot import zeroshot_text_features
    from vlprompt_plugins.trainers.zsclip import ZeroshotCLIP, ZeroshotCLIP2, ZeroshotModel

    g = golden("zsclip_vit.pt")
    clip_model = loaded_clip("vit")
    cfg = get_cfg(["DATASET.NAME", "DescribableTextures"])
    for key, cls in (("zsclip", ZeroshotCLIP), ("zsclip2", ZeroshotCLIP2)):
        templates = cls.templates_for(cfg.DATASET.NAME)
        assert templates == g[key]["templates"]
        feats = zeroshot_text_features(PromptedTextEncoder(clip_model), g["classnames"], templates)
        with torch.no_grad():
            logits = ZeroshotModel(clip_model, feats)(g["images"])
        torch.testing.assert_close(feats, g[key]["text_features"], rtol=1e-5, atol=2e-5)
        torch.testing.assert_close(logits, g[key]["logits"], rtol=1e-5, atol=2e-5)
