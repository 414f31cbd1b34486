"""MetaProto: episodes from the base classes, the KL term, prompt-only inference, end to end through its scripts."""
import os
import re
import shutil

import pytest
import torch

from conftest import REPO, repo_copy, run_script
from vlprompt import cli
from vlprompt.config.setup import get_cfg
from vlprompt.data.samplers import EpisodicBatchSampler
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY

OVERRIDES = ["INPUT.SIZE", "(32, 32)", "TRAINER.METAPROTO.PREC", "fp32", "TRAINER.METAPROTO.N_WAY", "3",
             "TRAINER.METAPROTO.K_SHOT", "1", "TRAINER.METAPROTO.META_BATCH", "2",
             "TRAINER.METAPROTO.ITERS_PER_EPOCH", "2", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]


def trainer(dtd_root, clip, tmp_path, *extra):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS",
                   "4", "DATASET.SUBSAMPLE_CLASSES", "base", "MODEL.BACKBONE.NAME", clip, "OPTIM.NAME", "sgd",
                   "OUTPUT_DIR", str(tmp_path), "TRAINER.NAME", "MetaProto", *OVERRIDES[:-2], *extra])
    return TRAINER_REGISTRY.get("MetaProto")(cfg)


def test_episodes_are_n_way_k_plus_queries_from_base_classes(dtd_root, tiny_clip, tmp_path):
    t = trainer(dtd_root, tiny_clip["vit"], tmp_path)
    loader = t.build_train_loader()
    sampler = loader.batch_sampler
    assert len(loader) == 2 and sampler.per_class == 4  # every shot of the class: K=1 support + 3 queries
    base_names = set(t.classnames)
    items = t.dm.dataset.train_x
    for batch in sampler:
        assert len(batch) == 2 * 3 * 4
        for task in range(2):
            idx = batch[task * 12:(task + 1) * 12]
            labels = [items[i].label for i in idx]
            per_class = [labels[c * 4:(c + 1) * 4] for c in range(3)]
            assert all(len(set(g)) == 1 for g in per_class) and len({g[0] for g in per_class}) == 3
            assert len(set(idx)) == 12 and all(items[i].classname in base_names for i in idx)
    assert max(d.label for d in items) == len(base_names) - 1 == 23  # DTD base = the first 24 classes


def test_sampler_rejects_impossible_episodes():
    with pytest.raises(ValueError, match="need at least 5 classes"):
        EpisodicBatchSampler([0, 0, 1, 1], n_way=5, k_shot=1, tasks=1, iterations=1)
    with pytest.raises(ValueError, match="leave queries"):
        EpisodicBatchSampler([0, 0, 1, 1], n_way=2, k_shot=2, tasks=1, iterations=1)


def test_kl_is_zero_for_equal_distributions_and_its_gradient_reaches_the_prompts(dtd_root, tiny_clip, tmp_path):
    from vlprompt.engine.losses import kl_divergence as kl_mm_text

    x = torch.randn(6, 5)
    assert kl_mm_text(x, x).abs() < 1e-7 and kl_mm_text(x, x + 3.0).abs() < 1e-6  # softmax is shift-invariant
    assert kl_mm_text(x, torch.randn(6, 5)) > 0
    t = trainer(dtd_root, tiny_clip["vit"], tmp_path)
    out = t.compute_loss(t.to_device(next(iter(t.build_train_loader()))))
    assert set(out) == {"loss", "acc", "loss_cls", "loss_kl"}
    torch.testing.assert_close(out["loss"], out["loss_cls"] + 0.2 * out["loss_kl"])
    out["loss_kl"].backward()
    assert t.model.prompt_learner.ctx.grad.abs().sum() > 0
    attn = t.model.prototype_net.cross_attn.in_proj_weight
    assert attn.grad is not None and attn.grad.abs().sum() > 0  # KL flows into P_mm too (DETACH_MM False)


