"""train.py end to end on the tiny CLIP and a synthetic DTD: train, checkpoints, eval-only, resume, bad input."""
import os
import re

import pytest
import torch

from conftest import REPO, read_logs
from vlprompt import cli
from vlprompt.config.setup import ConfigError
from vlprompt.data.dataset_base import DatasetLayoutError
from vlprompt.engine.checkpoint import CheckpointError

pytestmark = pytest.mark.slow


def args(root, clip, out, *overrides, flags=(), epochs=2, trainer="CoOp", cfg="vit_b16_ep50"):
    return ["--root", root, "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / f"configs/trainers/CoOp/{cfg}.yaml"),
            "--output-dir", str(out), *flags,
            "MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", "TRAINER.COOP.PREC", "fp32",
            "TRAINER.COOP.N_CTX", "4", "OPTIM.MAX_EPOCH", str(epochs), "DATALOADER.NUM_WORKERS", "0",
            "DATALOADER.TRAIN_X.BATCH_SIZE", "16", "DATASET.NUM_SHOTS", "2", "VERBOSE", "False", *overrides]


def accuracy(log_text):
    return [float(x) for x in re.findall(r"^\* accuracy: ([0-9.]+)%", log_text, re.M)]


@pytest.fixture(scope="module")
def trained(dtd_root, tiny_clip, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "train_base"
    assert cli.main(args(dtd_root, tiny_clip["vit"], out, "DATASET.SUBSAMPLE_CLASSES", "base")) == 0
    return out


def test_training_writes_published_layout_and_log_lines(trained):
    files = sorted(os.listdir(trained / "prompt_learner"))
    assert files == ["checkpoint", "model.pth.tar-2"]  # epoch 1 was transient: only the last one is kept
    assert (trained / "prompt_learner" / "checkpoint").read_text() == "model.pth.tar-2\n"
    ckpt = torch.load(trained / "prompt_learner" / "model.pth.tar-2", weights_only=True)
    assert ckpt["epoch"] == 2 and set(ckpt["state_dict"]) == {"ctx"} and ckpt["optimizer"] is not None
    log = (trained / "log.txt").read_text()
    assert re.search(r"^epoch \[1/2\] batch \[\d+/\d+\] time [0-9.]+ \([0-9.]+\) data [0-9.]+ \([0-9.]+\) "
                     r"loss [0-9.]+ \([0-9.]+\) acc [0-9.]+ \([0-9.]+\) lr 1\.0000e-05 eta \d+:\d\d:\d\d$", log, re.M)
    assert re.search(r"^epoch \[2/2\] .* lr 2\.0000e-03 eta", log, re.M)  # constant warm-up, then the cosine start
    for line in ("Evaluate on the *test* set", "=> result", "* total: 48", "* correct:", "* error:", "* macro_f1:"):
        assert line in log  # 24 base classes x 2 test images in the synthetic split
    assert len(accuracy(log)) == 1


def test_eval_only_reproduces_the_final_accuracy(trained, dtd_root, tiny_clip, tmp_path):
    out = tmp_path / "eval"
    cli.main(args(dtd_root, tiny_clip["vit"], out, "DATASET.SUBSAMPLE_CLASSES", "base",
                  flags=["--eval-only", "--model-dir", str(trained), "--load-epoch", "2"]))
    assert accuracy((out / "log.txt").read_text()) == accuracy((trained / "log.txt").read_text())
    assert 'Loading weights to prompt_learner from' in (out / "log.txt").read_text()


def test_published_format_checkpoint_loads(trained, dtd_root, tiny_clip, tmp_path):
    """A checkpoint as Dassl writes it (token_prefix/suffix, pickled scheduler object) evaluates the same."""
    ours = torch.load(trained / "prompt_learner" / "model.pth.tar-2", weights_only=True)
    ctx = ours["state_dict"]["ctx"]
    opt = torch.optim.SGD([torch.nn.Parameter(ctx.clone())], lr=0.002)
    published = {
        "state_dict": {"ctx": ctx.half().float(), "token_prefix": torch.zeros(24, 1, 512),
                       "token_suffix": torch.zeros(24, 72, 512)},
        "epoch": 2, "optimizer": opt.state_dict(),
        "scheduler": {"successor": torch.optim.lr_scheduler.CosineAnnealingLR(opt, 2.0), "last_epoch": 2},
        "val_result": None,
    }
    model_dir = tmp_path / "published"
    (model_dir / "prompt_learner").mkdir(parents=True)
    torch.save(published, model_dir / "prompt_learner" / "model.pth.tar-2")
    out = tmp_path / "eval"
    cli.main(args(dtd_root, tiny_clip["vit"], out, "DATASET.SUBSAMPLE_CLASSES", "base",
                  flags=["--eval-only", "--model-dir", str(model_dir), "--load-epoch", "2"]))
    ref = tmp_path / "ref"
    torch.save({"state_dict": {"ctx": ctx.half().float()}, "epoch": 2}, tmp_path / "x.pt")
    (ref / "prompt_learner").mkdir(parents=True)
    os.replace(tmp_path / "x.pt", ref / "prompt_learner" / "model.pth.tar-2")
    cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "eval_ref", "DATASET.SUBSAMPLE_CLASSES", "base",
                  flags=["--eval-only", "--model-dir", str(ref), "--load-epoch", "2"]))
    assert accuracy((out / "log.txt").read_text()) == accuracy((tmp_path / "eval_ref" / "log.txt").read_text())


