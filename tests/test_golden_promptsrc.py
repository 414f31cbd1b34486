"""PromptSRC against the published code (golden on the tiny ViT CLIP): each loss term, the total, the features,
gradients, eval logits, the Gaussian prompt aggregation (GPA) weights and aggregated state; plus one end-to-end
run through the scripts (slow).

Two references, as for MaPLe: ``nohalf`` (the published code with its ``.half()`` casts patched out and the
zero-shot image encoder in float32), which this clean float32 implementation matches tightly, and ``published``
(the casts kept, the teacher image branch in float16), matched loosely. Tolerances are the golden README's
(those of the intermediate features are this file's).
Measured here (CPU, 2 threads) against nohalf: logits 1.0e-5, loss terms <= 6e-8 (total <= 5e-7),
zero-shot logits 4.8e-6, features <= 1.8e-7, grads <= 3.3e-6 x max|grad|, teacher features 6e-8; against
published: logits 1.4e-3, loss 5.6e-4, zero-shot logits 7.6e-3, grads <= 6.6e-4 x max|grad|; GPA weights
<= 1.6e-16 relative, aggregate <= 1.2e-7 (published float32 sum) and <= 6e-8 (float64 reference).
"""
import math

import pytest
import torch
import yaml
from torch import nn

from conftest import REPO, golden, repo_copy, run_script
from vlprompt.clip.independent_prompts import PUBLISHED_KEYS
from vlprompt.config.setup import get_cfg
from vlprompt.engine.checkpoint_keys import to_published

TOL = {"nohalf": dict(logits=3e-5, loss=1e-5, zero_shot_logits=3e-5, features=1e-5, grad=2e-5),
       "published": dict(logits=3e-3, loss=1e-3, zero_shot_logits=2e-2, features=1e-3, grad=2e-3)}
TERMS = ("loss_ce", "loss_scl_text", "loss_scl_image", "loss_scl_logits", "loss_scl", "loss")


def src():
    from vlprompt_plugins.trainers import promptsrc
    return promptsrc


@pytest.fixture(scope="module")
def g():
    return golden("promptsrc_vit.pt")


@pytest.fixture(scope="module")
def model(loaded_clip, g):
    """The published base-to-new config on the tiny ViT (depth 9 -> all 4 layers), prompts set to the golden's."""
    m = src().CustomCLIP(get_cfg(["TRAINER.PROMPTSRC.PREC", "fp32"]), g["classnames"], loaded_clip("vit"))
    params = to_published(dict(m.prompts.named_parameters()), PUBLISHED_KEYS)  # the golden's names
    with torch.no_grad():
        for name, value in g["params"].items():
            params[name].copy_(value)
    return m


@pytest.fixture(scope="module")
def trained(model, g):
    """One training step's outputs, loss terms and gradients."""
    model.zero_grad(set_to_none=True)
    out = model.train_outputs(g["images"])
    losses = src().promptsrc_losses(out, g["labels"], g["loss_weights"]["TEXT_LOSS_WEIGHT"],
                                    g["loss_weights"]["IMAGE_LOSS_WEIGHT"])
    losses["loss"].backward()
    grads = to_published({n: p.grad.clone() for n, p in model.prompts.named_parameters() if p.grad is not None},
                         PUBLISHED_KEYS)
    return out, losses, grads


def test_build_as_published(model, g):
    pl = model.prompts.prompt_learner
    learnable = {n for n, p in model.prompts.named_parameters() if p.requires_grad}
    assert {n for n, p in model.named_parameters() if p.requires_grad} == {f"prompts.{n}" for n in learnable}
    assert set(to_published(dict.fromkeys(learnable), PUBLISHED_KEYS)) == set(g["checks"]["trainable_parameters"])
    assert torch.equal(pl.ctx.detach(), g["ctx"])  # "a photo of a" embedded, N_CTX_TEXT 4
    assert torch.equal(pl.prompts.tokenized_prompts, g["tokenized_prompts"])
    assert pl.prompts.prompt_texts[1] == "a photo of a golden retriever."
    from vlprompt.clip.tokens import IMAGENET_TEMPLATES
    assert IMAGENET_TEMPLATES == g["teacher_templates"]
    # teacher: mean of UNnormalised features over the 60 templates, normalised after (measured 6e-8)
    ref = torch.nn.functional.normalize(g["fixed_embeddings"], dim=-1)
    assert (model.fixed_embeddings - ref).abs().max().item() <= 1e-6


