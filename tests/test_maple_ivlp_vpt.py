"""MaPLe, IVLP and VPT end to end on the tiny CLIP and a synthetic DTD: the scripts, published checkpoints,
other ViT widths, precision modes, and the published parameter layouts."""
import re
import subprocess
from concurrent.futures import ThreadPoolExecutor

import open_clip
import pytest
import torch

from conftest import REPO, repo_copy, script_env
from vlprompt import cli, results
from vlprompt.config.setup import get_cfg

pytestmark = pytest.mark.slow

CFGS = {"MaPLe": "vit_b16_c2_ep5_batch4_2ctx", "IVLP": "vit_b16_c2_ep5_batch4_2+2ctx", "VPT": "vit_b16_c2_ep5_batch4_4"}


def overrides(clip: str, trainer: str) -> list[str]:
    return ["MODEL.BACKBONE.NAME", clip, "INPUT.SIZE", "(32, 32)", f"TRAINER.{trainer.upper()}.PREC", "fp32",
            "OPTIM.MAX_EPOCH", "1", "DATALOADER.NUM_WORKERS", "0", "VERBOSE", "False"]


def accuracy(log_text: str) -> list[float]:
    return [float(x) for x in re.findall(r"^\* accuracy: ([0-9.]+)%", log_text, re.M)]


def train_args(root, clip, out, trainer="MaPLe", *extra, flags=()):
    return ["--root", root, "--seed", "1", "--trainer", trainer,
            "--dataset-config-file", str(REPO / "configs/datasets/dtd.yaml"),
            "--config-file", str(REPO / f"configs/trainers/{trainer}/{CFGS[trainer]}.yaml"),
            "--output-dir", str(out), *flags, *overrides(clip, trainer),
            "DATASET.NUM_SHOTS", "1", "DATASET.SUBSAMPLE_CLASSES", "base", *extra]


# ---------------------------------------------------------------- (a) the scripts and the results table
@pytest.fixture(scope="module")
def b2n_runs(dtd_root, tiny_clip, tmp_path_factory):
    """Base-to-new for seed 1 of each method, in a copy of the repo layout (output/ goes there)."""
    work = repo_copy(tmp_path_factory.mktemp("work") / "repo")
    env = script_env(dtd_root, SEEDS="1", SHOTS="2", LOADEP="1", OMP_NUM_THREADS="1")
    ivlp, vpt = overrides(tiny_clip["vit"], "IVLP"), overrides(tiny_clip["vit"], "VPT")
    jobs = {  # MaPLe through the reproduction loop, IVLP through the published script names, VPT directly
        "MaPLe": [["scripts/maple/reproduce_maple.sh", "dtd", *overrides(tiny_clip["vit"], "MaPLe")]],
        "IVLP": [["scripts/ivlp/base2new_train_ivlp.sh", "dtd", "1", CFGS["IVLP"], "2", *ivlp],
                 ["scripts/ivlp/base2new_test_ivlp.sh", "dtd", "1", CFGS["IVLP"], "2", "1", *ivlp]],
        "VPT": [["scripts/vpt/base2new_train.sh", "dtd", "1", CFGS["VPT"], "2", *vpt],
                ["scripts/vpt/base2new_test.sh", "dtd", "1", CFGS["VPT"], "2", "1", *vpt]],
    }

    def chain(commands: list[list[str]]) -> list[subprocess.CompletedProcess]:
        return [subprocess.run(["bash", *c], cwd=work, env=env, capture_output=True, text=True, timeout=600)
                for c in commands]

    with ThreadPoolExecutor(len(jobs)) as pool:  # the three methods side by side: mostly interpreter start-up
        done = dict(zip(jobs, pool.map(chain, jobs.values())))
    for trainer, runs in done.items():
        for p in runs:
            assert p.returncode == 0, f"{p.args[1]}:\n{p.stdout[-2000:]}\n{p.stderr[-3000:]}"
    return work, {trainer: runs[-1].stdout for trainer, runs in done.items()}


