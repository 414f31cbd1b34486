"""Contract tests over the whole trainer registry (timm style): every trainer builds on the tiny CLIP,
evaluates, and, if it learns, takes a step that changes only its learnable parameters."""
import pytest
import torch

from vlprompt.config.setup import get_cfg
from vlprompt.registry import TRAINER_REGISTRY


@pytest.mark.parametrize("name", TRAINER_REGISTRY.names())
def test_trainer_builds_steps_and_evaluates(name, dtd_root, tiny_clip, tmp_path):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures",
                   "DATASET.NUM_SHOTS", "4", "DATASET.SUBSAMPLE_CLASSES", "base", "MODEL.BACKBONE.NAME",
                   tiny_clip["vit"], "INPUT.SIZE", "(32, 32)", "OPTIM.NAME", "sgd", "OPTIM.LR", "0.01",
                   "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "8", "OUTPUT_DIR", str(tmp_path),
                   "TRAINER.NAME", name])
    trainer = TRAINER_REGISTRY.get(name)(cfg)
    named = dict(trainer.model.named_parameters())
    learnable = {n for n, p in named.items() if p.requires_grad}
    before = {n: p.detach().clone() for n, p in named.items()}
    if learnable:
        assert trainer.checkpoint_modules(), "a trainer that learns must say what to checkpoint"
        trainer.set_train_mode(True)
        trainer.batch_idx = 0
        out = trainer.forward_backward(next(iter(trainer.build_train_loader())))
        assert set(out) >= {"loss"} and all(isinstance(v, float) for v in out.values())
        for n, p in named.items():
            changed = not torch.equal(p.detach(), before[n])
            assert changed == (n in learnable), f"{n}: changed={changed}, learnable={n in learnable}"
        for module in trainer.checkpoint_modules().values():
            assert set(dict(module.named_parameters())) and all(
                p.requires_grad for p in module.parameters())
    acc = trainer.test()
    assert 0.0 <= acc <= 100.0
