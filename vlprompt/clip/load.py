"""Build a frozen CLIP with open_clip from an OpenAI name, a local checkpoint, or an open_clip ``model:pretrained`` pair.

OpenAI weights were trained with QuickGELU; open_clip builds exact GELU unless told
otherwise (``ViT-B-16`` + ``pretrained='openai'`` only warns), so every OpenAI route here
builds QuickGELU towers.
"""
from __future__ import annotations

import contextlib
import difflib
import logging
import os
import socket
import warnings
from typing import Iterator, Optional

import open_clip
import torch
from open_clip.model import build_model_from_openai_state_dict
from torch import nn
from vlprompt.errors import BackboneNotFoundError, ConfigError

logger = logging.getLogger(__name__)

# the names the published CoOp/MaPLe code accepts -> open_clip architecture names
OPENAI_NAMES = {
    "RN50": "RN50",
    "RN101": "RN101",
    "RN50x4": "RN50x4",
    "RN50x16": "RN50x16",
    "RN50x64": "RN50x64",
    "ViT-B/32": "ViT-B-32",
    "ViT-B/16": "ViT-B-16",
    "ViT-L/14": "ViT-L-14",
    "ViT-L/14@336px": "ViT-L-14-336",
}
DEFAULT_CACHE_DIR = os.path.expanduser("~/.cache/clip")  # where the published code's clip._download puts files
PRECISIONS = ("fp16", "fp32", "amp", "bf16")


@contextlib.contextmanager
def hub_offline_if_unreachable(host: str = "huggingface.co", timeout: float = 3.0) -> Iterator[None]:
    """Within: when ``host`` cannot be reached, huggingface_hub looks in its local cache only, so a machine
    without network gets the missing-weights message at once instead of a minute of download retries."""
    try:
        socket.create_connection((host, 443), timeout=timeout).close()
        reachable = True
    except OSError:
        reachable = False
    import huggingface_hub.constants as hub  # read at call time by hf_hub_download

    if reachable or not hasattr(hub, "HF_HUB_OFFLINE") or hub.HF_HUB_OFFLINE:
        yield
        return
    logger.info(f"{host} is unreachable: looking for the weights in the HuggingFace cache only")
    hub.HF_HUB_OFFLINE = True
    try:
        yield
    finally:
        hub.HF_HUB_OFFLINE = False


def _cast_dtype(precision: str) -> Optional[torch.dtype]:
    return {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)


def _finish(model: nn.Module, precision: str) -> nn.Module:
    """fp32/amp: float32 weights. fp16/bf16: Linear/Conv/attention weights in low precision, LayerNorm in fp32
    (the published fp16 regime)."""
    model.float()
    if precision in ("fp16", "bf16"):
        open_clip.model.convert_weights_to_lp(model, dtype=_cast_dtype(precision))
    model.eval()
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def _read_state_dict(path: str) -> dict:
    try:  # OpenAI's released files are TorchScript archives
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.jit.load(path, map_location="cpu").eval().state_dict()
    except (RuntimeError, ValueError):
        pass
    try:
        sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise BackboneNotFoundError(f"Cannot read CLIP checkpoint {path} (MODEL.BACKBONE.NAME): {e}. Check that the "
                                    "file is complete (not a partial download), or point MODEL.BACKBONE.NAME at "
                                    "another copy.") from e
    if isinstance(sd, dict) and "state_dict" in sd and isinstance(sd["state_dict"], dict):
        sd = sd["state_dict"]
    if not isinstance(sd, dict):
        raise BackboneNotFoundError(f"CLIP checkpoint {path} (MODEL.BACKBONE.NAME) holds a {type(sd).__name__}, not "
                                    "a state dict. Point MODEL.BACKBONE.NAME at a CLIP weights file.")
    return {k[len("module."):] if k.startswith("module.") else k: v for k, v in sd.items()}


def load_checkpoint_file(path: str, precision: str = "fp32") -> nn.Module:
    """A CLIP state dict file in OpenAI's layout (OpenAI's own files, or open_clip's CLIP state dicts,
    which use the same key names); the architecture is read off the tensor shapes (QuickGELU)."""
    sd = _read_state_dict(path)
    if "visual.proj" not in sd and "visual.attnpool.c_proj.weight" not in sd:
        raise BackboneNotFoundError(
            f"{path} is not a CLIP checkpoint in OpenAI/open_clip layout (no 'visual.proj' or "
            "'visual.attnpool.*' key). For other open_clip models use MODEL.BACKBONE.NAME 'ARCH:/path/to/file.pt', "
            "e.g. 'ViT-B-16:/ckpt/epoch_32.pt'."
        )
    model = build_model_from_openai_state_dict(sd, quick_gelu=True, cast_dtype=_cast_dtype(precision))
    return _finish(model, precision)


