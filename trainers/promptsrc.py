"""PromptSRC: Self-Regulating Prompts (independent deep vision-language prompts + self-regularisation).

Khattak et al., "Self-regulating Prompts: Foundational Model Adaptation without Forgetting", ICCV 2023,
arXiv 2307.06948 (published as ``trainers/promptsrc.py`` of muzairkhattak/PromptSRC). The prompts are IVLP's:
text context at layer 0 (CoOp's ``end`` layout) plus independent text prompts at blocks ``1 .. PROMPT_DEPTH_TEXT-1``,
vision prompts appended at layer 0 and replacing the last tokens at blocks ``1 .. PROMPT_DEPTH_VISION-1``. Training
adds three self-regularising terms against the frozen CLIP to the cross-entropy:

* ``loss_scl_text`` = TEXT_LOSS_WEIGHT · mean |t − f| (t: normalised prompted class features, f: the normalised mean
  over the 60 ImageNet templates of the frozen, *unnormalised* class features),
* ``loss_scl_image`` = IMAGE_LOSS_WEIGHT · mean |v − z| (v, z: normalised prompted / frozen image features),
* ``loss_scl_logits`` = KL(p_zero-shot ‖ p_prompted) summed over the batch and classes, divided by batch · n_cls,

and Gaussian prompt aggregation (GPA): after epoch e the prompts are added to a running sum with weight
``N(e; GPA_MEAN, GPA_STD)`` (normalised over the epochs); the sum replaces the prompts after the last epoch, so it
is what is evaluated and saved as the last checkpoint.

Published options: ``N_CTX_VISION``, ``N_CTX_TEXT``, ``CTX_INIT``, ``PREC``, ``PROMPT_DEPTH_VISION``,
``PROMPT_DEPTH_TEXT``, ``TEXT_LOSS_WEIGHT``, ``IMAGE_LOSS_WEIGHT``, ``GPA_MEAN``, ``GPA_STD`` (defaults of the
published train.py). ``CTX_INIT`` follows MaPLe's rule (IVLP's). Checkpoints go to ``VLPromptLearner/`` with the
published keys, so published checkpoints (the whole model, with the frozen CLIP and the zero-shot image encoder)
load; their frozen keys are ignored with a logged note. The log line shows ``loss`` only, as published.

Differences (choices, see docs/methods/promptsrc.md): every ``PREC`` runs (the published code trains in fp16
only); no ``.half()`` casts of the prompts or of the teacher features (clean float32: matches the published
math with the casts removed); the zero-shot image features come from the same frozen image tower run without
prompts (no second copy); GPA sums the learnable prompts only (the published code also sums, and so slightly
rounds, every frozen weight) and survives resume (the published one is lost on resume); teacher text features
are computed in the run's precision.
"""
from __future__ import annotations

import logging
from typing import Any, Optional, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.independent_prompts import (CHECKPOINT_FOLDER, PUBLISHED_KEYS, REBUILT_KEYS,
                                               IndependentPromptCLIP, independent_prompt_keys)
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.clip.tokens import IMAGENET_TEMPLATES, tokenize
from vlprompt.engine import Trainer
from vlprompt.engine.hooks import HookBase
from vlprompt.engine.losses import kl_divergence
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY

logger = logging.getLogger(__name__)


def teacher_text_features(encoder: PromptedTextEncoder, classnames: Sequence[str], templates: Sequence[str],
                          chunk: int = 1024) -> Tensor:
    """Frozen class features ``[n_cls, E]``: the mean over ``templates`` of the UNnormalised features, then
    normalised (PromptSRC's teacher; ZeroshotCLIP2 normalises each template first). Float32, no gradients.
    All template x class prompts are encoded in batches of ``chunk`` rows."""
    names = [c.replace("_", " ") for c in classnames]
    tokens = tokenize([t.replace("{}", name) for t in templates for name in names])
    tokens = tokens.to(encoder.token_embedding.weight.device)
    with torch.no_grad():
        features = torch.cat([encoder.encode_tokens(part).float() for part in tokens.split(chunk)])
    return F.normalize(features.view(len(templates), len(names), -1).mean(dim=0), dim=-1)


