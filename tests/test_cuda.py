"""CUDA paths (skipped without a GPU): fp16, amp and bf16 training steps on the tiny CLIP."""
import pytest
import torch

from vlprompt.config.setup import get_cfg
from vlprompt.registry import TRAINER_REGISTRY


@pytest.mark.cuda
@pytest.mark.parametrize("prec", ["fp16", "amp", "bf16"])
def test_coop_trains_on_gpu(prec, dtd_root, tiny_clip, tmp_path):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures",
                   "DATASET.NUM_SHOTS", "2", "MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)",
                   "TRAINER.COOP.PREC", prec, "OPTIM.NAME", "sgd", "OPTIM.MAX_EPOCH", "1",
                   "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", str(tmp_path), "TRAINER.NAME", "CoOp"])
    trainer = TRAINER_REGISTRY.get("CoOp")(cfg)
    assert trainer.device.type == "cuda" and trainer.precision.mode == prec
    before = trainer.model.prompt_learner.ctx.detach().clone()
    trainer.train()
    ctx = trainer.model.prompt_learner.ctx
    assert ctx.dtype == torch.float32 and torch.isfinite(ctx).all() and not torch.equal(ctx.detach(), before)


@pytest.mark.cuda
@pytest.mark.skipif(torch.cuda.device_count() < 2, reason="NCCL needs a GPU per process: 2 GPUs")
def test_two_gpu_processes_train_what_one_trains(tmp_path):
    """The gloo equivalence check of test_distributed, on GPUs (NCCL, one process per GPU)."""
    import subprocess
    import sys

    from conftest import REPO

    p = subprocess.run([sys.executable, "-m", "vlprompt.testing.ddp_check", "--trainers", "CoOp", "MaPLe",
                        "--workdir", str(tmp_path)], cwd=REPO, capture_output=True, text=True, timeout=900)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
