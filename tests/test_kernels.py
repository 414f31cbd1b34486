"""How the frozen towers run (vlprompt/engine/kernels.py): MODEL.COMPILE (in place, every trainer, train.py end to
end, its error) and channels_last (CUDA only), and both in the feature cache key. The GPU runs are in test_cuda.py."""
import os
import re

import pytest
import torch
from torch import nn

from conftest import REPO, assert_user_error, run_cli
from vlprompt import cli
from vlprompt.clip.load import load_clip
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.config.setup import get_cfg, setup_cfg
from vlprompt.data.datum import Datum
from vlprompt.data.manager import build_loader
from vlprompt.data.transforms import build_transform
from vlprompt.engine.feature_cache import FeatureCache, tower_digest
from vlprompt.engine.kernels import is_channels_last, is_compiled, prepare_towers, tower_mode, use_channels_last
from vlprompt.engine.run_folder import config_hash
from vlprompt.registry import TRAINER_REGISTRY

CPU, CUDA = torch.device("cpu"), torch.device("cuda")  # use_channels_last reads only the device type


def cache_key(tower, dtd_root, tmp_path):
    cfg = get_cfg(["INPUT.SIZE", "(32, 32)", "MODEL.FEATURE_CACHE_DIR", str(tmp_path)])
    images = sorted(os.path.join(r, f) for r, _, fs in os.walk(dtd_root) for f in fs if f.endswith(".jpg"))[:4]
    loader = build_loader([Datum(p, 0) for p in images], build_transform(cfg, is_train=False), 2, False, 0,
                          "SequentialSampler")
    return FeatureCache(cfg, tower, "fp32", CPU).key(loader)


def conv_tower():
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten())


def test_the_feature_cache_key_follows_compile_and_channels_last(dtd_root, tmp_path):
    eager = conv_tower()
    key, parts = cache_key(eager, dtd_root, tmp_path)
    assert tower_mode(eager) == {} and "compiled" not in parts and "channels_last" not in parts  # eager keys as before
    compiled = conv_tower()
    compiled.compile()  # lazy: nothing is compiled before the first call
    nhwc = conv_tower().to(memory_format=torch.channels_last)
    assert tower_digest(compiled) == tower_digest(nhwc) == tower_digest(eager)  # the same weights...
    assert tower_mode(compiled) == {"compiled": True} and tower_mode(nhwc) == {"channels_last": True}
    keys = {key, cache_key(compiled, dtd_root, tmp_path)[0], cache_key(nhwc, dtd_root, tmp_path)[0]}
    assert len(keys) == 3  # ...but a compiled or channels_last tower never reads eager features, nor the reverse


def test_channels_last_is_cuda_only_and_keeps_the_rn_features(tiny_clip):
    rn, vit = (nn.ModuleList([PromptedImageEncoder(load_clip(tiny_clip[s]))]) for s in ("rn", "vit_s"))
    images = torch.randn(3, 3, 64, 64)
    before = rn[0](images)
    use_channels_last(rn, CPU)  # the CPU path is untouched
    assert not is_channels_last(rn) and torch.equal(rn[0](images), before)
    use_channels_last(rn, CUDA)
    assert is_channels_last(rn[0].visual) and tower_mode(rn[0]) == {"channels_last": True}
    torch.testing.assert_close(rn[0](images), before, rtol=1e-4, atol=1e-5)
    use_channels_last(vit, CUDA)  # a ViT tower (one patch convolution) is left as it is
    assert not is_channels_last(vit)


def test_flag_sets_the_key_and_the_key_is_operational():
    parser = cli.build_parser()
    assert setup_cfg(parser.parse_args([])).MODEL.COMPILE is False
    compiled = setup_cfg(parser.parse_args(["--compile"]))
    assert compiled.MODEL.COMPILE is True
    assert config_hash(compiled) == config_hash(setup_cfg(parser.parse_args([])))  # a run may resume compiled


def build(name, dtd_root, clip, *opts):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures", "DATASET.NUM_SHOTS",
                   "1", "DATASET.SUBSAMPLE_CLASSES", "base", "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)",
                   "DATALOADER.NUM_WORKERS", "0", "OUTPUT_DIR", "", "VERBOSE", "False", "TRAINER.NAME", name, *opts])
    return TRAINER_REGISTRY.get(name)(cfg)