def test_resume_continues_the_same_run_bitwise(dtd_root, tiny_clip, tmp_path):
    """Drop the newest epoch of a finished run (as if it had stopped there): re-running resumes from the last
    complete epoch and ends with the same prompt bit for bit (the RNG state travels with the checkpoint)."""
    out = tmp_path / "run"
    base = ("DATASET.SUBSAMPLE_CLASSES", "base", "TEST.NO_TEST", "True", "TRAIN.CHECKPOINT_FREQ", "1")
    cli.main(args(dtd_root, tiny_clip["vit"], out, *base, epochs=3))
    final = torch.load(out / "prompt_learner" / "model.pth.tar-3", weights_only=True)
    assert sorted(os.listdir(out / "run_state")) == [f"state.pth.tar-{e}" for e in (1, 2, 3)]
    for path in (out / "run_state" / "state.pth.tar-3", out / "prompt_learner" / "model.pth.tar-3"):
        path.unlink()
    cli.main(args(dtd_root, tiny_clip["vit"], out, *base, epochs=3, flags=["--resume", str(out)]))
    log = read_logs(out).split("Found checkpoint")[-1]
    assert "previous epoch: 2" in log and "epoch [2/3]" not in log and "epoch [3/3]" in log
    again = torch.load(out / "prompt_learner" / "model.pth.tar-3", weights_only=True)
    assert torch.equal(final["state_dict"]["ctx"], again["state_dict"]["ctx"])
    assert again["optimizer"]["state"][0]["momentum_buffer"].equal(final["optimizer"]["state"][0]["momentum_buffer"])


def test_zeroshot_eval_and_ensemble(dtd_root, tiny_clip, tmp_path):
    for trainer in ("ZeroshotCLIP", "ZeroshotCLIP2"):
        out = tmp_path / trainer
        cli.main(args(dtd_root, tiny_clip["vit"], out, trainer=trainer, flags=["--eval-only"]))
        log = (out / "log.txt").read_text()
        assert len(accuracy(log)) == 1 and "* total: 94" in log  # 47 classes x 2 test images
    assert "(n=8)" in (tmp_path / "ZeroshotCLIP2" / "log.txt").read_text()


@pytest.mark.parametrize("position,csc", [("middle", "True"), ("front", "False")])
def test_class_token_positions_and_csc_train(dtd_root, tiny_clip, tmp_path, position, csc):
    out = tmp_path / "run"
    cli.main(args(dtd_root, tiny_clip["rn"], out, "TRAINER.COOP.CLASS_TOKEN_POSITION", position,
                  "TRAINER.COOP.CSC", csc, "INPUT.SIZE", "(64, 64)", epochs=1))
    ckpt = torch.load(out / "prompt_learner" / "model.pth.tar-1", weights_only=True)
    assert ckpt["state_dict"]["ctx"].shape == ((47, 4, 128) if csc == "True" else (4, 128))


# ---------------------------------------------------------------- bad input
def test_missing_dataset_folder(tiny_clip, tmp_path):
    with pytest.raises(DatasetLayoutError, match="Expected layout"):
        cli.main(args(str(tmp_path / "nowhere"), tiny_clip["vit"], tmp_path / "o"))


def test_unknown_trainer_lists_registered(dtd_root, tiny_clip, tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'CoOp'.*Registered: .*ZeroshotCLIP"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", trainer="Coop"))


