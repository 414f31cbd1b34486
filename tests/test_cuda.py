"""CUDA paths (skipped without a GPU) on the tiny CLIP: fp16, amp and bf16 training of the prompt methods, evaluation
under low precision against fp32, MODEL.COMPILE, and channels_last on a convolutional (RN) image tower."""
import pytest
import torch
import torch.nn.functional as F

from vlprompt.config.setup import get_cfg
from vlprompt.engine.kernels import is_channels_last, is_compiled, tower_mode
from vlprompt.registry import TRAINER_REGISTRY
from vlprompt.utils.seed import set_random_seed

#: per method, overrides that keep its prompts within the tiny ViT's 4 layers
METHODS = {"CoOp": [], "CoCoOp": [], "MaPLe": ["TRAINER.MAPLE.PROMPT_DEPTH", "3"], "IVLP": [], "VPT": []}


def build(name, dtd_root, clip, out, *opts, shots=2, size=32):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures",
                   "DATASET.NUM_SHOTS", str(shots), "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", f"({size}, {size})",
                   "OPTIM.NAME", "sgd", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False",
                   "OUTPUT_DIR", str(out), "TRAINER.NAME", name, *opts])
    torch.manual_seed(0)  # the same initial prompts in every build
    return TRAINER_REGISTRY.get(name)(cfg)


def eval_logits(trainer):
    """Float32 logits ``[N, n_classes]`` of the whole test split, computed as ``Trainer.test`` computes them."""
    trainer.set_train_mode(False)
    with torch.no_grad(), trainer.precision.autocast():
        trainer.forget_precomputed()
        _ = trainer.precomputed
        trainer.prepare_eval()
        return torch.cat([logits.float().cpu() for logits, _ in trainer.eval_logits(trainer.dm.test_loader, "test")])


@pytest.mark.cuda
@pytest.mark.parametrize("prec", ["fp16", "amp", "bf16"])
@pytest.mark.parametrize("name", list(METHODS))
def test_methods_train_on_gpu(name, prec, dtd_root, tiny_clip, tmp_path):
    """3 steps (94 images, batches of 32): the learnable parameters stay float32 (master weights), finite, and move
    (amp's GradScaler may skip an overflowing first step, not all three)."""
    trainer = build(name, dtd_root, tiny_clip["vit"], tmp_path, f"TRAINER.{name.upper()}.PREC", prec,
                    *METHODS[name])
    assert trainer.device.type == "cuda" and trainer.precision.mode == prec
    before = [p.detach().clone() for p in trainer.learnable]
    trainer.train()
    assert all(p.dtype == torch.float32 and torch.isfinite(p).all() for p in trainer.learnable)
    assert any(not torch.equal(p.detach(), b) for p, b in zip(trainer.learnable, before))


@pytest.mark.cuda
@pytest.mark.parametrize("clip", ["vit_s", "rn"])
@pytest.mark.parametrize("prec", ["fp16", "amp", "bf16"])
def test_low_precision_eval_predicts_what_fp32_predicts(prec, clip, dtd_root, tiny_clip, tmp_path):
    """CoOp's predictions on the 94 test images equal fp32's. Measured on CPU with these prompts: the smallest fp32
    top-1 margin is 1.09 (vit_s) and 1.88 (rn) logits, the largest bf16 logit error 0.44 and 0.31 (fp16: 0.05)."""
    size = 64 if clip == "rn" else 32
    runs = {p: build("CoOp", dtd_root, tiny_clip[clip], tmp_path / p, "TRAINER.COOP.PREC", p, shots=1, size=size)
            for p in ("fp32", prec)}
    assert runs[prec].device.type == "cuda"
    ref, low = eval_logits(runs["fp32"]), eval_logits(runs[prec])
    assert (low - ref).abs().max() < 1.0
    assert torch.equal(low.argmax(1), ref.argmax(1))


@pytest.mark.cuda
@pytest.mark.parametrize("prec", ["fp32", "amp"])
def test_compile_on_gpu_evaluates_and_trains_as_eager(prec, dtd_root, tiny_clip, tmp_path):
    """The initial prompts' predictions are eager's (the fp32 top-1 margins, >= 1.09 logits, exceed the rounding),
    then both train on the same batches to nearly the same prompts, saved under the same keys."""
    runs = {mode: build("CoOp", dtd_root, tiny_clip["vit_s"], tmp_path / mode, "TRAINER.COOP.PREC", prec,
                        "MODEL.COMPILE", str(mode == "compiled"), shots=1)
            for mode in ("eager", "compiled")}
    eager, compiled = runs["eager"], runs["compiled"]
    assert compiled.device.type == "cuda"
    assert is_compiled(compiled.model.text_encoder) and is_compiled(compiled.model.image_encoder)
    assert not is_compiled(eager.model)
    assert compiled.model.state_dict().keys() == eager.model.state_dict().keys()
    ref, got = eval_logits(eager), eval_logits(compiled)
    assert (got - ref).abs().max() < (0.05 if prec == "fp32" else 0.5)
    assert torch.equal(got.argmax(1), ref.argmax(1))
    for trainer in (eager, compiled):
        set_random_seed(1)  # the same batches and augmentations
        trainer.train()
    files = [torch.load(tmp_path / mode / "prompt_learner" / "model.pth.tar-1", weights_only=True)["state_dict"]
             for mode in ("eager", "compiled")]
    assert files[0].keys() == files[1].keys() == {"ctx"}
    torch.testing.assert_close(files[1]["ctx"], files[0]["ctx"], rtol=1e-3, atol=1e-3)


@pytest.mark.cuda
@pytest.mark.parametrize("prec", ["fp32", "fp16", "amp"])
def test_channels_last_rn_tower_computes_the_contiguous_features(prec, dtd_root, tiny_clip, tmp_path):
    """On CUDA the RN tower's weights are channels_last, and cuDNN runs its convolutions in NHWC from the weights
    alone; the features are those of the contiguous tower within the precision's rounding."""
    trainer = build("CoOp", dtd_root, tiny_clip["rn"], tmp_path, "TRAINER.COOP.PREC", prec, shots=1, size=64)
    assert trainer.device.type == "cuda"
    encoder = trainer.model.image_encoder
    assert is_channels_last(encoder.visual) and tower_mode(encoder) == {"channels_last": True}
    nhwc_out = []
    encoder.visual.conv1.register_forward_hook(
        lambda m, i, out: nhwc_out.append(out.is_contiguous(memory_format=torch.channels_last)))
    images = next(iter(trainer.dm.test_loader))["img"].to(trainer.device)
    trainer.set_train_mode(False)
    with torch.no_grad(), trainer.precision.autocast():
        trainer.forget_precomputed()
        nhwc = trainer.frozen_image_features(images)
        encoder.visual.to(memory_format=torch.contiguous_format)
        assert not is_channels_last(encoder.visual) and tower_mode(encoder) == {}
        nchw = trainer.frozen_image_features(images)
        logits = [trainer.features_to_logits(f) for f in (nhwc, nchw)]
    assert nhwc_out == [True, False]
    torch.testing.assert_close(F.normalize(nhwc.float(), dim=-1), F.normalize(nchw.float(), dim=-1), rtol=0,
                               atol=1e-2)
    assert torch.equal(logits[0].argmax(1), logits[1].argmax(1))


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
