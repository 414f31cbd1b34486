"""How the frozen CLIP towers of a model run on the device: ``torch.compile`` (``MODEL.COMPILE``) and
``channels_last``.

Both change how the frozen towers compute, never what a run saves or loads: compilation is in place
(``nn.Module.compile``: the module tree, state-dict keys and checkpoint files stay as they are) and channels_last
changes only the memory layout of a convolutional tower's weights. Both may change the last bits of features, so
:func:`tower_mode` is part of the feature cache key (a compiled run never reads eager features, and vice versa).

* ``MODEL.COMPILE True``: regional compilation of the units :meth:`PromptedTextEncoder.compile_units` and
  :meth:`PromptedImageEncoder.compile_units` name (each residual block of a transformer tower, a convolutional
  tower whole). The blocks of a tower share one code object, so each is compiled once and reused for every block
  (the cold compile of a tiny-ViT CoOp run on 2 CPU cores: ~28 s, against ~70 s for whole encoders), prompted
  forwards (MaPLe, IVLP, VPT splice prompts between blocks) are compiled as well, and the encoders' Python (EOT
  truncation, prompt splicing, rows split across processes) stays eager instead of breaking graphs.
* channels_last, automatic on CUDA only: the weights of open_clip's ModifiedResNet (RN50, RN101, ...) in NHWC, the
  layout cuDNN's tensor-core convolutions run in. cuDNN then takes NHWC for the input too (a convolution whose
  weight is channels_last computes channels_last), so the images need no conversion of ours. ViT towers (one
  patch convolution) and the CPU path are untouched.
"""
from __future__ import annotations

import logging

import torch
from torch import nn

from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.errors import ConfigError

logger = logging.getLogger(__name__)


def _units(model: nn.Module, kind: type) -> list[nn.Module]:
    """The compile units of every ``kind`` encoder in ``model``, each once (encoders may share open_clip's modules)."""
    units: dict[int, nn.Module] = {}
    for module in model.modules():
        if isinstance(module, kind):
            units.update((id(u), u) for u in module.compile_units())
    return list(units.values())


def is_compiled(module: nn.Module) -> bool:
    """``module`` or a submodule was compiled in place (``nn.Module.compile`` sets ``_compiled_call_impl``)."""
    return any(getattr(m, "_compiled_call_impl", None) is not None for m in module.modules())


def is_channels_last(module: nn.Module) -> bool:
    """A convolution weight of ``module`` is in channels_last layout (and not also contiguous, as 1x1 kernels are)."""
    return any(p.dim() == 4 and not p.is_contiguous() and p.is_contiguous(memory_format=torch.channels_last)
               for p in module.parameters())


def tower_mode(tower: nn.Module) -> dict[str, bool]:
    """What, besides its weights, decides the bits of ``tower``'s features: ``{"compiled": True}`` and/or
    ``{"channels_last": True}``; empty for an eager tower in the default layout (so eager keys stay as they were)."""
    mode = {"compiled": is_compiled(tower), "channels_last": is_channels_last(tower)}
    return {k: v for k, v in mode.items() if v}


def _check_compile_works(device: torch.device) -> None:
    """Compile and run a one-line function on ``device``: a missing C++ compiler, Triton or Python support fails
    here, as one ConfigError, instead of as a long traceback at the first training step."""
    try:
        if not hasattr(nn.Module, "compile"):
            raise RuntimeError(f"torch {torch.__version__} has no nn.Module.compile (torch >= 2.2 has)")
        torch.compile(lambda x: x * 2 + 1, dynamic=False)(torch.ones(2, device=device))
    except Exception as e:  # noqa: BLE001 (whatever torch.compile raises is the same fix for the user)
        why = f"{type(e).__name__}: {e}".strip().splitlines()[0][:300]
        raise ConfigError(f"MODEL.COMPILE True, but torch.compile does not work on {device.type} here ({why}); set "
                          "MODEL.COMPILE False (the default) to run eagerly.") from None


def compile_towers(model: nn.Module, device: torch.device) -> None:
    """Compile the frozen CLIP towers of ``model`` in place (see the module docstring); one log line."""
    _check_compile_works(device)
    text, image = _units(model, PromptedTextEncoder), _units(model, PromptedImageEncoder)
    if not text and not image:
        logger.warning("MODEL.COMPILE True: the model holds no CLIP encoder (PromptedTextEncoder or "
                       "PromptedImageEncoder); nothing was compiled")
        return
    for unit in [*text, *image]:
        unit.compile()
    names = sorted({type(u).__name__ for u in image})
    logger.info(f"MODEL.COMPILE: torch.compile in place of {len(text)} text tower blocks and {len(image)} image tower "
                f"unit(s) ({', '.join(names) or 'none'}); state-dict keys unchanged")


def use_channels_last(model: nn.Module, device: torch.device) -> None:
    """On CUDA, put the weights of ``model``'s convolutional image towers in channels_last (see the module
    docstring); nothing on other devices."""
    if device.type != "cuda":
        return
    towers = {id(e.visual): e.visual for e in model.modules() if isinstance(e, PromptedImageEncoder) and e.is_resnet}
    for tower in towers.values():
        tower.to(memory_format=torch.channels_last)
    if towers:
        logger.info("channels_last: the weights of the convolutional image tower "
                    f"({', '.join(sorted({type(t).__name__ for t in towers.values()}))}) on CUDA")


def prepare_towers(model: nn.Module, device: torch.device, compile_: bool) -> None:
    """What ``Trainer`` calls once the model is on ``device``: channels_last, then ``MODEL.COMPILE``."""
    use_channels_last(model, device)
    if compile_:
        compile_towers(model, device)
