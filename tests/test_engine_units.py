"""Unit tests of engine pieces: registry, config merging, LR schedule, evaluator, checkpoints, results."""
import math

import pytest
import torch

from vlprompt.config.setup import ConfigError, get_cfg, merge_from_list
from vlprompt.engine.checkpoint import CheckpointError, latest_checkpoint, load_state_dict_checked, save_checkpoint
from vlprompt.engine.evaluator import Classification
from vlprompt.engine.optim import build_lr_scheduler, build_optimizer
from vlprompt.registry import TRAINER_REGISTRY, Registry


def test_registry_rejects_duplicates_and_suggests():
    reg = Registry("THING")

    @reg.register()
    class Alpha:
        pass

    with pytest.raises(KeyError, match="already registered"):
        reg.register(Alpha)
    with pytest.raises(KeyError, match="Did you mean 'Alpha'"):
        reg.get("alpha")
    assert {"CoOp", "ZeroshotCLIP", "ZeroshotCLIP2"} <= set(TRAINER_REGISTRY.names())


def test_config_overrides_and_seed_zero():
    cfg = get_cfg(["SEED", "0", "TRAINER.COOP.N_CTX", "8", "INPUT.SIZE", "(32, 32)"])
    assert cfg.SEED == 0 and cfg.TRAINER.COOP.N_CTX == 8 and tuple(cfg.INPUT.SIZE) == (32, 32)
    with pytest.raises(ConfigError, match="KEY VALUE pairs"):
        merge_from_list(cfg, ["SEED"])
    with pytest.raises(ConfigError, match="Did you mean 'OPTIM.MAX_EPOCH'"):
        merge_from_list(cfg, ["OPTIM.MAX_EPOCHS", "3"])


def dassl_reference_lrs(optim_cfg, epochs):
    """Dassl's schedule: constant warm-up wrapping torch's CosineAnnealingLR, stepped once per epoch."""
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=optim_cfg.LR)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(opt, float(optim_cfg.MAX_EPOCH))
    lrs = []
    warm_steps = 0
    for epoch in range(epochs):
        if epoch < optim_cfg.WARMUP_EPOCH:
            lrs.append(optim_cfg.WARMUP_CONS_LR)
        else:
            lrs.append(cosine.get_last_lr()[0])
            opt.step()
            cosine.step()
        warm_steps += 1
    return lrs


def test_cosine_with_constant_warmup_matches_dassl():
    cfg = get_cfg(["OPTIM.NAME", "sgd", "OPTIM.LR", "0.002", "OPTIM.MAX_EPOCH", "10", "OPTIM.LR_SCHEDULER", "cosine",
                   "OPTIM.WARMUP_EPOCH", "1", "OPTIM.WARMUP_TYPE", "constant", "OPTIM.WARMUP_CONS_LR", "1e-5"])
    p = torch.nn.Parameter(torch.zeros(1))
    opt = build_optimizer([p], cfg.OPTIM)
    sched = build_lr_scheduler(opt, cfg.OPTIM)
    ours = []
    for _ in range(10):
        ours.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    ref = dassl_reference_lrs(cfg.OPTIM, 10)
    assert all(math.isclose(a, b, rel_tol=1e-9, abs_tol=1e-12) for a, b in zip(ours, ref)), (ours, ref)
    assert ours[0] == 1e-5 and ours[1] == 0.002


def test_macro_f1_and_accuracy_against_brute_force():
    torch.manual_seed(0)
    logits = torch.randn(200, 7)
    labels = torch.randint(0, 6, (200,))  # class 6 never appears in the ground truth
    ev = Classification(7)
    ev.process(logits[:90], labels[:90])
    ev.process(logits[90:], labels[90:])
    r = ev.evaluate()
    pred = logits.argmax(1)
    f1s = []
    for c in labels.unique().tolist():
        tp = ((pred == c) & (labels == c)).sum().item()
        fp = ((pred == c) & (labels != c)).sum().item()
        fn = ((pred != c) & (labels == c)).sum().item()
        f1s.append(2 * tp / (2 * tp + fp + fn) if tp + fp + fn else 0.0)
    assert r["accuracy"] == pytest.approx(100 * (pred == labels).float().mean().item())
    assert r["macro_f1"] == pytest.approx(100 * sum(f1s) / len(f1s))
    assert r["total"] == 200


def test_checkpoint_atomic_pointer_and_shape_errors(tmp_path):
    m = torch.nn.Linear(3, 2)
    save_checkpoint({"state_dict": m.state_dict(), "epoch": 4}, str(tmp_path / "net"))
    assert latest_checkpoint(str(tmp_path / "net")).endswith("model.pth.tar-4")
    assert sorted(p.name for p in (tmp_path / "net").iterdir()) == ["checkpoint", "model.pth.tar-4"]  # no temp files
    other = torch.nn.Linear(5, 2)
    with pytest.raises(CheckpointError, match=r"weight: checkpoint \(2, 3\) vs model \(2, 5\)"):
        load_state_dict_checked(other, m.state_dict(), "ckpt")
    with pytest.raises(CheckpointError, match="lacks the learnable parameter"):
        load_state_dict_checked(m, {"weight": m.weight.data}, "ckpt")
