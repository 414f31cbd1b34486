"""InstancePrompt: instance-wise prompt learning.

Lee and Shim (Seoul National University), "Instance-Wise Prompt Learning for Vision-Language Models"
(no public code; the English spec is docs/methods/instance_prompt.md).

Every training image gets a prompt of its own: [global context (shared)] + [instance context (one set
per training image)] + [class name]. Training: for each image and every class, 2 of that class's
instance prompts are picked at random (the image's own prompt is always one of its class's picks);
cross-entropy over the cosine similarities to all picked prompts, the target being the image's own
prompt. All instance prompts are encoded once per step and gathered per image (exact and cheap); with
several processes each encodes a slice of them, and each draws the picks of the whole global batch and
keeps its rows.
Inference: for each class keep the TOPK prompts most similar to the test image among its candidates and
average their L2-normalised text features into the class representative; every candidate's text feature is
image-independent, so it is encoded once per evaluation and inference is a matrix product + top-k.

Which prompts are a class's candidates (CANDIDATES) is the paper's open point. Default "own", the literal
reading: the class's own instance prompts, i.e. its training images'. Then a class has exactly `shots`
candidates, so whenever shots <= TOPK (the paper's 4 shots with top-4 included) every candidate is kept
and inference is a fixed, image-independent class mean: the top-k selects per image only from 8 shots up.
Option "all", the candidate-pool reading: every learned instance context paired with every class name
(shots x training classes candidates per class), so top-k selects per image at any shot count; it encodes
n_cls times more prompts at evaluation (cheap for the few-shot datasets, heavy for ImageNet-scale ones).
Classes without instance prompts of their own (the new classes of base-to-new) always use the pool, since
instance contexts carry no class by themselves; base classes follow CANDIDATES.

Open choices (TRAINER.INSTANCEPROMPT keys, defaults from the spec): N_CTX_GLOBAL 4 with CTX_INIT
"a photo of a"; N_CTX_INSTANCE 4 initialised N(0, 0.02); PICKS_PER_CLASS 2; TOPK 4; CANDIDATES "own";
TARGET "instance" (option "class": any of the class's picks is right); INFERENCE "feature_mean" (option
"context_mean": average the top-k instance contexts and re-encode, per image, much costlier).
"""
from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import PromptedCLIP
from vlprompt.clip.prompts import ClassPrompts, init_context
from vlprompt.clip.text import PromptedTextEncoder
from vlprompt.engine import Trainer
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY


class InstancePromptLearner(nn.Module):
    """``global_ctx`` ``[G, D]`` shared, ``instance_ctx`` ``[N_inst, I, D]`` one set per training image.

    The training images' class names travel in the state dict (extra state), so a checkpoint knows
    which class each instance prompt belongs to; loading resizes ``instance_ctx`` to the checkpoint's.
    """

    checkpoint_sized = ("instance_ctx", "instance_labels")

    def __init__(self, text_encoder: PromptedTextEncoder, classnames: list[str], instance_labels: list[int],
                 n_global: int, ctx_init: str, n_instance: int) -> None:
        super().__init__()
        global_ctx, words = init_context(text_encoder, n_global, ctx_init)
        self.global_ctx = nn.Parameter(global_ctx)
        instance_ctx = torch.empty(len(instance_labels), n_instance, text_encoder.width)
        nn.init.normal_(instance_ctx, std=0.02)
        self.instance_ctx = nn.Parameter(instance_ctx)
        self.register_buffer("instance_labels", torch.tensor(instance_labels, dtype=torch.long))
        self.instance_classnames = [classnames[y] for y in instance_labels]
        prefix = f"{words} {' '.join(['X'] * n_instance)}"
        self.prompts = ClassPrompts(text_encoder, classnames, prefix, global_ctx.shape[0] + n_instance)

    def contexts(self, instance_ids: Tensor) -> Tensor:
        """``[R, G + I, D]``: the global context followed by each instance's context."""
        inst = self.instance_ctx[instance_ids]
        return torch.cat([self.global_ctx.unsqueeze(0).expand(inst.shape[0], -1, -1), inst], dim=1)

    def get_extra_state(self) -> dict:
        return {"instance_classnames": list(self.instance_classnames)}

    def set_extra_state(self, state: dict) -> None:
        self.instance_classnames = list(state["instance_classnames"])

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):  # noqa: ANN001
        # the number of instance prompts is the training set's, not this run's: take the checkpoint's
        for name in ("instance_ctx", "instance_labels"):
            stored = state_dict.get(prefix + name)
            own = getattr(self, name)
            if stored is not None and stored.shape != own.shape and stored.shape[1:] == own.shape[1:]:
                new = torch.empty_like(stored, device=own.device, dtype=own.dtype)
                if isinstance(own, nn.Parameter):
                    self.instance_ctx = nn.Parameter(new, requires_grad=own.requires_grad)
                else:
                    self.instance_labels = new
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