def test_eval_logits(model, g):
    model.eval()
    with torch.no_grad():
        logits = model(g["images"])
    for ref, tol in TOL.items():
        diff = (logits - g[ref]["logits"]).abs().max().item()
        assert diff <= tol["logits"], f"{ref}: max|logits diff| {diff:.2e}"


def test_loss_terms_features_and_total(trained, g):
    out, losses, _ = trained
    for ref, tol in TOL.items():
        r = g[ref]
        for term in TERMS:
            diff = abs(losses[term].item() - r[term].item())
            assert diff <= tol["loss"], f"{ref}: {term} differs by {diff:.2e}"
        for key in ("text_features", "image_features", "zero_shot_image_features"):
            diff = (out[key] - r[key].float()).abs().max().item()
            assert diff <= tol["features"], f"{ref}: {key} differs by {diff:.2e}"
        diff = (out["zero_shot_logits"] - r["zero_shot_logits"].float()).abs().max().item()
        assert diff <= tol["zero_shot_logits"], f"{ref}: zero_shot_logits differ by {diff:.2e}"
        diff = (out["logits"] - r["train_logits"]).abs().max().item()
        assert diff <= tol["logits"], f"{ref}: train logits differ by {diff:.2e}"


def test_gradients_only_prompts(trained, model, g):
    _, _, grads = trained
    assert all(p.grad is None for n, p in model.named_parameters() if not p.requires_grad)
    for ref, tol in TOL.items():
        assert set(grads) == set(g[ref]["grads"])
        for name, grad in g[ref]["grads"].items():
            rel = ((grads[name] - grad).abs().max() / grad.abs().max()).item()
            assert rel <= tol["grad"], f"{ref}: {name} max|grad diff| / max|grad| = {rel:.2e}"


def test_published_whole_model_checkpoint_loads(model, g, tmp_path):
    """A published checkpoint holds the whole CustomCLIP (float16 under PREC fp16): the prompts load, the frozen
    CLIP, the zero-shot image encoder and the token buffers are skipped."""
    from vlprompt.engine.checkpoint_keys import load_published

    prompts = {"prompt_learner.ctx": g["ctx"], **g["params"]}
    whole = {**{k: v.half() for k, v in prompts.items()}, "logit_scale": torch.tensor(4.6),
             "prompt_learner.token_prefix": torch.zeros(5, 1, 512),
             "prompt_learner.token_suffix": torch.zeros(5, 72, 512),
             "prompt_learner.ZS_image_encoder.conv1.weight": torch.zeros(768, 3, 16, 16),
             "image_encoder.conv1.weight": torch.zeros(768, 3, 16, 16), "text_encoder.ln_final.weight": torch.ones(512)}
    target = model.prompts
    saved = {k: v.clone() for k, v in target.state_dict().items()}
    try:
        load_published(target, whole, PUBLISHED_KEYS, "published.pth.tar", src().PromptSRC.ignored_checkpoint_keys)
        for k, v in prompts.items():
            assert torch.equal(to_published(target.state_dict(), PUBLISHED_KEYS)[k], v.half().float()), k
    finally:
        target.load_state_dict(saved)


def test_docs_cover_every_key():
    text = (REPO / "docs/methods/promptsrc.md").read_text()
    for key in get_cfg().TRAINER.PROMPTSRC:
        assert f"`{key}`" in text, f"docs/methods/promptsrc.md does not document TRAINER.PROMPTSRC.{key}"


@pytest.mark.parametrize("setting,config", [("base2new", "vit_b16_c2_ep20_batch4_4+4ctx"),
                                            ("cross_datasets", "vit_b16_c2_ep20_batch4_4+4ctx_cross_datasets"),
                                            ("few_shot", "vit_b16_c2_ep50_batch4_4+4ctx_few_shot")])
