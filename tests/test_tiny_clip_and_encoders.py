"""The tiny CLIPs equal the golden weights; the promptable encoders equal open_clip and the published CLIP."""
import pytest
import torch

from conftest import golden
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.vision import PromptedImageEncoder

DIGESTS = {
    "vit": "7ea25aaa3f7236ef661fe5e5c6428f582d54c3073a67643ff95b7097b651f41a",
    "rn": "624cbd356fee3438e6bfb1c14d4a08591973e482a5c6605f581e74fc68b8a4fe",
}


@pytest.mark.parametrize("spec", ["vit", "rn"])
def test_tiny_clip_content_matches_reference(tiny_clip, spec):
    assert tiny_clip[f"{spec}_digest"] == DIGESTS[spec]


@pytest.mark.parametrize("spec", ["vit", "rn"])
def test_encoders_without_prompts_equal_open_clip(loaded_clip, spec):
    model = loaded_clip(spec)
    g = golden(f"encoders_{spec}.pt")
    text, image = PromptedTextEncoder(model), PromptedImageEncoder(model)
    with torch.no_grad():
        torch.testing.assert_close(text.encode_tokens(g["tokens"]), model.encode_text(g["tokens"]), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(image(g["images"]), model.encode_image(g["images"]), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("spec", ["vit", "rn"])
def test_encoders_match_published_clip_features(loaded_clip, spec):
    model = loaded_clip(spec)
    g = golden(f"encoders_{spec}.pt")
    with torch.no_grad():
        torch.testing.assert_close(PromptedTextEncoder(model).encode_tokens(g["tokens"]), g["text_features"],
                                   rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(PromptedImageEncoder(model)(g["images"]), g["image_features"], rtol=1e-5, atol=1e-5)


def test_eot_truncation_is_exact_and_shorter(loaded_clip):
    model = loaded_clip("vit")
    enc = PromptedTextEncoder(model)
    tokens = golden("encoders_vit.pt")["tokens"]
    seen = []
    hook = enc.transformer.resblocks[0].register_forward_hook(lambda m, i, o: seen.append(o.shape[1]))
    with torch.no_grad():
        ours = enc.encode_tokens(tokens)
    hook.remove()
    assert seen[0] == int(tokens.argmax(-1).max()) + 1 < 77
    with torch.no_grad():
        torch.testing.assert_close(ours, model.encode_text(tokens), rtol=1e-5, atol=1e-5)


def test_deep_prompts_change_features_and_bad_shapes_name_the_layer(loaded_clip):
    model = loaded_clip("vit")
    enc, img = PromptedTextEncoder(model), PromptedImageEncoder(model)
    tokens = golden("encoders_vit.pt")["tokens"]
    emb, eot = enc.embed(tokens), tokens.argmax(-1)
    with torch.no_grad():
        plain = enc(emb, eot)
        deep = enc(emb, eot, deep_prompts=[None, torch.randn(2, 512)])
    assert not torch.allclose(plain, deep)
    with pytest.raises(ValueError, match="layer 1.*512"):
        enc(emb, eot, deep_prompts=[None, torch.randn(2, 300)])
    images = golden("encoders_vit.pt")["images"]
    with pytest.raises(ValueError, match="layer 0.*768"):
        img(images, prompts=torch.randn(2, 512))
    with torch.no_grad():
        assert img(images, prompts=torch.randn(2, 768), deep_prompts=[None, torch.randn(2, 768)]).shape == (4, 512)


def test_visual_prompts_on_resnet_are_refused(loaded_clip):
    img = PromptedImageEncoder(loaded_clip("rn"))
    with pytest.raises(TypeError, match="VisionTransformer"):
        img(torch.zeros(1, 3, 64, 64), prompts=torch.zeros(2, 64))


def test_open_clip_format_checkpoint_and_pair_errors(loaded_clip, tmp_path):
    from vlprompt.clip.load import BackboneNotFoundError, load_clip

    model = loaded_clip("rn")
    path = tmp_path / "open_clip_rn.pt"
    torch.save({"state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    again = load_clip(str(path))
    tokens = golden("encoders_rn.pt")["tokens"]
    with torch.no_grad():
        torch.testing.assert_close(again.encode_text(tokens), model.encode_text(tokens))
    with pytest.raises(ValueError, match="Unknown open_clip model 'ViT-B-99'"):
        load_clip("ViT-B-99:openai")
    with pytest.raises(BackboneNotFoundError, match="Known pretrained tags for RN50"):
        load_clip(f"RN50:{tmp_path / 'missing.pt'}")
    with pytest.raises(ValueError, match="Unknown MODEL.BACKBONE.NAME 'ViT-B/99'"):
        load_clip("ViT-B/99")