@pytest.mark.parametrize("trainer,folder,keys", [
    ("MaPLe", "MultiModalPromptLearner",
     {"prompt_learner.ctx", "prompt_learner.proj.weight", "prompt_learner.proj.bias"}
     | {f"prompt_learner.compound_prompts_text.{i}" for i in range(3)}
     | {f"prompt_learner.compound_prompt_projections.{i}.{p}" for i in range(3) for p in ("weight", "bias")}),
    ("IVLP", "VLPromptLearner", {"prompt_learner.ctx", "image_encoder.VPT"}
     | {f"{tower}.transformer.resblocks.{i}.VPT_shallow" for tower in ("image_encoder", "text_encoder")
        for i in (1, 2, 3)}),
    ("VPT", "prompt_learner", {"image_encoder.VPT"} | {f"image_encoder.transformer.resblocks.{i}.VPT_shallow"
                                                       for i in (1, 2, 3)}),
])
def test_scripts_write_published_folders_and_keys(b2n_runs, trainer, folder, keys):
    work, _ = b2n_runs
    common = f"dtd/shots_2/{trainer}/{CFGS[trainer]}/seed1"
    base = work / "output/base2new/train_base" / common
    ckpt = torch.load(base / folder / "model.pth.tar-1", weights_only=True)
    assert set(ckpt["state_dict"]) == keys  # learnable tensors only, published names (depths 9/12 clipped to 4 layers)
    assert all(v.dtype == torch.float32 for v in ckpt["state_dict"].values())
    new_log = (work / "output/base2new/test_new" / common / "log.txt").read_text()
    assert f"Loading weights to {folder} from" in new_log and "* total: 46" in new_log  # 23 new classes x 2
    assert len(accuracy(new_log)) == 1 and len(accuracy((base / "log.txt").read_text())) == 1


def test_results_table_shows_the_three_methods(b2n_runs, capsys):
    work, stdout = b2n_runs
    assert "dtd" in stdout["MaPLe"] and "HM" in stdout["MaPLe"]  # reproduce_maple.sh ends with the table
    assert results.main([str(work / "output/base2new")]) == 0
    text = capsys.readouterr().out
    groups = results.collect(str(work / "output/base2new"))
    for trainer, cfg in CFGS.items():
        g = groups[("dtd", f"shots_2/{trainer}/{cfg}")]
        assert list(g.base) == [1] and list(g.new) == [1]
        assert re.search(rf"^dtd\s+shots_2/{re.escape(trainer)}/{re.escape(cfg)}\s+1\s", text, re.M)