def test_inference_uses_only_the_prompts(dtd_root, tiny_clip, tmp_path):
    out = tmp_path / "run"
    common = ["--root", dtd_root, "--seed", "1", "--trainer", "MetaProto",
              "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
              "--config-file", str(REPO / "configs/trainers/MetaProto/vit_b16_ep100_n5_k2.yaml")]
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["vit"], "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "4",
            "DATASET.SUBSAMPLE_CLASSES", "base", *OVERRIDES]
    cli.main(common + ["--output-dir", str(out)] + opts)
    assert {"log.txt", "prompt_learner", "prototype_net"} <= set(os.listdir(out))
    trained_acc = re.findall(r"^\* accuracy: ([0-9.]+)%", (out / "log.txt").read_text(), re.M)
    shutil.rmtree(out / "prototype_net")  # a checkpoint without the training-only modules
    ev = tmp_path / "eval"
    cli.main(common + ["--output-dir", str(ev), "--model-dir", str(out), "--load-epoch", "1", "--eval-only"] + opts)
    assert re.findall(r"^\* accuracy: ([0-9.]+)%", (ev / "log.txt").read_text(), re.M) == trained_acc
    t = trainer(dtd_root, tiny_clip["vit"], tmp_path)
    images = next(iter(t.dm.test_loader))["img"]
    t.prepare_eval()
    before = t.model_inference(images)
    with torch.no_grad():
        for p in t.model.prototype_net.parameters():
            p.add_(torch.randn_like(p))
    t.prepare_eval()
    torch.testing.assert_close(t.model_inference(images), before)


@pytest.mark.slow
def test_metaproto_base_to_new_through_scripts(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["vit"], "OPTIM.MAX_EPOCH", "1", *OVERRIDES]
    for script, extra in (("base2new_train.sh", []), ("base2new_test.sh", ["1"])):
        run_script(work, f"scripts/metaproto/{script}", "dtd", "1", "vit_b16_ep100_n5_k2", "4", *extra, *opts,
                   data=dtd_root)
    new_log = (work / "output/base2new/test_new/dtd/shots_4/MetaProto/vit_b16_ep100_n5_k2/seed1/log.txt").read_text()
    assert "Loading weights to prompt_learner" in new_log and "prototype_net" not in new_log
    assert re.search(r"^\* accuracy: [0-9.]+%$", new_log, re.M)


# ---------------------------------------------------------------- temperature, MLP residual, prototype evaluation
def episode_logits(t, batch, monkeypatch):
    """(logits_mm, logits_text) of one compute_loss, as handed to the KL term."""
    import vlprompt_plugins.trainers.metaproto as mp

    seen = []
    monkeypatch.setattr(mp, "kl_divergence", lambda p, q, detach: seen.append((p, q)) or (p - q).sum() * 0)
    t.compute_loss(batch)
    return seen[0]


def test_temperature_key_sets_the_training_logit_scale(dtd_root, tiny_clip, tmp_path, monkeypatch):
    default = trainer(dtd_root, tiny_clip["vit_s"], tmp_path)
    batch = default.to_device(next(iter(default.build_train_loader())))
    mm, text = episode_logits(default, batch, monkeypatch)
    assert float(default.temperature()) == pytest.approx(100.0, rel=1e-4)  # CLIP's logit scale (tiny CLIP: log 100)
    for tau, factor in (("0.01", 1.0), ("0.05", 0.2)):
        other = trainer(dtd_root, tiny_clip["vit_s"], tmp_path, "TRAINER.METAPROTO.TAU", tau)
        other.model.load_state_dict(default.model.state_dict())  # same prompts and prototype net
        other.build_train_loader()  # compute_loss reads the episode layout from its sampler
        mm2, text2 = episode_logits(other, batch, monkeypatch)
        torch.testing.assert_close(mm2, factor * mm, rtol=1e-4, atol=1e-4)
        torch.testing.assert_close(text2, factor * text, rtol=1e-4, atol=1e-4)
    learned = trainer(dtd_root, tiny_clip["vit_s"], tmp_path, "TRAINER.METAPROTO.TAU", "0.05",
                      "TRAINER.METAPROTO.LEARN_TAU", "True")
    scale = learned.model.prototype_net.logit_scale
    assert scale.requires_grad and float(scale.detach().exp()) == pytest.approx(20.0)
    learned.compute_loss(learned.to_device(next(iter(learned.build_train_loader()))))["loss"].backward()
    assert scale.grad is not None and scale.grad.abs() > 0
    assert "logit_scale" not in dict(default.model.prototype_net.named_parameters())  # frozen by default
    with pytest.raises(ConfigError, match="TRAINER.METAPROTO.TAU"):
        trainer(dtd_root, tiny_clip["vit_s"], tmp_path, "TRAINER.METAPROTO.TAU", "-0.1")


