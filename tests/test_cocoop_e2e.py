"""CoCoOp end to end through its scripts (base -> checkpoint -> new -> table), precision modes, and
the published checkpoint format."""
import pytest
import torch

from conftest import REPO, repo_copy, run_script
from vlprompt import cli, results

pytestmark = pytest.mark.slow


def overrides(clip):
    return ["MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", "TRAINER.COCOOP.PREC", "fp32",
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "DATALOADER.TRAIN_X.BATCH_SIZE", "4",
            "VERBOSE", "False"]


def test_cocoop_base_to_new_through_scripts(dtd_root, tiny_clip, tmp_path):
    work = repo_copy(tmp_path / "repo")
    for script, extra in (("base2new_train.sh", []), ("base2new_test.sh", ["1"])):
        run_script(work, f"scripts/cocoop/{script}", "dtd", "1", "vit_b16_c4_ep10_batch1_ctxv1", "1", *extra,
                   *overrides(tiny_clip["vit"]), data=dtd_root)
    run = "dtd/shots_1/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1/seed1"
    ckpt = torch.load(work / "output/base2new/train_base" / run / "prompt_learner/model.pth.tar-1", weights_only=True)
    assert set(ckpt["state_dict"]) == {"ctx", "meta_net.linear1.weight", "meta_net.linear1.bias",
                                       "meta_net.linear2.weight", "meta_net.linear2.bias"}
    assert "Loading weights to prompt_learner" in (work / "output/base2new/test_new" / run / "log.txt").read_text()
    g = results.collect(str(work / "output/base2new"))[("dtd", "shots_1/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1")]
    assert list(g.base) == [1] and list(g.new) == [1]


@pytest.mark.parametrize("prec", ["amp", "bf16"])  # on the small ViT: bf16 is emulated on CPUs without AVX-512 BF16
def test_cocoop_precision_modes(dtd_root, tiny_clip, tmp_path, prec):
    out = tmp_path / "run"
    cli.main(["--root", dtd_root, "--seed", "1", "--trainer", "CoCoOp",
              "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
              "--config-file", str(REPO / "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1.yaml"),
              "--output-dir", str(out), *overrides(tiny_clip["vit_s"]), "TRAINER.COCOOP.PREC", prec,
              "DATASET.NUM_SHOTS", "1"])
    ckpt = torch.load(out / "prompt_learner/model.pth.tar-1", weights_only=True)
    assert all(torch.isfinite(v).all() and v.dtype == torch.float32 for v in ckpt["state_dict"].values())


def test_published_cocoop_checkpoint_evaluates_like_ours(dtd_root, tiny_clip, tmp_path):
    """Dassl's layout with the published extras (token_prefix/suffix, a pickled scheduler object)."""
    common = ["--root", dtd_root, "--seed", "1", "--trainer", "CoCoOp",
              "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
              "--config-file", str(REPO / "configs/trainers/CoCoOp/vit_b16_c4_ep10_batch1_ctxv1.yaml")]
    opts = overrides(tiny_clip["vit"]) + ["DATASET.NUM_SHOTS", "1", "DATASET.SUBSAMPLE_CLASSES", "base"]
    ours = tmp_path / "ours"
    cli.main(common + ["--output-dir", str(ours)] + opts)
    state = torch.load(ours / "prompt_learner/model.pth.tar-1", weights_only=True)["state_dict"]
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.002)
    published = {"state_dict": {**state, "token_prefix": torch.zeros(24, 1, 512), "token_suffix": torch.zeros(24, 72, 512)},
                 "epoch": 1, "optimizer": opt.state_dict(), "val_result": None,
                 "scheduler": {"successor": torch.optim.lr_scheduler.CosineAnnealingLR(opt, 10.0)}}
    (tmp_path / "pub/prompt_learner").mkdir(parents=True)
    torch.save(published, tmp_path / "pub/prompt_learner/model.pth.tar-1")
    acc = []
    for model_dir in (ours, tmp_path / "pub"):
        out = tmp_path / f"eval_{model_dir.name}"
        cli.main(common + ["--output-dir", str(out), "--model-dir", str(model_dir), "--load-epoch", "1",
                           "--eval-only"] + opts)
        acc.append(results.read_accuracy(str(out / "log.txt")))
    assert acc[0] is not None and acc[0] == acc[1]