# ---------------------------------------------------------------- (b) a published whole-model checkpoint
def test_published_whole_model_checkpoint_evaluates_like_ours(dtd_root, tiny_clip, tmp_path):
    from vlprompt.clip.load import load_clip
    from vlprompt.engine.checkpoint_keys import load_published, to_published
    from vlprompt_plugins.trainers.maple import CustomCLIP, MaPLe

    classnames = [f"class {i}" for i in range(24)]
    model = CustomCLIP(get_cfg(["TRAINER.MAPLE.PROMPT_DEPTH", "9"]), classnames, load_clip(tiny_clip["vit"]))
    gen = torch.Generator().manual_seed(0)
    prompts = {f"prompt_learner.{k}": (torch.randn(v.shape, generator=gen) * 0.05).half()  # as fp16 training saves
               for k, v in model.prompt_learner.state_dict().items()}
    clip_sd = torch.load(tiny_clip["vit"], weights_only=True)
    frozen = {("image_encoder." + k[7:] if k.startswith("visual.") else "text_encoder." + k): v
              for k, v in clip_sd.items() if k != "token_embedding.weight" and k != "logit_scale"}
    whole = {**prompts, **frozen, "logit_scale": clip_sd["logit_scale"],  # + buffers the published loader drops
             "prompt_learner.token_prefix": torch.zeros(24, 1, 512),
             "prompt_learner.token_suffix": torch.zeros(24, 74, 512)}
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.0035)
    published = {"state_dict": whole, "epoch": 2, "optimizer": opt.state_dict(), "val_result": None,
                 "scheduler": {"successor": torch.optim.lr_scheduler.CosineAnnealingLR(opt, 2.0), "last_epoch": 2}}
    ours = {"state_dict": {k: v.float() for k, v in prompts.items()}, "epoch": 2}
    for name, ckpt in (("published", published), ("ours", ours)):
        (tmp_path / name / "MultiModalPromptLearner").mkdir(parents=True)
        torch.save(ckpt, tmp_path / name / "MultiModalPromptLearner" / "model.pth.tar-2")

    # what the trainer loads: the prompt values under the published keys, nothing else
    key_map = MaPLe.checkpoint_key_map["MultiModalPromptLearner"]
    load_published(model.prompt_learner, whole, key_map, "published", MaPLe.ignored_checkpoint_keys)
    saved = to_published(model.prompt_learner.state_dict(), key_map)  # what ours writes: the published keys
    assert saved.keys() == prompts.keys() and all(torch.equal(v, prompts[k].float()) for k, v in saved.items())

    logs = {}
    for name in ("published", "ours"):
        out = tmp_path / f"eval_{name}"
        flags = ["--eval-only", "--model-dir", str(tmp_path / name), "--load-epoch", "2"]
        assert cli.main(train_args(dtd_root, tiny_clip["vit"], out, "MaPLe", "TRAINER.MAPLE.PROMPT_DEPTH", "9",
                                   flags=flags)) == 0
        logs[name] = (out / "log.txt").read_text()
    assert len(accuracy(logs["ours"])) == 1 and accuracy(logs["published"]) == accuracy(logs["ours"])
    note = re.search(r"Ignoring (\d+) key\(s\) of .*published.*: (.*)", logs["published"])
    assert note and int(note.group(1)) == len(frozen) + 1 and "image_encoder.* (" in note.group(2)
    assert "text_encoder.* (" in note.group(2) and "logit_scale" in note.group(2)
    assert "Ignoring" not in logs["ours"]