def gpa_weights(max_epoch: int, mean: float, std: float) -> list[float]:
    """Normalised Gaussian weight of each epoch 1..max_epoch (index e-1), computed as the published code."""
    if std <= 0:
        raise ConfigError(f"TRAINER.PROMPTSRC.GPA_STD must be > 0, got {std}.")
    g = [1 / (std * np.sqrt(2 * np.pi)) * np.exp(-0.5 * ((e - mean) / std) ** 2) for e in range(1, max_epoch + 1)]
    total = sum(g)
    if not total > 0:
        raise ConfigError(f"TRAINER.PROMPTSRC.GPA_MEAN {mean} / GPA_STD {std} give every one of the {max_epoch} "
                          "epochs a zero weight; put GPA_MEAN within (or near) 1..OPTIM.MAX_EPOCH.")
    return [float(w / total) for w in g]


class GaussianPromptAggregation(HookBase):
    """GPA: after each epoch, add ``weights[epoch]`` x the learnable parameters of ``module`` to a float64
    running sum; after the last epoch, replace them by the sum (divided by the weight seen, which is 1 for a
    run that saw every epoch). Runs before the checkpoint hook, so the last checkpoint holds the aggregate."""

    def __init__(self, module: nn.Module, weights: Sequence[float]) -> None:
        self.module = module
        self.weights = list(weights)
        self.total: dict[str, Tensor] = {}
        self.weight_seen = 0.0
        self.epochs_seen = 0

    def _learnable(self) -> dict[str, nn.Parameter]:
        return {n: p for n, p in self.module.named_parameters() if p.requires_grad}

    def before_train(self) -> None:
        if self.trainer.start_epoch != self.epochs_seen:
            logger.warning(f"GPA: resuming at epoch {self.trainer.start_epoch} without the aggregate of the earlier "
                           "epochs (the checkpoint holds no vlprompt run state); aggregating from here on, "
                           "renormalised over the epochs seen.")
            self.epochs_seen = self.trainer.start_epoch

    def after_epoch(self) -> None:
        t = self.trainer
        weight = self.weights[t.epoch]
        with torch.no_grad():
            for name, p in self._learnable().items():
                self.total[name] = self.total.get(name, 0.0) + weight * p.detach().double()
        self.weight_seen += weight
        self.epochs_seen = t.epoch + 1
        if t.epoch + 1 == t.max_epoch:
            self.apply()
            forget = getattr(t, "forget_precomputed", None)
            if forget is not None:
                forget()

    def apply(self) -> None:
        logger.info("Using GPA model for final inference...")
        with torch.no_grad():
            for name, p in self._learnable().items():
                p.copy_((self.total[name] / self.weight_seen).to(p.dtype))

    def state_dict(self) -> dict[str, Any]:
        return {"total": {k: v.cpu() for k, v in self.total.items()}, "weight_seen": self.weight_seen,
                "epochs_seen": self.epochs_seen}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        device = next(self.module.parameters()).device
        self.total = {k: v.to(device) for k, v in state["total"].items()}
        self.weight_seen = state["weight_seen"]
        self.epochs_seen = state["epochs_seen"]


class CustomCLIP(IndependentPromptCLIP):
    """Frozen CLIP encoders + ``prompts`` (IndependentVLPrompts) + the frozen teacher class features."""

    def __init__(self, cfg: CN, classnames: list[str], clip_model: nn.Module) -> None:
        c = cfg.TRAINER.PROMPTSRC
        super().__init__(clip_model, classnames, c.N_CTX_TEXT, c.CTX_INIT, c.PROMPT_DEPTH_TEXT, c.N_CTX_VISION,
                         c.PROMPT_DEPTH_VISION, "TRAINER.PROMPTSRC", "PromptSRC", cfg.MODEL.BACKBONE.NAME)
        self.classnames = list(classnames)
        self._fixed_embeddings: Optional[Tensor] = None

    @property
    def fixed_embeddings(self) -> Tensor:
        """The teacher class features ``[n_cls, E]``, encoded on first use (so an evaluation-only run never pays
        for the 60 x n_cls prompts) in the frozen weights' precision, outside any autocast."""
        device = self.text_encoder.token_embedding.weight.device
        if self._fixed_embeddings is None or self._fixed_embeddings.device != device:
            logger.info(f"Encoding the frozen teacher class features ({len(IMAGENET_TEMPLATES)} templates x "
                        f"{len(self.classnames)} classes)")
            with torch.autocast(device.type, enabled=False):
                self._fixed_embeddings = teacher_text_features(self.text_encoder, self.classnames, IMAGENET_TEMPLATES)
        return self._fixed_embeddings

    def train_outputs(self, images: Tensor) -> dict[str, Tensor]:
        """Normalised ``text_features`` ``[n_cls, E]``, ``image_features`` ``[B, E]``, ``logits`` ``[B, n_cls]``
        and their frozen counterparts ``fixed_embeddings``, ``zero_shot_image_features``, ``zero_shot_logits``."""
        scale = self.logit_scale.exp().float()
        text = F.normalize(self.text_features().float(), dim=-1)
        image = F.normalize(self.image_features(images).float(), dim=-1)
        zero_shot = F.normalize(self.frozen_image_features(images).float(), dim=-1)
        zero_shot_logits = scale * zero_shot @ self.fixed_embeddings.t()
        return {"text_features": text, "image_features": image, "logits": scale * image @ text.t(),
                "fixed_embeddings": self.fixed_embeddings, "zero_shot_image_features": zero_shot,
                "zero_shot_logits": zero_shot_logits}