@pytest.mark.parametrize("name", TRAINER_REGISTRY.names())
def test_every_trainer_compiles_its_clip_towers_in_place(name, dtd_root, tiny_clip):
    """What ``Trainer.__init__`` does with MODEL.COMPILE True, on an eager build: every CLIP encoder is compiled and
    neither the model's state-dict keys nor the checkpoint files' keys change (no trainer file knows of it)."""
    trainer = build(name, dtd_root, tiny_clip["vit"])

    def saved():  # the keys of each checkpoint file
        return {n: set(trainer.module_state(n, m)) for n, m in trainer.checkpoint_modules().items()}

    keys, files = set(trainer.model.state_dict()), saved()
    encoders = [m for m in trainer.model.modules() if isinstance(m, (PromptedTextEncoder, PromptedImageEncoder))]
    assert encoders and not is_compiled(trainer.model)
    prepare_towers(trainer.model, trainer.device, True)
    assert all(is_compiled(e) for e in encoders)
    assert set(trainer.model.state_dict()) == keys and saved() == files


def test_a_failing_torch_compile_is_one_error_line(dtd_root, tiny_clip, tmp_path, capsys, monkeypatch):
    def no_compiler(*args, **kwargs):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found\n(long details)")

    monkeypatch.setattr(torch, "compile", no_compiler)
    code, text = run_cli(coop_args(dtd_root, tiny_clip["vit_s"], tmp_path / "o", "--compile"), capsys)
    line = assert_user_error(code, text, "MODEL.COMPILE True", "No working C++ compiler", "MODEL.COMPILE False")
    assert "long details" not in line


def coop_args(root, clip, out, *flags):
    return ["--root", root, "--seed", "1", "--trainer", "CoOp",
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / "configs/trainers/CoOp/vit_b16_ep50.yaml"), "--output-dir", str(out), *flags,
            "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32", "TRAINER.COOP.N_CTX",
            "4", "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "DATASET.NUM_SHOTS", "1", "VERBOSE", "False",
            "MODEL.FEATURE_CACHE_DIR", str(out.parent / "cache")]


@pytest.mark.slow
def test_train_py_compile_trains_saves_and_evaluates_as_eager(dtd_root, tiny_clip, tmp_path):
    """CoOp through train.py, eager and --compile (on CPU: inductor's C++ kernels; ~30 s of compiling on 2 cores
    with a cold inductor cache): the same checkpoint files and keys, nearly the same prompts, logits and accuracy."""
    clip = tiny_clip["vit_s"]
    for mode in ("eager", "compiled"):
        flags = ("--compile",) if mode == "compiled" else ()
        assert cli.main(coop_args(dtd_root, clip, tmp_path / mode, *flags)) == 0
    logs = {mode: (tmp_path / mode / "log.txt").read_text() for mode in ("eager", "compiled")}
    assert "MODEL.COMPILE: torch.compile in place of 2 text tower blocks and 2 image tower" in logs["compiled"]
    assert "MODEL.COMPILE" not in logs["eager"]
    # the compiled run computed its own evaluation features: it did not read the eager run's
    assert "Feature cache miss" in logs["compiled"] and len(os.listdir(tmp_path / "cache")) == 2
    folders = [sorted(os.listdir(tmp_path / mode / "prompt_learner")) for mode in ("eager", "compiled")]
    assert folders[0] == folders[1] == ["checkpoint", "model.pth.tar-1"]
    ckpts = [torch.load(tmp_path / mode / "prompt_learner" / "model.pth.tar-1", weights_only=True)
             for mode in ("eager", "compiled")]
    assert ckpts[0]["state_dict"].keys() == ckpts[1]["state_dict"].keys() == {"ctx"}
    torch.testing.assert_close(ckpts[1]["state_dict"]["ctx"], ckpts[0]["state_dict"]["ctx"], rtol=1e-4, atol=1e-5)
    accuracy = [re.findall(r"^\* accuracy: ([0-9.]+)%", logs[mode], re.M) for mode in ("eager", "compiled")]
    assert accuracy[0] == accuracy[1] and len(accuracy[0]) == 1
    # the eager run's weights evaluated eagerly and compiled (an eager checkpoint loads into a compiled model)
    logits = []
    for compile_ in ("False", "True"):
        trainer = build("CoOp", dtd_root, clip, "TRAINER.COOP.N_CTX", "4", "TRAINER.COOP.PREC", "fp32",
                        "DATASET.SUBSAMPLE_CLASSES", "all", "MODEL.COMPILE", compile_)
        trainer.load_model(str(tmp_path / "eager"), epoch=1)
        trainer.set_train_mode(False)
        with torch.no_grad():
            logits.append(trainer.model_inference(next(iter(trainer.dm.test_loader))["img"]))
    torch.testing.assert_close(logits[1], logits[0], rtol=1e-4, atol=1e-3)
    assert torch.equal(logits[1].argmax(1), logits[0].argmax(1))