# ---------------------------------------------------------------- (c) another ViT: widths from the model
def test_maple_on_an_open_clip_vit_with_other_widths(dtd_root, tmp_path):
    torch.manual_seed(0)
    clip = open_clip.model.CLIP(embed_dim=256, vision_cfg=dict(layers=3, width=384, patch_size=16, image_size=32),
                                text_cfg=dict(context_length=77, vocab_size=49408, width=256, heads=4, layers=3),
                                quick_gelu=True)
    path = tmp_path / "vit_w384_t256.pt"
    torch.save(clip.state_dict(), path)
    out = tmp_path / "run"
    assert cli.main(train_args(dtd_root, str(path), out, "MaPLe", "TRAINER.MAPLE.PROMPT_DEPTH", "3")) == 0
    sd = torch.load(out / "MultiModalPromptLearner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert sd["prompt_learner.ctx"].shape == (2, 256) and sd["prompt_learner.proj.weight"].shape == (384, 256)
    assert sd["prompt_learner.compound_prompts_text.1"].shape == (2, 256)
    assert sd["prompt_learner.compound_prompt_projections.1.weight"].shape == (384, 256)
    assert "prompt_learner.compound_prompts_text.2" not in sd
    assert len(accuracy((out / "log.txt").read_text())) == 1


# ---------------------------------------------------------------- (d) precision modes
@pytest.mark.parametrize("prec", ["fp32", "amp", "bf16"])
def test_maple_precision_modes_train_on_cpu(dtd_root, tiny_clip, tmp_path, prec):
    out = tmp_path / "run"
    # the small ViT: bf16 matmuls are emulated (very slow) on CPUs without AVX-512 BF16
    assert cli.main(train_args(dtd_root, tiny_clip["vit_s"], out, "MaPLe", "TRAINER.MAPLE.PREC", prec,
                               "TRAINER.MAPLE.PROMPT_DEPTH", "2")) == 0
    sd = torch.load(out / "MultiModalPromptLearner" / "model.pth.tar-1", weights_only=True)["state_dict"]
    assert all(v.dtype == torch.float32 and torch.isfinite(v).all() for v in sd.values())  # float32 master weights
    assert len(accuracy((out / "log.txt").read_text())) == 1


# ---------------------------------------------------------------- layouts and bad input (no data needed)
def test_ivlp_and_vpt_learnable_names_and_published_checkpoint_keys(loaded_clip):
    from vlprompt_plugins.trainers.ivlp import CustomCLIP as IVLPCLIP
    from vlprompt_plugins.trainers.vpt import CustomCLIP as VPTCLIP

    cfg = get_cfg(["TRAINER.IVLP.PROMPT_DEPTH_VISION", "3", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "2",
                   "TRAINER.IVLP.N_CTX_VISION", "3", "TRAINER.VPT.PROMPT_DEPTH_VISION", "2"])
    ivlp = IVLPCLIP(cfg, ["a", "b"], loaded_clip("vit"))
    learnable = {n for n, p in ivlp.named_parameters() if p.requires_grad}
    assert learnable == {"prompts." + k for k in ivlp.prompts.state_dict()}
    from vlprompt.engine.checkpoint_keys import to_published
    from vlprompt_plugins.trainers.ivlp import IVLP
    from vlprompt_plugins.trainers.vpt import VPT

    saved = to_published(ivlp.prompts.state_dict(), IVLP.checkpoint_key_map["VLPromptLearner"])
    assert set(saved) == {
        "prompt_learner.ctx", "text_encoder.transformer.resblocks.1.VPT_shallow", "image_encoder.VPT",
        "image_encoder.transformer.resblocks.1.VPT_shallow", "image_encoder.transformer.resblocks.2.VPT_shallow"}
    assert ivlp.prompts.vision.VPT.shape == (3, 768) and ivlp.prompts.prompt_learner.ctx.shape == (2, 512)
    vpt = VPTCLIP(cfg, ["a", "b"], loaded_clip("vit"))
    saved = to_published(vpt.prompts.state_dict(), VPT.checkpoint_key_map["prompt_learner"])
    assert set(saved) == {"image_encoder.VPT", "image_encoder.transformer.resblocks.1.VPT_shallow"}
    learnable = {n for n, p in vpt.named_parameters() if p.requires_grad}
    assert learnable == {"prompts." + k for k in vpt.prompts.state_dict()}
    images = torch.randn(2, 3, 32, 32)
    for model in (ivlp, vpt):  # every prompt gets a gradient through the logits, nothing frozen does
        model(images).logsumexp(-1).sum().backward()
        assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in model.prompts.parameters())
        assert all(p.grad is None for p in model.parameters() if not p.requires_grad)


def test_ivlp_language_only_runs_on_resnet_and_vision_prompts_do_not(loaded_clip):
    from vlprompt_plugins.trainers.ivlp import CustomCLIP as IVLPCLIP
    from vlprompt_plugins.trainers.vpt import CustomCLIP as VPTCLIP

    language_only = get_cfg(["TRAINER.IVLP.PROMPT_DEPTH_VISION", "0", "TRAINER.IVLP.N_CTX_VISION", "0",
                             "TRAINER.IVLP.N_CTX_TEXT", "4", "TRAINER.IVLP.PROMPT_DEPTH_TEXT", "12"])
    model = IVLPCLIP(language_only, ["a", "b"], loaded_clip("rn"))
    # the rn text tower has 2 layers: PROMPT_DEPTH_TEXT 12 is clipped to 2
    assert set(model.prompts.state_dict()) == {"prompt_learner.ctx", "text_deep.transformer.resblocks.1.VPT_shallow"}
    assert model(torch.randn(2, 3, 64, 64)).shape == (2, 2)
    with pytest.raises(ValueError, match=r"IVLP with PROMPT_DEPTH_VISION 9 .*needs a ViT.*ModifiedResNet"):
        IVLPCLIP(get_cfg(), ["a", "b"], loaded_clip("rn"))
    with pytest.raises(ValueError, match=r"VPT .*needs a ViT.*ModifiedResNet"):
        VPTCLIP(get_cfg(), ["a", "b"], loaded_clip("rn"))
    with pytest.raises(ValueError, match="PROMPT_DEPTH_TEXT must be >= 1"):
        IVLPCLIP(get_cfg(["TRAINER.IVLP.PROMPT_DEPTH_TEXT", "0"]), ["a", "b"], loaded_clip("vit"))