def test_unknown_dataset_lists_registered(dtd_root, tiny_clip, tmp_path):
    with pytest.raises(KeyError, match="Did you mean 'DescribableTextures'.*Registered: Caltech101, DescribableTextures"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", "DATASET.NAME", "DescribableTexture"))


def test_unknown_config_key_names_nearest(dtd_root, tiny_clip, tmp_path):
    with pytest.raises(ConfigError, match="TRAINER.COOP.N_CTXX.*Did you mean 'TRAINER.COOP.N_CTX'"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", "TRAINER.COOP.N_CTXX", "4"))
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("OPTIM:\n  LRR: 0.1\n")
    a = args(dtd_root, tiny_clip["vit"], tmp_path / "o")
    a[a.index("--config-file") + 1] = str(bad_yaml)
    with pytest.raises(ConfigError, match=r"bad.yaml: unknown config key 'OPTIM.LRR'. Did you mean 'OPTIM.LR'"):
        cli.main(a)


def test_checkpoint_with_other_shapes_names_parameter_and_shapes(trained, dtd_root, tiny_clip, tmp_path):
    with pytest.raises(CheckpointError, match=r"ctx: checkpoint \(4, 512\) vs model \(8, 512\)"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", "DATASET.SUBSAMPLE_CLASSES", "base",
                      "TRAINER.COOP.N_CTX", "8",
                      flags=["--eval-only", "--model-dir", str(trained), "--load-epoch", "2"]))


def test_eval_only_without_checkpoint(trained, dtd_root, tiny_clip, tmp_path):
    with pytest.raises(CheckpointError, match="pass --model-dir"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", flags=["--eval-only"]))
    with pytest.raises(CheckpointError, match=r"--load-epoch 7: .* has no model.pth.tar-7 \(saved epochs: 2\)"):
        cli.main(args(dtd_root, tiny_clip["vit"], tmp_path / "o", "DATASET.SUBSAMPLE_CLASSES", "base",
                      flags=["--eval-only", "--model-dir", str(trained), "--load-epoch", "7"]))


def test_missing_backbone_weights_say_where_to_put_them(dtd_root, tmp_path):
    from vlprompt.clip.load import BackboneNotFoundError

    with pytest.raises(BackboneNotFoundError, match=r"ViT-B-16\.pt.*MODEL.BACKBONE.CACHE_DIR"):
        cli.main(args(dtd_root, "ViT-B/16", tmp_path / "o", "MODEL.BACKBONE.CACHE_DIR", str(tmp_path)))


@pytest.mark.parametrize("prec", ["amp", "bf16", "fp16"])
def test_precision_modes_train_on_cpu(dtd_root, tiny_clip, tmp_path, prec):
    out = tmp_path / "run"
    cli.main(args(dtd_root, tiny_clip["rn"], out, "TRAINER.COOP.PREC", prec, "INPUT.SIZE", "(64, 64)", epochs=1))
    ckpt = torch.load(out / "prompt_learner" / "model.pth.tar-1", weights_only=True)
    assert ckpt["state_dict"]["ctx"].dtype == torch.float32  # learnable context stays float32 (master weights)
    assert torch.isfinite(ckpt["state_dict"]["ctx"]).all()
    assert len(accuracy((out / "log.txt").read_text())) == 1


def test_text_features_are_encoded_once_per_evaluation(dtd_root, tiny_clip, tmp_path):
    from vlprompt.config.setup import get_cfg
    from vlprompt.registry import TRAINER_REGISTRY

    a = args(dtd_root, tiny_clip["vit"], tmp_path / "o")
    opts = a[a.index("MODEL.BACKBONE.NAME"):] + ["DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures",
                                                 "DATALOADER.TEST.BATCH_SIZE", "10", "OUTPUT_DIR", str(tmp_path / "o")]
    trainer = TRAINER_REGISTRY.get("CoOp")(get_cfg(opts))
    calls = []
    trainer.model.text_encoder.register_forward_hook(lambda *_: calls.append(1))
    trainer.test()
    assert len(trainer.dm.test_loader) == 10 and len(calls) == 1  # 10 test batches, one text encoding


def test_no_train_builds_everything_and_trains_nothing(dtd_root, tiny_clip, tmp_path):
    out = tmp_path / "o"
    assert cli.main(args(dtd_root, tiny_clip["vit"], out, flags=["--no-train"])) == 0
    log = (out / "log.txt").read_text()
    assert "# learnable params: 2,048" in log and "epoch [" not in log and not (out / "prompt_learner").exists()