def test_gpa_weights_of_the_published_configs(g, setting, config):
    ref = g["gpa_weights_published_configs"][setting]
    with open(REPO / "configs/trainers/PromptSRC" / f"{config}.yaml") as f:
        ours = yaml.safe_load(f)
    c = ours["TRAINER"]["PROMPTSRC"]
    assert (ours["OPTIM"]["MAX_EPOCH"], c["GPA_MEAN"], c["GPA_STD"]) == (ref["max_epoch"], ref["gpa_mean"],
                                                                          ref["gpa_std"])
    weights = torch.tensor(src().gpa_weights(ref["max_epoch"], ref["gpa_mean"], ref["gpa_std"]), dtype=torch.float64)
    torch.testing.assert_close(weights, ref["weights"], rtol=1e-12, atol=0)


class _Stub:
    """What the GPA hook reads of a trainer."""

    def __init__(self, max_epoch):
        self.max_epoch, self.start_epoch, self.epoch = max_epoch, 0, 0


def _stub_model(run):
    m = nn.Module()
    m.prompt_learner, m.image_encoder, m.frozen = nn.Module(), nn.Module(), nn.Module()
    m.prompt_learner.ctx = nn.Parameter(torch.zeros(4, 8))
    m.image_encoder.VPT = nn.Parameter(torch.zeros(2, 8))
    m.frozen.weight_fp32 = nn.Parameter(run["frozen_before"]["frozen.weight_fp32"].clone(), requires_grad=False)
    m.frozen.weight_fp16 = nn.Parameter(run["frozen_before"]["frozen.weight_fp16"].clone(), requires_grad=False)
    return m


def _drive(hook, model, run, epochs):
    """The epochs' end states of the golden's stub run, each followed by the hook's after_epoch."""
    for e in epochs:
        hook.trainer.epoch = e
        with torch.no_grad():
            for name, states in run["prompt_states"].items():
                model.get_parameter(name).copy_(states[e])
        hook.after_epoch()


@pytest.mark.parametrize("name", ["ep20_mean15_std1", "ep5_mean15_std1", "ep4_mean2_std1"])
def test_gpa_aggregates_as_published(g, name):
    run = g["gpa_runs"][name]
    weights = src().gpa_weights(run["max_epoch"], run["gpa_mean"], run["gpa_std"])
    torch.testing.assert_close(torch.tensor(weights, dtype=torch.float64), run["weights"], rtol=1e-12, atol=0)
    assert [weights[t["epoch"] - 1] for t in run["trace"]] == pytest.approx([t["weight_used"] for t in run["trace"]],
                                                                             rel=1e-12)
    model = _stub_model(run)
    hook = src().GaussianPromptAggregation(model, weights)
    hook.trainer = _Stub(run["max_epoch"])
    _drive(hook, model, run, range(run["max_epoch"]))
    for key in run["prompt_states"]:  # measured <= 2e-7 (the published sum is float32, ours float64)
        torch.testing.assert_close(model.get_parameter(key).detach(), run["aggregated_state"][key], rtol=0, atol=1e-6)
        torch.testing.assert_close(model.get_parameter(key).detach().double(),
                                   run["aggregated_prompts_float64_reference"][key], rtol=0, atol=1e-6)
    for key, before in run["frozen_before"].items():  # deliberate: frozen weights are not aggregated (rounded)
        assert torch.equal(model.get_parameter(key), before)


def test_gpa_state_resumes_exactly(g):
    run = g["gpa_runs"]["ep4_mean2_std1"]
    weights = src().gpa_weights(4, 2, 1)
    whole, first, second = (_stub_model(run) for _ in range(3))
    hooks = [src().GaussianPromptAggregation(m, weights) for m in (whole, first, second)]
    for h in hooks:
        h.trainer = _Stub(4)
    _drive(hooks[0], whole, run, range(4))
    _drive(hooks[1], first, run, range(2))  # killed after epoch 2, resumed from the saved run state
    hooks[2].load_state_dict(hooks[1].state_dict())
    hooks[2].trainer.start_epoch = 2
    hooks[2].before_train()
    _drive(hooks[2], second, run, range(2, 4))
    for key in run["prompt_states"]:
        assert torch.equal(whole.get_parameter(key), second.get_parameter(key))
    assert math.isclose(hooks[2].weight_seen, 1.0, rel_tol=1e-12)


