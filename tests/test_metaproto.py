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