def sample_picks(labels: Tensor, own_ids: Tensor, members: Tensor, k: int = 2,
                 generator: torch.Generator | None = None) -> Tensor:
    """For each image and every class, ``k`` random instance prompts of that class; the image's own
    prompt is always the first pick of its own class (classes with fewer than k prompts repeat one).

    Args: labels ``[B]``, own_ids ``[B]`` (the images' instance ids), members ``[n_cls, M]`` (instance
    ids of each class, padded with -1, ``M >= k``). Returns ``[B, n_cls, k]`` instance ids.
    """
    b, (n_cls, m) = labels.shape[0], members.shape
    scores = torch.rand(b, n_cls, m, generator=generator, device=members.device)
    taken = (members < 0).unsqueeze(0) | (members.unsqueeze(0) == own_ids.view(b, 1, 1))
    scores = scores.masked_fill(taken, -1.0)
    top_vals, top_idx = scores.topk(k, dim=-1)
    picks = members.unsqueeze(0).expand(b, -1, -1).gather(2, top_idx)
    picks = torch.where(top_vals >= 0, picks, picks[..., :1])  # too few prompts in a class: repeat the first
    rows = torch.arange(b, device=labels.device)
    rest, rest_ok = picks[rows, labels, : k - 1], top_vals[rows, labels, : k - 1] >= 0
    rest = torch.where(rest_ok, rest, own_ids.unsqueeze(1))
    picks[rows, labels] = torch.cat([own_ids.unsqueeze(1), rest], dim=1)
    return picks


def topk_mean_logits(image_features: Tensor, candidates: Tensor, mask: Tensor, k: int, scale: Tensor,
                     chunk: int = 64) -> Tensor:
    """Per class, average the L2-normalised features of the ``k`` candidates most similar to the image,
    renormalise, and score by scaled cosine similarity.

    Args: image_features ``[B, E]``, candidates ``[n_cls, P, E]`` (normalised), mask ``[n_cls, P]`` (valid
    candidates). Returns logits ``[B, n_cls]``.
    """
    x = F.normalize(image_features, dim=-1)
    k = min(k, candidates.shape[1])
    out = []
    for xs in x.split(chunk):
        sims = torch.einsum("be,cpe->bcp", xs, candidates).masked_fill(~mask, float("-inf"))
        vals, idx = sims.topk(k, dim=-1)  # [b, n_cls, k]
        keep = torch.isfinite(vals).unsqueeze(-1)
        picked = candidates.unsqueeze(0).expand(xs.shape[0], -1, -1, -1).gather(
            2, idx.unsqueeze(-1).expand(-1, -1, -1, candidates.shape[-1]))
        rep = F.normalize((picked * keep).sum(2), dim=-1)  # the mean's direction = the sum's
        out.append(torch.einsum("be,bce->bc", xs, rep))
    return scale * torch.cat(out)