@pytest.mark.slow
def test_scripts_train_aggregate_resume_and_evaluate(dtd_root, tiny_clip, tmp_path):
    """base2new_train.sh (2 epochs, GPA N(1, 1): weights 0.62 / 0.38) -> the epoch-2 checkpoint is the aggregate
    -> a run killed in epoch 2 resumes to the same bits (the running sum is in the run state) -> base2new_test.sh."""
    from vlprompt import cli
    from vlprompt.testing.resume_check import run_killed

    work = repo_copy(tmp_path / "repo")
    cfg = "vit_b16_c2_ep20_batch4_4+4ctx"
    keys = ["MODEL.BACKBONE.NAME", tiny_clip["vit_s"], "INPUT.SIZE", "(32, 32)", "TRAINER.PROMPTSRC.PREC", "fp32",
            "OPTIM.MAX_EPOCH", "2", "OPTIM.LR", "0.05", "TRAIN.CHECKPOINT_FREQ", "1", "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "TRAINER.PROMPTSRC.GPA_MEAN", "1", "TRAINER.PROMPTSRC.GPA_STD", "1",
            "VERBOSE", "False"]
    run_script(work, "scripts/promptsrc/base2new_train.sh", "dtd", "1", cfg, "2", *keys, data=dtd_root,
               OMP_NUM_THREADS="1")
    base = work / "output/base2new/train_base/dtd/shots_2/PromptSRC" / cfg / "seed1"
    log = (base / "log.txt").read_text()
    assert "Using GPA model for final inference" in log and "* accuracy:" in log
    assert "loss_scl" not in log  # the published log line: loss only

    def saved(run, epoch):
        ckpt = torch.load(run / "VLPromptLearner" / f"model.pth.tar-{epoch}", weights_only=True)["state_dict"]
        gpa = torch.load(run / "run_state" / f"state.pth.tar-{epoch}", weights_only=True)["extra"]["gpa"]
        gpa["total"] = to_published(gpa["total"], PUBLISHED_KEYS)
        return ckpt, gpa

    (ckpt1, gpa1), (ckpt2, gpa2) = saved(base, 1), saved(base, 2)
    assert set(ckpt2) == {"prompt_learner.ctx", "image_encoder.VPT"} | {
        f"{tower}.transformer.resblocks.1.VPT_shallow" for tower in ("image_encoder", "text_encoder")}
    w1, w2 = src().gpa_weights(2, 1, 1)
    assert gpa1["epochs_seen"] == 1 and gpa1["weight_seen"] == w1 and gpa2["epochs_seen"] == 2
    for k in ckpt2:
        torch.testing.assert_close(gpa1["total"][k], w1 * ckpt1[k].double(), rtol=0, atol=1e-12)
        torch.testing.assert_close(ckpt2[k].double(), gpa2["total"][k] / (w1 + w2), rtol=0, atol=1e-6)
        assert (ckpt2[k] - ckpt1[k]).abs().max() > 1e-3  # epoch 2 trained on, and counts

    resumed = tmp_path / "resumed"
    argv = ["--root", dtd_root, "--seed", "1", "--trainer", "PromptSRC", "--dataset-config-file",
            str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / f"configs/trainers/PromptSRC/{cfg}.yaml"),
            "--output-dir", str(resumed), "DATASET.NUM_SHOTS", "2", "DATASET.SUBSAMPLE_CLASSES", "base", *keys]
    run_killed(argv, "step:2:2")
    assert cli.main(argv) == 0
    ckpt_r, gpa_r = saved(resumed, 2)
    assert all(torch.equal(ckpt_r[k], ckpt2[k]) and torch.equal(gpa_r["total"][k], gpa2["total"][k]) for k in ckpt2)

    run_script(work, "scripts/promptsrc/base2new_test.sh", "dtd", "1", cfg, "2", "2", *keys, data=dtd_root,
               OMP_NUM_THREADS="1")
    new_log = (work / "output/base2new/test_new/dtd/shots_2/PromptSRC" / cfg / "seed1" / "log.txt").read_text()
    assert "Loading weights to VLPromptLearner from" in new_log and "* total: 46" in new_log
