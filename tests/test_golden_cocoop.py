"""CoCoOp logits, loss and gradients equal the published code's (golden on the tiny ViT CLIP)."""
import torch
import torch.nn.functional as F

from conftest import golden
from vlprompt.config.setup import get_cfg


def build(loaded_clip, **overrides):
    from vlprompt_plugins.trainers.cocoop import CustomCLIP

    g = golden("cocoop_vit.pt")
    opts = ["TRAINER.COCOOP.N_CTX", "4", "TRAINER.COCOOP.CTX_INIT", "a photo of a", "TRAINER.COCOOP.PREC", "fp32"]
    for k, v in overrides.items():
        opts += [k, v]
    model = CustomCLIP(get_cfg(opts), g["classnames"], loaded_clip("vit"))
    with torch.no_grad():
        torch.testing.assert_close(model.prompt_learner.ctx, g["ctx"].float())  # init from "a photo of a"
        for name, value in g["meta_net"].items():
            dict(model.prompt_learner.meta_net.named_parameters())[name].copy_(value)
    return model, g


def test_cocoop_logits(loaded_clip):
    model, g = build(loaded_clip)
    assert torch.equal(model.prompt_learner.prompts.tokenized_prompts, g["tokenized_prompts"])
    model.eval()
    with torch.no_grad():
        torch.testing.assert_close(model(g["images"]), g["logits"], rtol=0, atol=3e-5)


def test_cocoop_loss_and_gradients(loaded_clip):
    model, g = build(loaded_clip)
    model.prompt_learner.train()
    loss = F.cross_entropy(model(g["images"]), g["labels"])
    loss.backward()
    assert abs(loss.item() - g["loss"].item()) <= 1e-5
    params = dict(model.named_parameters())
    for name, ref in g["grads"].items():
        grad = params[f"prompt_learner.{name}"].grad
        assert (grad - ref).abs().max() <= 2e-5 * ref.abs().max(), name
    learnable = sorted(n for n, p in params.items() if p.requires_grad)
    assert learnable == sorted(["prompt_learner.ctx"] + [f"prompt_learner.meta_net.{k}" for k in g["meta_net"]])


def test_chunked_text_batches_give_the_same_logits(loaded_clip):
    model, g = build(loaded_clip)
    small, _ = build(loaded_clip, **{"TRAINER.COCOOP.MAX_TEXT_BATCH": "5"})  # one image per chunk
    small.load_state_dict(model.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(small(g["images"]), model(g["images"]), rtol=1e-6, atol=1e-5)