class InstancePromptCLIP(PromptedCLIP):
    def __init__(self, clip_model: nn.Module, classnames: list[str], instance_labels: list[int], n_global: int,
                 ctx_init: str, n_instance: int) -> None:
        super().__init__(clip_model)
        self.prompt_learner = InstancePromptLearner(self.text_encoder, classnames, instance_labels, n_global,
                                                    ctx_init, n_instance)
        self.classnames = list(classnames)

    def encode(self, instance_ids: Tensor, class_rows: Tensor) -> Tensor:
        """Normalised text features of (instance context, class name) pairs ``[R, E]`` (the same pairs in every
        process: with several, each encodes a slice)."""
        pl = self.prompt_learner
        embeddings, eot = pl.prompts(pl.contexts(instance_ids), class_rows)
        return F.normalize(self.text_encoder.forward_shared(embeddings, eot).float(), dim=-1)

    def image_features(self, images: Tensor) -> Tensor:
        return F.normalize(self.frozen_image_features(images).float(), dim=-1)

    def candidates(self, pool: bool = False) -> tuple[Tensor, Tensor]:
        """Instance ids ``[n_cls, P]`` (-1 padded) of each evaluated class's candidate prompts (each instance
        context with the class's name) and their mask: the class's own instance prompts, or every learned
        instance context when ``pool`` or when the class has none (the new classes of base-to-new)."""
        pl = self.prompt_learner
        n_inst = pl.instance_ctx.shape[0]
        device = pl.instance_ctx.device
        own = [[j for j, name in enumerate(pl.instance_classnames) if name == c] for c in self.classnames]
        lists = [ids if ids and not pool else list(range(n_inst)) for ids in own]
        width = max(len(ids) for ids in lists)
        ids = torch.full((len(lists), width), -1, dtype=torch.long, device=device)
        for c, members in enumerate(lists):
            ids[c, : len(members)] = torch.tensor(members, device=device)
        return ids, ids >= 0


