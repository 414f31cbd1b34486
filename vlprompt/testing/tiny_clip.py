"""A tiny, deterministic, random CLIP written in OpenAI's checkpoint format (no download needed).

Follows the recipe of the golden reference weights: every tensor is drawn from
``numpy.random.RandomState(zlib.crc32(name))`` (so tensors are independent of each other)
and stored as float16, ``logit_scale`` is float32 ``log(100)``, BatchNorm counters are int64
zeros. Two shapes: ``vit`` (ViT-B/16 widths, 4 layers, 32 px images) and ``rn``
(ModifiedResNet, width 8, 64 px images, text width 128), the golden shapes; and ``vit_s`` (widths 64,
2 layers per tower, 32 px) for fast end-to-end tests.

    python -m vlprompt.testing.tiny_clip --spec vit --out tiny_clip_vit.pt
"""
from __future__ import annotations

import argparse
import hashlib
import math
import zlib
from typing import Iterator

import numpy as np
import torch

# (name, shape, kind, scale); kinds: normal = scale*N(0,1), affine = 1 + scale*N(0,1),
# var = 0.5 + U[0,1), zero_count = int64 0, const = scale
Entry = tuple[str, tuple, str, float]

ARCHS = {
    "vit": dict(embed=512, image=32, v_layers=4, v_width=768, patch=16, t_width=512, t_layers=4),
    "rn": dict(embed=64, image=64, v_layers=(1, 1, 1, 1), v_width=8, patch=None, t_width=128, t_layers=2),
    # not a golden shape: a ViT small enough for end-to-end runs of the visual-prompt methods in tests
    "vit_s": dict(embed=64, image=32, v_layers=2, v_width=64, patch=16, t_width=64, t_layers=2),
}
CONTEXT, VOCAB = 77, 49408


def _norm(prefix: str, n: int) -> Iterator[Entry]:
    yield f"{prefix}.weight", (n,), "affine", 0.1
    yield f"{prefix}.bias", (n,), "normal", 0.05


def _batchnorm(prefix: str, n: int) -> Iterator[Entry]:
    yield from _norm(prefix, n)
    yield f"{prefix}.running_mean", (n,), "normal", 0.1
    yield f"{prefix}.running_var", (n,), "var", 0.0
    yield f"{prefix}.num_batches_tracked", (), "zero_count", 0.0


def _conv(name: str, c_out: int, c_in: int, k: int, gain: float = 2.0) -> Iterator[Entry]:
    yield name, (c_out, c_in, k, k), "normal", math.sqrt(gain / (c_in * k * k))


def _block(prefix: str, w: int, depth: int) -> Iterator[Entry]:
    proj_std = w ** -0.5 * (2 * depth) ** -0.5
    yield f"{prefix}.attn.in_proj_weight", (3 * w, w), "normal", w ** -0.5
    yield f"{prefix}.attn.in_proj_bias", (3 * w,), "normal", 0.02
    yield f"{prefix}.attn.out_proj.weight", (w, w), "normal", proj_std
    yield f"{prefix}.attn.out_proj.bias", (w,), "normal", 0.02
    yield from _norm(f"{prefix}.ln_1", w)
    yield f"{prefix}.mlp.c_fc.weight", (4 * w, w), "normal", (2 * w) ** -0.5
    yield f"{prefix}.mlp.c_fc.bias", (4 * w,), "normal", 0.02
    yield f"{prefix}.mlp.c_proj.weight", (w, 4 * w), "normal", proj_std
    yield f"{prefix}.mlp.c_proj.bias", (w,), "normal", 0.02
    yield from _norm(f"{prefix}.ln_2", w)


def _vit_tower(a: dict) -> Iterator[Entry]:
    w, grid = a["v_width"], a["image"] // a["patch"]
    yield "visual.class_embedding", (w,), "normal", w ** -0.5
    yield "visual.positional_embedding", (grid * grid + 1, w), "normal", w ** -0.5
    yield "visual.proj", (w, a["embed"]), "normal", w ** -0.5
    yield from _conv("visual.conv1.weight", w, 3, a["patch"], gain=1.0)
    yield from _norm("visual.ln_pre", w)
    for i in range(a["v_layers"]):
        yield from _block(f"visual.transformer.resblocks.{i}", w, a["v_layers"])
    yield from _norm("visual.ln_post", w)


