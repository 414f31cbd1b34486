"""Seed for seed, the initial context equals the published code's: open_clip's CLIP construction draws
from torch's RNG exactly like OpenAI's CLIP class, and nothing else draws before the prompt learner."""
import pytest
import torch
from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

from conftest import golden
from vlprompt.config.setup import get_cfg
from vlprompt.registry import TRAINER_REGISTRY
from vlprompt.utils.seed import set_random_seed

RNG = golden("rng_init.pt")


def test_trainer_initial_context_equals_published_seed1(dtd_root, tiny_clip, tmp_path):
    cfg = get_cfg(["SEED", "1", "DATASET.ROOT", dtd_root, "DATASET.NAME", "DescribableTextures",
                   "DATASET.NUM_SHOTS", "2", "MODEL.BACKBONE.NAME", tiny_clip["vit"], "INPUT.SIZE", "(32, 32)",
                   "TRAINER.COOP.PREC", "fp32", "OPTIM.NAME", "sgd", "DATALOADER.NUM_WORKERS", "0",
                   "OUTPUT_DIR", str(tmp_path), "TRAINER.NAME", "CoOp"])
    set_random_seed(cfg.SEED)  # as train.py does, before the data and the model are built
    trainer = TRAINER_REGISTRY.get("CoOp")(cfg)
    assert torch.equal(trainer.model.prompt_learner.ctx.data, RNG["values"]["tiny_vit/coop_n16_end"]["ctx"])


@pytest.mark.parametrize("name,embed,vision", [
    ("ViT-B/16", 512, CLIPVisionCfg(layers=12, width=768, patch_size=16, image_size=224)),
    ("RN50", 1024, CLIPVisionCfg(layers=(3, 4, 6, 3), width=64, patch_size=None, image_size=224)),
])
def test_open_clip_construction_consumes_rng_like_openai(name, embed, vision):
    set_random_seed(1)
    CLIP(embed, vision_cfg=vision, text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=512, heads=8,
                                                       layers=12), quick_gelu=True, cast_dtype=torch.float16)
    ctx = torch.empty(16, 512)
    torch.nn.init.normal_(ctx, std=0.02)
    assert torch.equal(ctx, RNG["values"][f"{name}/coop_n16_end"]["ctx"])