def promptsrc_losses(out: dict[str, Tensor], labels: Tensor, text_weight: float,
                     image_weight: float) -> dict[str, Tensor]:
    """The published loss terms of ``CustomCLIP.train_outputs`` (the scl terms include their weights)."""
    logits = out["logits"]
    loss_ce = F.cross_entropy(logits, labels)
    loss_scl_text = F.l1_loss(out["text_features"], out["fixed_embeddings"]) * text_weight
    loss_scl_image = F.l1_loss(out["image_features"], out["zero_shot_image_features"]) * image_weight
    # KL(p_zero-shot || p_prompted), summed over batch and classes / (batch * n_cls) = row mean / n_cls
    loss_scl_logits = kl_divergence(out["zero_shot_logits"], logits) / logits.shape[1]
    loss_scl = loss_scl_logits + loss_scl_text + loss_scl_image
    return {"loss": loss_ce + loss_scl, "loss_ce": loss_ce, "loss_scl_text": loss_scl_text,
            "loss_scl_image": loss_scl_image, "loss_scl_logits": loss_scl_logits, "loss_scl": loss_scl,
            "acc": (logits.argmax(dim=1) == labels).float().mean() * 100.0}


@TRAINER_REGISTRY.register()
class PromptSRC(Trainer):
    log_keys = ("loss",)  # the published trainer logs the loss only
    #: rebuilt from the class names (published checkpoints also hold the frozen CLIP: skipped with a note)
    ignored_checkpoint_keys = REBUILT_KEYS
    checkpoint_key_map = {CHECKPOINT_FOLDER: PUBLISHED_KEYS}

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.PROMPTSRC = independent_prompt_keys(n_ctx=4)  # IVLP's keys, then the losses' and GPA's
        # Weight of the L1 consistency of the prompted with the frozen (template-ensemble) text features
        cfg.TRAINER.PROMPTSRC.TEXT_LOSS_WEIGHT = 25
        # Weight of the L1 consistency of the prompted with the frozen image features
        cfg.TRAINER.PROMPTSRC.IMAGE_LOSS_WEIGHT = 10
        # Gaussian prompt aggregation: mean (in epochs, 1-based) of the epoch weights
        cfg.TRAINER.PROMPTSRC.GPA_MEAN = 15
        # Gaussian prompt aggregation: standard deviation (in epochs) of the epoch weights
        cfg.TRAINER.PROMPTSRC.GPA_STD = 1

    def build_model(self) -> nn.Module:
        c = self.cfg.TRAINER.PROMPTSRC
        self.gpa_weights = gpa_weights(self.cfg.OPTIM.MAX_EPOCH, c.GPA_MEAN, c.GPA_STD)
        return CustomCLIP(self.cfg, self.classnames, self.load_clip())

    def build_hooks(self) -> list[HookBase]:
        hooks = super().build_hooks()
        self.gpa = GaussianPromptAggregation(self.model.prompts, self.gpa_weights)
        self.gpa.trainer = self
        return [self.gpa] + hooks  # first: checks, best-val and the checkpoint see the aggregate

    def extra_state(self) -> dict[str, Any]:
        return {"gpa": self.gpa.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "gpa" in state:
            self.gpa.load_state_dict(state["gpa"])

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {CHECKPOINT_FOLDER: self.model.prompts}

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        c = self.cfg.TRAINER.PROMPTSRC
        out = self.model.train_outputs(batch["img"])
        return promptsrc_losses(out, batch["label"], c.TEXT_LOSS_WEIGHT, c.IMAGE_LOSS_WEIGHT)

    def precompute(self) -> Optional[Tensor]:
        return self.model.text_features().float()

    def model_inference(self, images: Tensor) -> Tensor:
        return self.model.cosine_logits(self.model.image_features(images), self.precomputed)