def _resnet_tower(a: dict) -> Iterator[Entry]:
    w = a["v_width"]
    yield from _conv("visual.conv1.weight", w // 2, 3, 3)
    yield from _batchnorm("visual.bn1", w // 2)
    yield from _conv("visual.conv2.weight", w // 2, w // 2, 3)
    yield from _batchnorm("visual.bn2", w // 2)
    yield from _conv("visual.conv3.weight", w, w // 2, 3)
    yield from _batchnorm("visual.bn3", w)
    inplanes = w
    for stage, (n_blocks, mult) in enumerate(zip(a["v_layers"], (1, 2, 4, 8)), start=1):
        planes = w * mult
        for b in range(n_blocks):
            p = f"visual.layer{stage}.{b}"
            yield from _conv(f"{p}.conv1.weight", planes, inplanes, 1)
            yield from _batchnorm(f"{p}.bn1", planes)
            yield from _conv(f"{p}.conv2.weight", planes, planes, 3)
            yield from _batchnorm(f"{p}.bn2", planes)
            yield from _conv(f"{p}.conv3.weight", planes * 4, planes, 1, gain=1.0)
            yield from _batchnorm(f"{p}.bn3", planes * 4)
            stride = 2 if (stage > 1 and b == 0) else 1
            if stride > 1 or inplanes != planes * 4:
                yield from _conv(f"{p}.downsample.0.weight", planes * 4, inplanes, 1, gain=1.0)
                yield from _batchnorm(f"{p}.downsample.1", planes * 4)
            inplanes = planes * 4
    width, spatial = w * 32, a["image"] // 32
    std = width ** -0.5
    yield "visual.attnpool.positional_embedding", (spatial * spatial + 1, width), "normal", std
    for proj in ("k_proj", "q_proj", "v_proj"):
        yield f"visual.attnpool.{proj}.weight", (width, width), "normal", std
        yield f"visual.attnpool.{proj}.bias", (width,), "normal", 0.02
    yield "visual.attnpool.c_proj.weight", (a["embed"], width), "normal", std
    yield "visual.attnpool.c_proj.bias", (a["embed"],), "normal", 0.02


def entries(spec: str) -> Iterator[Entry]:
    """Every tensor of the checkpoint, in the order of the reference file."""
    a = ARCHS[spec]
    tw = a["t_width"]
    yield "positional_embedding", (CONTEXT, tw), "normal", 0.01
    yield "text_projection", (tw, a["embed"]), "normal", tw ** -0.5
    yield "logit_scale", (), "const", math.log(100.0)
    yield from (_vit_tower(a) if spec.startswith("vit") else _resnet_tower(a))
    for i in range(a["t_layers"]):
        yield from _block(f"transformer.resblocks.{i}", tw, a["t_layers"])
    yield "token_embedding.weight", (VOCAB, tw), "normal", 0.02
    yield from _norm("ln_final", tw)


def _tensor(name: str, shape: tuple, kind: str, scale: float) -> torch.Tensor:
    if kind == "zero_count":
        return torch.zeros(shape, dtype=torch.int64)
    if kind == "const":
        return torch.full(shape, scale, dtype=torch.float32)
    rs = np.random.RandomState(zlib.crc32(name.encode("utf-8")))
    if kind == "var":
        values = 0.5 + rs.random_sample(shape)
    else:
        values = scale * rs.standard_normal(shape)
        if kind == "affine":
            values = 1.0 + values
    return torch.from_numpy(np.asarray(values, dtype=np.float16).reshape(shape))


def tiny_clip_state_dict(spec: str) -> dict[str, torch.Tensor]:
    """The state dict of the tiny CLIP ``spec`` ('vit' or 'rn')."""
    if spec not in ARCHS:
        raise ValueError(f"Unknown tiny CLIP spec '{spec}'; choose from {sorted(ARCHS)}")
    return {name: _tensor(name, shape, kind, scale) for name, shape, kind, scale in entries(spec)}


def content_digest(state_dict: dict[str, torch.Tensor]) -> str:
    """SHA-256 over (name, dtype, shape, bytes) of each tensor: independent of torch's file format."""
    h = hashlib.sha256()
    for name, t in state_dict.items():
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        h.update(t.contiguous().numpy().tobytes())
    return h.hexdigest()


def write_tiny_clip(spec: str, path: str) -> str:
    """Write the tiny CLIP checkpoint to ``path``; returns its content digest."""
    sd = tiny_clip_state_dict(spec)
    torch.save(sd, path)
    return content_digest(sd)


def main() -> None:
    ap = argparse.ArgumentParser(description="Write a tiny random CLIP in OpenAI's checkpoint format.")
    ap.add_argument("--spec", choices=sorted(ARCHS), required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    print(f"content_sha256 {write_tiny_clip(args.spec, args.out)}  {args.out}")


if __name__ == "__main__":
    main()