def _load_openai_name(name: str, precision: str, cache_dir: str) -> nn.Module:
    arch = OPENAI_NAMES[name]
    url = open_clip.get_pretrained_url(arch, "openai")
    filename = os.path.basename(url) if url else f"{arch}.pt"
    local = os.path.join(cache_dir, filename)
    if os.path.isfile(local):
        logger.info(f"Loading OpenAI weights of {name} from {local}")
        return load_checkpoint_file(local, precision)
    hf = (open_clip.get_pretrained_cfg(arch, "openai") or {}).get("hf_hub", "")
    try:
        with hub_offline_if_unreachable():
            model = open_clip.create_model(f"{arch}-quickgelu", pretrained="openai", precision="fp32", device="cpu",
                                           require_pretrained=True)
    except Exception as e:
        raise BackboneNotFoundError(
            f"CLIP weights for MODEL.BACKBONE.NAME '{name}' are not available offline.\n"
            f"Looked for: {local} (the file the published CoOp/MaPLe code downloads) and the HuggingFace cache "
            f"of '{hf.rstrip('/')}' (what open_clip downloads).\n"
            f"To fix: copy {filename} (from {url}) into {cache_dir} (or set MODEL.BACKBONE.CACHE_DIR), "
            f"or run once with network access, or set MODEL.BACKBONE.NAME to a local checkpoint path.\n"
            f"({type(e).__name__}: {e})"
        ) from e
    return _finish(model, precision)


def _load_open_clip_pair(name: str, precision: str) -> nn.Module:
    arch, pretrained = name.split(":", 1)
    if arch not in open_clip.list_models():
        close = [m for m in open_clip.list_models() if m.lower().startswith(arch.lower()[:5])][:8]
        raise ConfigError(f"Unknown open_clip model '{arch}' in MODEL.BACKBONE.NAME '{name}'. "
                          f"Similar: {close}. All: open_clip.list_models().")
    quick = pretrained == "openai" and not arch.endswith("-quickgelu")
    try:
        with hub_offline_if_unreachable() if pretrained and not os.path.isfile(pretrained) else contextlib.nullcontext():
            model = open_clip.create_model(arch, pretrained=pretrained or None, precision="fp32", device="cpu",
                                           force_quick_gelu=quick, require_pretrained=bool(pretrained))
    except Exception as e:
        tags = open_clip.list_pretrained_tags_by_model(arch)
        raise BackboneNotFoundError(
            f"Cannot load open_clip '{arch}' with pretrained '{pretrained}': {type(e).__name__}: {e}\n"
            f"Known pretrained tags for {arch}: {tags}. Offline, pass a local file: '{arch}:/path/to/weights.pt'."
        ) from e
    return _finish(model, precision)


def load_clip(name: str, precision: str = "fp32", cache_dir: str = "") -> nn.Module:
    """Load a frozen (eval, no grad) open_clip CLIP model.

    Args:
        name: ``MODEL.BACKBONE.NAME``: an OpenAI name (``ViT-B/16``, ``RN50``, ...), a path to a local
            checkpoint (OpenAI or open_clip CLIP layout), or an open_clip ``model:pretrained`` pair
            (``ViT-B-16:laion2b_s34b_b88k``, ``ViT-B-16:/path/to/weights.pt``).
        precision: fp32 / amp (float32 weights), fp16 / bf16 (low-precision weights as the published fp16 mode).
        cache_dir: folder holding OpenAI files by name (``ViT-B-16.pt``); default ``~/.cache/clip``.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"Precision must be one of {PRECISIONS}, got '{precision}'. Set the method's PREC key "
                          "(e.g. TRAINER.COOP.PREC fp32) to one of them.")
    if name in OPENAI_NAMES:
        return _load_openai_name(name, precision, cache_dir or DEFAULT_CACHE_DIR)
    expanded = os.path.expanduser(name)
    if os.path.isfile(expanded):
        logger.info(f"Loading CLIP checkpoint {expanded}")
        return load_checkpoint_file(expanded, precision)
    if ":" in name and not name.startswith(("/", ".", "~")):
        return _load_open_clip_pair(name, precision)
    if name.startswith(("/", ".", "~")) or name.endswith((".pt", ".pth", ".bin", ".safetensors")):
        raise BackboneNotFoundError(f"MODEL.BACKBONE.NAME '{name}' looks like a file path, but no file is there.")
    close = difflib.get_close_matches(name, list(OPENAI_NAMES), n=1)
    hint = f" Did you mean '{close[0]}'?" if close else ""
    raise ConfigError(
        f"Unknown MODEL.BACKBONE.NAME '{name}'.{hint} Use an OpenAI name {sorted(OPENAI_NAMES)}, a checkpoint path, "
        "or an open_clip 'model:pretrained' pair (see open_clip.list_pretrained())."
    )