@TRAINER_REGISTRY.register()
class InstancePrompt(Trainer):
    @staticmethod
    def add_config(cfg: CN) -> None:
        c = cfg.TRAINER.INSTANCEPROMPT = CN()
        # Global context vectors and their init words ("" = random N(0, 0.02))
        c.N_CTX_GLOBAL = 4
        c.CTX_INIT = "a photo of a"
        # Context vectors per training image, initialised N(0, 0.02)
        c.N_CTX_INSTANCE = 4
        # Instance prompts picked per class for each training image
        c.PICKS_PER_CLASS = 2
        # Prompts kept per class at inference
        c.TOPK = 4
        # A class's candidate prompts at inference: "own" (its training images' instance prompts; with shots <= TOPK
        # all are kept, a fixed class mean) or "all" (every instance context + the class name; new classes: always)
        c.CANDIDATES = "own"
        # Training target: "instance" (the image's own prompt) or "class" (any pick of its class)
        c.TARGET = "instance"
        # "feature_mean" (average the top-k prompts' text features) or "context_mean" (average their contexts, re-encode)
        c.INFERENCE = "feature_mean"
        # fp16, fp32, amp or bf16
        c.PREC = "fp16"
        # Text sequences encoded at once at evaluation
        c.MAX_TEXT_BATCH = 8192

    def build_model(self) -> nn.Module:
        c = self.method_cfg
        if c.TARGET not in ("instance", "class"):
            raise ConfigError(f"TRAINER.INSTANCEPROMPT.TARGET must be 'instance' or 'class', got '{c.TARGET}'. "
                              "Set TRAINER.INSTANCEPROMPT.TARGET instance (or class).")
        if c.INFERENCE not in ("feature_mean", "context_mean"):
            raise ConfigError("TRAINER.INSTANCEPROMPT.INFERENCE must be 'feature_mean' or 'context_mean', "
                              f"got '{c.INFERENCE}'. Set TRAINER.INSTANCEPROMPT.INFERENCE feature_mean (or "
                              "context_mean).")
        if c.CANDIDATES not in ("own", "all"):
            raise ConfigError(f"TRAINER.INSTANCEPROMPT.CANDIDATES must be 'own' or 'all', got '{c.CANDIDATES}'. "
                              "Set TRAINER.INSTANCEPROMPT.CANDIDATES own (or all).")
        labels = [d.label for d in self.dm.dataset.train_x]
        return InstancePromptCLIP(self.load_clip(), self.classnames, labels, c.N_CTX_GLOBAL, c.CTX_INIT,
                                  c.N_CTX_INSTANCE)

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner}

    def _members(self) -> Tensor:
        labels = self.model.prompt_learner.instance_labels
        n_cls = len(self.classnames)
        counts = torch.bincount(labels, minlength=n_cls)
        width = max(int(counts.max()), self.method_cfg.PICKS_PER_CLASS)
        members = torch.full((n_cls, width), -1, dtype=torch.long, device=labels.device)
        order = torch.argsort(labels, stable=True)
        starts = torch.cumsum(counts, 0) - counts
        pos = torch.arange(labels.numel(), device=labels.device) - starts[labels[order]]
        members[labels[order], pos] = order
        return members

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        c = self.method_cfg
        model = self.model
        pl = model.prompt_learner
        labels = batch["label"]
        all_ids = torch.arange(pl.instance_ctx.shape[0], device=labels.device)
        text = model.encode(all_ids, pl.instance_labels)  # every instance prompt, once per step
        # drawn for the whole global batch (as one process would), this process's rows kept; the loader's
        # index is the image's instance id
        every, rows = self.global_batch()
        picks = sample_picks(every["label"], every["index"], self._members(), c.PICKS_PER_CLASS)[rows]  # [B, C, k]
        img = model.image_features(batch["img"])
        # index_select, not text[picks]: its backward accumulates the repeated picks in a fixed order, so runs
        # are bitwise reproducible (advanced indexing accumulates with threads on CPU)
        picked = text.index_select(0, picks.flatten()).view(*picks.shape[:1], -1, text.shape[-1])
        logits = model.logit_scale.exp() * torch.einsum("be,bre->br", img, picked)
        k = c.PICKS_PER_CLASS
        if c.TARGET == "instance":
            loss = F.cross_entropy(logits, labels * k)  # own prompt = first pick of the own class
        else:
            loss = F.cross_entropy(logits.view(-1, len(self.classnames), k).logsumexp(-1), labels)
        pred = logits.view(-1, len(self.classnames), k).max(-1).values.argmax(-1)
        return {"loss": loss, "acc": (pred == labels).float().mean() * 100.0}

    def precompute(self) -> tuple[Tensor, Tensor, Tensor]:
        """Every candidate prompt's text feature: ids ``[n_cls, P]``, mask, features ``[n_cls, P, E]``."""
        model = self.model
        ids, mask = model.candidates(pool=self.method_cfg.CANDIDATES == "all")
        rows = torch.arange(ids.shape[0], device=ids.device).unsqueeze(1).expand_as(ids)
        flat_ids, flat_rows = ids[mask], rows[mask]
        step = self.method_cfg.MAX_TEXT_BATCH
        feats = torch.cat([model.encode(i, r) for i, r in zip(flat_ids.split(step), flat_rows.split(step))])
        candidates = torch.zeros(*ids.shape, feats.shape[-1], device=feats.device)
        candidates[mask] = feats
        return ids, mask, candidates

    def features_to_logits(self, features: Tensor) -> Tensor:
        ids, mask, candidates = self.precomputed
        c, model = self.method_cfg, self.model
        scale = model.logit_scale.exp()
        img = F.normalize(features.float(), dim=-1)  # model.image_features of the images
        if c.INFERENCE == "feature_mean":
            return topk_mean_logits(img, candidates, mask, c.TOPK, scale)
        return self._context_mean_logits(img, ids, mask, candidates, scale)

    def _context_mean_logits(self, img: Tensor, ids: Tensor, mask: Tensor, candidates: Tensor, scale: Tensor) -> Tensor:
        """Average the top-k instance contexts per class and image, then encode those prompts (B x n_cls)."""
        model, pl = self.model, self.model.prompt_learner
        k = min(self.method_cfg.TOPK, ids.shape[1])
        n_cls = ids.shape[0]
        out = []
        for x in img.split(max(1, self.method_cfg.MAX_TEXT_BATCH // n_cls)):
            sims = torch.einsum("be,cpe->bcp", x, candidates).masked_fill(~mask, float("-inf"))
            vals, idx = sims.topk(k, dim=-1)
            chosen = ids.unsqueeze(0).expand(x.shape[0], -1, -1).gather(2, idx)  # [b, n_cls, k]
            keep = torch.isfinite(vals).unsqueeze(-1).unsqueeze(-1)
            ctx = pl.contexts(chosen.clamp(min=0).flatten())
            ctx = (ctx.view(*chosen.shape, *ctx.shape[1:]) * keep).sum(2) / keep.sum(2)  # [b, n_cls, G+I, D]
            emb, eot = pl.prompts(ctx)  # [b, n_cls, L, D]
            text = model.text_encoder(emb.flatten(0, 1), eot.repeat(x.shape[0])).float().view(x.shape[0], n_cls, -1)
            out.append(torch.einsum("be,bce->bc", x, F.normalize(text, dim=-1)))
        return scale * torch.cat(out)