def test_mlp_residual_off_is_the_plain_mlp():
    import vlprompt_plugins.trainers.metaproto as mp

    torch.manual_seed(0)
    on = mp.PrototypeNet(16, heads=2, residual=True)
    off = mp.PrototypeNet(16, heads=2, residual=False)
    off.load_state_dict(on.state_dict())
    text, support = torch.randn(3, 16), torch.randn(3, 5, 16)
    attended, _ = on.cross_attn(text.unsqueeze(1), support, support)
    h = text + attended.squeeze(1)
    torch.testing.assert_close(off(text, support), on.mlp(h))
    torch.testing.assert_close(on(text, support), h + on.mlp(h))
    assert not torch.allclose(on(text, support), off(text, support))


def test_prototype_evaluation_writes_both_numbers(dtd_root, tiny_clip, tmp_path):
    import json

    from vlprompt.errors import CheckpointError

    common = ["--root", dtd_root, "--seed", "1", "--trainer", "MetaProto",
              "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
              "--config-file", str(REPO / "configs/trainers/MetaProto/vit_b16_ep100_n5_k2.yaml")]
    opts = ["MODEL.BACKBONE.NAME", tiny_clip["vit_s"], "OPTIM.MAX_EPOCH", "1", "DATASET.NUM_SHOTS", "4",
            "DATASET.SUBSAMPLE_CLASSES", "base", "TRAINER.METAPROTO.EVAL_PROTOTYPES", "True", *OVERRIDES]
    out, ev = tmp_path / "run", tmp_path / "eval"
    cli.main(common + ["--output-dir", str(out)] + opts)
    cli.main(common + ["--output-dir", str(ev), "--model-dir", str(out), "--load-epoch", "1", "--eval-only"] + opts)
    numbers = []
    for folder in (out, ev):
        log = (folder / "log.txt").read_text()
        text_acc = re.findall(r"^\* accuracy: ([0-9.]+)%", log, re.M)
        proto_acc = re.findall(r"^\* prototype_accuracy: ([0-9.]+)%", log, re.M)
        assert len(text_acc) == len(proto_acc) == 1
        r = json.loads((folder / "results.json").read_text())
        assert f"{r['accuracy']:.1f}" == text_acc[0] and f"{r['prototype_accuracy']:.1f}" == proto_acc[0]
        assert r["prototype_support"] == 1  # K_SHOT
        numbers.append((r["accuracy"], r["prototype_accuracy"]))
    assert numbers[0] == numbers[1]  # --eval-only loaded the trained prototype net
    assert "Loading weights to prototype_net" in (ev / "log.txt").read_text()
    shutil.rmtree(out / "prototype_net")
    with pytest.raises(CheckpointError, match="EVAL_PROTOTYPES"):
        cli.main(common + ["--output-dir", str(tmp_path / "eval2"), "--model-dir", str(out), "--load-epoch", "1",
                           "--eval-only"] + opts)


def test_prototype_support_set_is_k_per_class_and_fixed_by_the_seed(dtd_root, tiny_clip, tmp_path):
    t = trainer(dtd_root, tiny_clip["vit_s"], tmp_path, "TRAINER.METAPROTO.EVAL_PROTOTYPES", "True",
                "TRAINER.METAPROTO.EVAL_SUPPORT", "2")
    support = t.support_set()
    assert len(support) == 24 and all(len(s) == 2 and {d.label for d in s} == {c} for c, s in enumerate(support))
    assert [d.impath for s in t.support_set() for d in s] == [d.impath for s in support for d in s]
    every = trainer(dtd_root, tiny_clip["vit_s"], tmp_path, "TRAINER.METAPROTO.EVAL_SUPPORT", "-1").support_set()
    assert all(len(s) == 4 for s in every)  # all of the class's 4 shots
    protos = t.prototypes()
    assert protos.shape == (24, 64)
    with torch.no_grad():
        t.model.prototype_net.mlp[2].bias.add_(1.0)
    assert not torch.allclose(t.prototypes(), protos)  # built by the (trained) prototype net
