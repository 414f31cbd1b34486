"""InstancePrompt: the training picks, the top-k inference rule, checkpoints, and runs through its scripts."""
import re

import pytest
import torch
import torch.nn.functional as F

from conftest import REPO, repo_copy, run_script
from vlprompt import cli
from vlprompt.config.setup import get_cfg
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY

OVERRIDES = ["INPUT.SIZE", "(64, 64)", "TRAINER.INSTANCEPROMPT.PREC", "fp32", "DATALOADER.NUM_WORKERS", "0",
             "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "VERBOSE", "False"]


def plugin():
    import vlprompt_plugins.trainers.instance_prompt as ip
    return ip


def test_picks_hold_the_own_prompt_and_k_per_class():
    ip = plugin()
    members = torch.tensor([[0, 1, 2, -1], [3, 4, -1, -1], [5, 6, 7, 8], [9, -1, -1, -1]])
    label_of = {i: c for c, row in enumerate(members.tolist()) for i in row if i >= 0}
    own = torch.tensor([0, 4, 7, 9, 1, 5])
    labels = torch.tensor([label_of[i] for i in own.tolist()])
    g = torch.Generator().manual_seed(0)
    for _ in range(50):
        picks = ip.sample_picks(labels, own, members, k=2, generator=g)
        assert picks.shape == (6, 4, 2)
        for b in range(6):
            assert picks[b, labels[b], 0] == own[b]  # the image's own prompt, always among its class's picks
            for c in range(4):
                assert all(label_of[int(i)] == c for i in picks[b, c])  # picks of a class are that class's prompts
                if c != labels[b] and (members[c] >= 0).sum() >= 2:
                    assert picks[b, c, 0] != picks[b, c, 1]  # 2 distinct prompts when the class has them
            if (members[labels[b]] >= 0).sum() >= 2:
                assert picks[b, labels[b], 1] != own[b]


def test_topk_mean_inference_equals_brute_force():
    ip = plugin()
    torch.manual_seed(0)
    n_cls, p, e = 5, 7, 16
    cand = F.normalize(torch.randn(n_cls, p, e), dim=-1)
    mask = torch.rand(n_cls, p) > 0.3
    mask[:, 0] = True
    img = torch.randn(9, e)
    logits = ip.topk_mean_logits(img, cand, mask, k=4, scale=torch.tensor(10.0), chunk=4)
    ref = torch.zeros(9, n_cls)
    for b in range(9):
        x = F.normalize(img[b], dim=0)
        for c in range(n_cls):
            valid = [j for j in range(p) if mask[c, j]]
            best = sorted(valid, key=lambda j: -float(x @ cand[c, j]))[:4]
            rep = F.normalize(torch.stack([cand[c, j] for j in best]).mean(0), dim=0)
            ref[b, c] = 10.0 * x @ rep
    torch.testing.assert_close(logits, ref, rtol=1e-5, atol=1e-5)


def build(dtd_root, clip, tmp_path, *extra):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS",
                   "2", "MODEL.BACKBONE.NAME", clip, "OPTIM.NAME", "sgd", "OUTPUT_DIR", str(tmp_path),
                   "TRAINER.NAME", "InstancePrompt", *OVERRIDES[:-2], *extra])
    return TRAINER_REGISTRY.get("InstancePrompt")(cfg)


def test_one_step_encodes_every_instance_prompt_once(dtd_root, tiny_clip, tmp_path):
    t = build(dtd_root, tiny_clip["rn"], tmp_path)
    pl = t.model.prompt_learner
    assert pl.instance_ctx.shape == (47 * 2, 4, 128) and pl.global_ctx.shape == (4, 128)
    calls = []
    t.model.text_encoder.register_forward_hook(lambda m, i, o: calls.append(o.shape[0]))
    t.set_train_mode(True)
    t.batch_idx = 0
    before = pl.instance_ctx.detach().clone()
    batch = next(iter(t.build_train_loader()))
    t.forward_backward(batch)
    assert calls == [47 * 2]  # one encoding of all instance prompts per step
    changed = (pl.instance_ctx.detach() != before).flatten(1).any(1)
    assert changed.sum() > 0


def test_context_mean_inference_runs(dtd_root, tiny_clip, tmp_path):
    t = build(dtd_root, tiny_clip["rn"], tmp_path, "TRAINER.INSTANCEPROMPT.INFERENCE", "context_mean")
    images = next(iter(t.dm.test_loader))["img"][:4]
    with torch.no_grad():
        assert t.model_inference(images).shape == (4, 47)


@pytest.mark.slow
def test_main_and_base_to_new_scripts(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["rn"], "OPTIM.MAX_EPOCH", "1", *OVERRIDES]

    def run(script, *argv):
        run_script(work, f"scripts/instance_prompt/{script}", *argv, *opts, data=dtd_root)

    run("main.sh", "dtd", "1", "rn50_ep100", "2")
    log = (work / "output/dtd/InstancePrompt/rn50_ep100_2shots/seed1/log.txt").read_text()
    assert re.search(r"^\* accuracy: [0-9.]+%$", log, re.M) and "* total: 94" in log
    run("base2new_train.sh", "dtd", "1", "vit_b16_ep50", "2")
    run("base2new_test.sh", "dtd", "1", "vit_b16_ep50", "2", "1")
    run_dir = "dtd/shots_2/InstancePrompt/vit_b16_ep50/seed1"
    ckpt = torch.load(work / "output/base2new/train_base" / run_dir / "prompt_learner/model.pth.tar-1",
                      weights_only=True)
    assert ckpt["state_dict"]["instance_ctx"].shape == (24 * 2, 4, 128)
    new_log = (work / "output/base2new/test_new" / run_dir / "log.txt").read_text()
    assert "Loading weights to prompt_learner" in new_log and "* total: 46" in new_log


