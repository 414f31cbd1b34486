"""Image transforms matching Dassl's ``build_transform`` for the choices the published configs use."""
from __future__ import annotations

from typing import Callable

import torch
from torchvision import transforms as T
from torchvision.transforms import InterpolationMode
from yacs.config import CfgNode

from vlprompt.errors import ConfigError

INTERPOLATION_MODES = {
    "bilinear": InterpolationMode.BILINEAR,
    "bicubic": InterpolationMode.BICUBIC,
    "nearest": InterpolationMode.NEAREST,
}
AVAILABLE = ("random_flip", "random_resized_crop", "random_crop", "center_crop", "normalize",
             "colorjitter", "randomgrayscale", "gaussian_noise")


class GaussianNoise:
    def __init__(self, mean: float = 0.0, std: float = 0.15, p: float = 0.5) -> None:
        self.mean, self.std, self.p = mean, std, p

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        if torch.rand(1).item() > self.p:
            return img
        return img + torch.randn(img.size()) * self.std + self.mean


def build_transform(cfg: CfgNode, is_train: bool = True) -> Callable | None:
    """Train: [resize] -> random_resized_crop / random_crop -> flip -> ... -> ToTensor -> normalize.
    Test: resize the shorter side to max(SIZE) -> center crop SIZE -> ToTensor -> normalize."""
    if cfg.INPUT.NO_TRANSFORM:
        return None
    choices = list(cfg.INPUT.TRANSFORMS)
    unknown = [c for c in choices if c not in AVAILABLE]
    if unknown:
        raise ConfigError(f"INPUT.TRANSFORMS: unknown transform(s) {unknown}; use names from {list(AVAILABLE)}.")
    if cfg.INPUT.INTERPOLATION not in INTERPOLATION_MODES:
        raise ConfigError(f"INPUT.INTERPOLATION must be one of {list(INTERPOLATION_MODES)}, "
                          f"got '{cfg.INPUT.INTERPOLATION}'. Set e.g. INPUT.INTERPOLATION bicubic.")
    interp = INTERPOLATION_MODES[cfg.INPUT.INTERPOLATION]
    size = tuple(cfg.INPUT.SIZE)
    normalize = T.Normalize(mean=cfg.INPUT.PIXEL_MEAN, std=cfg.INPUT.PIXEL_STD)
    tfms: list = []
    if is_train:
        if "random_crop" not in choices and "random_resized_crop" not in choices:
            tfms.append(T.Resize(size, interpolation=interp))
        if "random_crop" in choices:
            tfms.append(T.RandomCrop(size, padding=cfg.INPUT.CROP_PADDING))
        if "random_resized_crop" in choices:
            tfms.append(T.RandomResizedCrop(size, scale=tuple(cfg.INPUT.RRCROP_SCALE), interpolation=interp))
        if "random_flip" in choices:
            tfms.append(T.RandomHorizontalFlip())
        if "center_crop" in choices:
            tfms.append(T.CenterCrop(size))
        if "colorjitter" in choices:
            i = cfg.INPUT
            tfms.append(T.ColorJitter(i.COLORJITTER_B, i.COLORJITTER_C, i.COLORJITTER_S, i.COLORJITTER_H))
        if "randomgrayscale" in choices:
            tfms.append(T.RandomGrayscale(p=0.2))
        tfms.append(T.ToTensor())
        if "gaussian_noise" in choices:
            tfms.append(GaussianNoise(cfg.INPUT.GN_MEAN, cfg.INPUT.GN_STD))
    else:
        tfms += [T.Resize(max(size), interpolation=interp), T.CenterCrop(size), T.ToTensor()]
    if "normalize" in choices:
        tfms.append(normalize)
    return T.Compose(tfms)