def test_eval_only_reproduces_training_accuracy(dtd_root, tiny_clip, tmp_path):
    common = ["--root", dtd_root, "--seed", "1", "--trainer", "InstancePrompt",
              "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
              "--config-file", str(REPO / "configs/trainers/InstancePrompt/rn50_ep50.yaml")]
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["rn"], "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "2", *OVERRIDES]
    out, ev = tmp_path / "run", tmp_path / "eval"
    cli.main(common + ["--output-dir", str(out)] + opts)
    cli.main(common + ["--output-dir", str(ev), "--model-dir", str(out), "--load-epoch", "1", "--eval-only"]
             + opts[:-8] + ["DATASET.NUM_SHOTS", "1"] + OVERRIDES)  # another few-shot set: the checkpoint's prompts count
    acc = lambda p: re.findall(r"^\* accuracy: ([0-9.]+)%", p.read_text(), re.M)  # noqa: E731
    assert acc(ev / "log.txt") == acc(out / "log.txt")


# ---------------------------------------------------------------- which prompts are a class's candidates
def test_candidate_pool_topk_equals_brute_force(dtd_root, tiny_clip, tmp_path):
    t = build(dtd_root, tiny_clip["rn"], tmp_path, "TRAINER.INSTANCEPROMPT.CANDIDATES", "all", "DATASET.NUM_SHOTS", "1",
              "DATASET.SUBSAMPLE_CLASSES", "base")  # 24 instance prompts x 24 classes
    model, pl = t.model, t.model.prompt_learner
    n_inst, n_cls = pl.instance_ctx.shape[0], len(t.classnames)
    with torch.no_grad():
        pl.instance_ctx.normal_(std=0.5)  # distinct instance prompts, so that the top-k is a real choice
        images = next(iter(t.dm.test_loader))["img"][:3]
        t.forget_precomputed()
        logits = t.model_inference(images)
        # every (instance context, class name) pair encoded directly, class-major
        pairs = model.encode(torch.arange(n_inst).repeat(n_cls), torch.arange(n_cls).repeat_interleave(n_inst))
        feats = pairs.view(n_cls, n_inst, -1)
        x = model.image_features(images)
    ref = torch.zeros(3, n_cls)
    for b in range(3):
        for c in range(n_cls):
            sims = (feats[c] @ x[b]).tolist()
            best = sorted(range(n_inst), key=lambda j: -sims[j])[:4]  # 4 of the 24 pairs of class c
            ref[b, c] = x[b] @ F.normalize(feats[c, best].mean(0), dim=0)
    torch.testing.assert_close(logits, model.logit_scale.exp() * ref, rtol=1e-4, atol=1e-4)


def test_literal_reading_at_shots_below_topk_is_the_class_mean(dtd_root, tiny_clip, tmp_path):
    t = build(dtd_root, tiny_clip["rn"], tmp_path)  # 2 shots, TOPK 4: every own prompt is kept
    assert t.method_cfg.CANDIDATES == "own"
    model, pl = t.model, t.model.prompt_learner
    with torch.no_grad():
        pl.instance_ctx.normal_(std=0.5)
        images = next(iter(t.dm.test_loader))["img"][:3]
        t.forget_precomputed()
        logits = t.model_inference(images)
        labels = pl.instance_labels
        text = model.encode(torch.arange(labels.numel()), labels)
        means = torch.stack([F.normalize(text[labels == c].mean(0), dim=0) for c in range(len(t.classnames))])
        ref = model.logit_scale.exp() * model.image_features(images) @ means.t()
    torch.testing.assert_close(logits, ref, rtol=1e-4, atol=1e-4)


def test_classes_without_own_prompts_use_the_pool_in_both_readings(dtd_root, tiny_clip, tmp_path):
    t = build(dtd_root, tiny_clip["rn"], tmp_path)
    pl = t.model.prompt_learner
    n_inst = pl.instance_ctx.shape[0]
    pl.instance_classnames = ["unseen" if name == t.classnames[0] else name for name in pl.instance_classnames]
    for pool in (False, True):  # class 0 now has no instance prompt of its own (a new class of base-to-new)
        ids, mask = t.model.candidates(pool=pool)
        assert ids.shape == (47, n_inst) and torch.equal(ids[0], torch.arange(n_inst))
        own_1 = [j for j, name in enumerate(pl.instance_classnames) if name == t.classnames[1]]
        assert ids[1][mask[1]].tolist() == (list(range(n_inst)) if pool else own_1)
    with pytest.raises(ConfigError, match="TRAINER.INSTANCEPROMPT.CANDIDATES"):
        build(dtd_root, tiny_clip["rn"], tmp_path, "TRAINER.INSTANCEPROMPT.CANDIDATES", "pool")
