"""MetaProto: prompt tuning by meta-training with multimodal prototypes.

Kim and Baik, "Prompt Tuning for Vision-Language Models via Meta-Training", JBE 30(4), 2025,
doi 10.5909/JBE.2025.30.4.571 (no public code; the English spec is docs/methods/metaproto.md).

CoOp-style soft prompts are meta-trained on N-way episodes drawn from the base classes' few-shot set:
each class prototype is multimodal, c_i = MLP(w_i + CrossAttn(q=w_i, k=v=f(S_i))) from the class's text
feature w_i and its K support image features, queries are classified by cosine similarity to the
prototypes (Eq. 1, temperature from CLIP's frozen logit scale), and
L = CE(P_mm) + lambda * KL(P_mm || P_text) pulls the text-only prediction towards the multimodal one.
Inference is exactly CoOp's: the cross-attention and MLP are training-only, a checkpoint without them
evaluates identically.

Open choices (config keys under TRAINER.METAPROTO, defaults from the spec): ATTN_HEADS 1 (width = the
embedding dim); MLP Linear(d, d/4)-ReLU-Linear(d/4, d) (MLP_RATIO 0.25) with a residual around it
(MLP_RESIDUAL True; False: c = MLP(h)); KV "class" (support features of the class itself; "task": all
support images of the task); DETACH_MM False (KL gradients reach both distributions, as Eq. 5 is written;
True treats P_mm as a fixed target); the KL is over query images only; the temperature tau of Eq. (1) is
CLIP's frozen logit scale (TAU 0; TAU > 0: a fixed tau; LEARN_TAU: learned, kept in prototype_net).
Features are L2-normalised before the attention (CLIP's cosine space).

Analysis (the paper's Fig. 4), EVAL_PROTOTYPES True: every evaluation also classifies the same split by
multimodal prototypes, built by the trained cross-attention + MLP from EVAL_SUPPORT images per class of
the few-shot training set (drawn with a generator seeded by SEED, test transform). The published
``* accuracy:`` line stays the text-only inference; the prototype result is logged as
``* prototype_accuracy:`` and written to results.json as ``prototype_accuracy``. It needs prototype_net,
which every checkpoint saves: with --eval-only the option loads it too (and names the missing folder if a
run folder lacks it); without the option evaluation loads the prompts only.
"""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import ContextPromptCLIP
from vlprompt.data.datum import Datum
from vlprompt.data.manager import DatasetWrapper, train_loader
from vlprompt.data.samplers import EpisodicBatchSampler
from vlprompt.engine import Trainer
from vlprompt.engine.evaluator import Classification
from vlprompt.engine.hooks import HookBase
from vlprompt.engine.losses import kl_divergence
from vlprompt.errors import CheckpointError, ConfigError
from vlprompt.registry import TRAINER_REGISTRY
from vlprompt.utils import distributed as dist

logger = logging.getLogger(__name__)


class PrototypeNet(nn.Module):
    """Multimodal prototypes: ``h = w + Attn(w, S, S)``, ``c = h + MLP(h)`` (``residual`` False: ``c = MLP(h)``).

    Training-only (and the prototype evaluation). ``logit_scale``: the initial log(1/tau) of a learnable
    temperature, kept here because this is the checkpointed training-only module (None: not learned).
    """

    def __init__(self, dim: int, heads: int = 1, mlp_ratio: float = 0.25, residual: bool = True,
                 logit_scale: Optional[float] = None) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"TRAINER.METAPROTO.ATTN_HEADS {heads} must divide the embedding width {dim}; "
                              "set TRAINER.METAPROTO.ATTN_HEADS 1 (or another divisor).")
        hidden = max(1, int(dim * mlp_ratio))
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))
        self.residual = residual
        self.logit_scale = None if logit_scale is None else nn.Parameter(torch.tensor(float(logit_scale)))

    def forward(self, text: Tensor, support: Tensor) -> Tensor:
        """``text`` ``[B, E]`` (one query per prototype), ``support`` ``[B, S, E]`` -> prototypes ``[B, E]``."""
        attended, _ = self.cross_attn(text.unsqueeze(1), support, support, need_weights=False)
        h = text + attended.squeeze(1)
        return h + self.mlp(h) if self.residual else self.mlp(h)


class PrototypeEvalHook(HookBase):
    """EVAL_PROTOTYPES: after each evaluation, the same split classified by multimodal prototypes; logged on
    its own line (not ``* accuracy:``, which stays the published text-only result) and, through the trainer's
    ``evaluated`` dict, written to the final evaluation's results.json."""

    def after_eval(self, split: str, results: dict[str, Any]) -> None:
        t = self.trainer
        acc, per_class = t.prototype_accuracy(split)
        shown = "all" if per_class < 0 else per_class
        logger.info(f"=> multimodal prototypes (support images per class: {shown})\n* prototype_accuracy: {acc:.1f}%")
        t.evaluated = {**getattr(t, "evaluated", {}), "prototype_accuracy": acc, "prototype_support": per_class}


@TRAINER_REGISTRY.register()
class MetaProto(Trainer):
    @staticmethod
    def add_config(cfg: CN) -> None:
        c = cfg.TRAINER.METAPROTO = CN()
        # Context vectors (ignored when CTX_INIT is given) and their init words
        c.N_CTX = 4
        c.CTX_INIT = "a photo of a"
        # fp16, fp32, amp or bf16
        c.PREC = "fp16"
        # Episodes: N classes per task, K support images per class (the rest of the class's images are queries)
        c.N_WAY = 5
        c.K_SHOT = 2
        # Images per class in a task (-1 = all of the smallest class, i.e. every shot of a few-shot set)
        c.IMAGES_PER_CLASS = -1
        # Tasks per iteration (meta-batch) and iterations per epoch
        c.META_BATCH = 4
        c.ITERS_PER_EPOCH = 10
        # Weight of KL(P_mm || P_text)
        c.LAMBDA = 0.2
        # Cross-attention heads (width = embedding dim) and the MLP's hidden width / embedding width
        c.ATTN_HEADS = 1
        c.MLP_RATIO = 0.25
        # Keys/values of a class's prototype: "class" (its own supports) or "task" (all supports of the task)
        c.KV = "class"
        # Treat P_mm as a fixed target in the KL term
        c.DETACH_MM = False
        # Residual around the MLP: c = h + MLP(h); False: c = MLP(h)
        c.MLP_RESIDUAL = True
        # Temperature tau of Eq. (1) in training, logits = cos / tau (0 = CLIP's frozen logit scale, tau = 1/100 for
        # OpenAI weights); test logits keep CLIP's scale, which predicts the same
        c.TAU = 0.0
        # Learn tau (as log(1/tau), initialised from TAU or CLIP's scale; saved in prototype_net)
        c.LEARN_TAU = False
        # Also evaluate with multimodal prototypes from support images of the few-shot training set (Fig. 4)
        c.EVAL_PROTOTYPES = False
        # Support images per class for those prototypes: 0 = K_SHOT, -1 = all of the class's training images
        c.EVAL_SUPPORT = 0

    def build_model(self) -> nn.Module:
        c = self.method_cfg
        if c.KV not in ("class", "task"):
            raise ConfigError(f"TRAINER.METAPROTO.KV must be 'class' or 'task', got '{c.KV}'. "
                              "Set TRAINER.METAPROTO.KV class (or task).")
        if c.TAU < 0:
            raise ConfigError(f"TRAINER.METAPROTO.TAU must be >= 0 (0 = CLIP's logit scale), got {c.TAU}; "
                              "set e.g. TRAINER.METAPROTO.TAU 0.01.")
        if c.EVAL_SUPPORT < -1:
            raise ConfigError(f"TRAINER.METAPROTO.EVAL_SUPPORT must be -1 (all), 0 (K_SHOT) or a count, got "
                              f"{c.EVAL_SUPPORT}; set TRAINER.METAPROTO.EVAL_SUPPORT 0.")
        model = ContextPromptCLIP(self.load_clip(), self.classnames, c.N_CTX, c.CTX_INIT)
        learned = None
        if c.LEARN_TAU:
            learned = -math.log(c.TAU) if c.TAU > 0 else float(model.logit_scale.detach())
        model.prototype_net = PrototypeNet(model.embed_dim, c.ATTN_HEADS, c.MLP_RATIO, c.MLP_RESIDUAL, learned)
        return model

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner, "prototype_net": self.model.prototype_net}

    def inference_modules(self) -> dict[str, nn.Module]:
        if self.method_cfg.EVAL_PROTOTYPES:  # the prototype evaluation needs the trained cross-attention + MLP
            return self.checkpoint_modules()
        return {"prompt_learner": self.model.prompt_learner}  # prototypes are training-only

    def build_hooks(self) -> list[HookBase]:
        hooks = super().build_hooks()
        if self.method_cfg.EVAL_PROTOTYPES:
            hook = PrototypeEvalHook()
            hook.trainer = self
            hooks.append(hook)
        return hooks

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        if self.method_cfg.EVAL_PROTOTYPES and directory and not os.path.isdir(os.path.join(directory,
                                                                                           "prototype_net")):
            raise CheckpointError(f"TRAINER.METAPROTO.EVAL_PROTOTYPES True needs the training-only prototype_net/ of "
                                  f"the run, which {directory} lacks; evaluate a full run folder or set "
                                  "TRAINER.METAPROTO.EVAL_PROTOTYPES False.")
        super().load_model(directory, epoch)

    def temperature(self) -> Tensor:
        """``1 / tau`` of Eq. (1): the learned one (LEARN_TAU), ``1 / TAU``, or CLIP's frozen logit scale."""
        learned = self.model.prototype_net.logit_scale
        if learned is not None:
            return learned.exp()
        if self.method_cfg.TAU > 0:
            return torch.tensor(1.0 / self.method_cfg.TAU, device=self.device)
        return self.model.logit_scale.exp()

    def build_train_loader(self) -> Iterable[dict]:
        c = self.method_cfg
        if not hasattr(self, "_episodes"):
            items = self.dm.dataset.train_x
            self._sampler = EpisodicBatchSampler([d.label for d in items], c.N_WAY, c.K_SHOT, c.META_BATCH,
                                                 c.ITERS_PER_EPOCH, c.IMAGES_PER_CLASS)
            dl = self.cfg.DATALOADER  # with several processes, each takes whole tasks of the meta-batch
            self._episodes = train_loader(DatasetWrapper(items, self.dm.tfm_train, decoded=self.dm.decoded),
                                          self._sampler, dl.NUM_WORKERS,
                                          dl.PER_IMAGE_SEEDS, unit=c.N_WAY * self._sampler.per_class)
        return self._episodes

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        c = self.method_cfg
        n, m, k = c.N_WAY, self._sampler.per_class, c.K_SHOT
        t = batch["label"].numel() // (n * m)  # tasks of this process's slice of the meta-batch
        model = self.model
        feats = F.normalize(model.frozen_image_features(batch["img"]).float(), dim=-1).view(t, n, m, -1)
        classes = batch["label"].view(t, n, m)[:, :, 0]  # [t, n] class of each slot
        embeddings, eot = model.prompt_learner()
        uniq, where = torch.unique(classes, return_inverse=True)  # encode each class of the meta-batch once
        text = F.normalize(model.text_encoder(embeddings[uniq], eot[uniq]).float(), dim=-1)
        text = text.index_select(0, where.flatten()).view(*where.shape, -1)  # [t, n, E]; deterministic backward
        support, query = feats[:, :, :k], feats[:, :, k:]  # [t, n, k, E], [t, n, m-k, E]
        if c.KV == "task":
            kv = support.reshape(t, 1, n * k, -1).expand(-1, n, -1, -1)
        else:
            kv = support
        protos = model.prototype_net(text.reshape(t * n, -1), kv.reshape(t * n, kv.shape[2], -1)).view(t, n, -1)
        scale = self.temperature()
        q = query.reshape(t, n * (m - k), -1)  # queries of a task, class-major
        logits_mm = scale * torch.einsum("tqe,tne->tqn", q, F.normalize(protos, dim=-1))
        logits_text = scale * torch.einsum("tqe,tne->tqn", q, text)
        target = torch.arange(n, device=q.device).repeat_interleave(m - k).expand(t, -1)
        loss_cls = F.cross_entropy(logits_mm.flatten(0, 1), target.flatten())
        loss_kl = kl_divergence(logits_mm.flatten(0, 1), logits_text.flatten(0, 1), c.DETACH_MM)
        acc = (logits_mm.argmax(-1) == target).float().mean() * 100.0
        return {"loss": loss_cls + c.LAMBDA * loss_kl, "acc": acc, "loss_cls": loss_cls, "loss_kl": loss_kl}

    def precompute(self) -> Tensor:
        return self.model.text_features().float()

    def features_to_logits(self, features: Tensor) -> Tensor:
        return self.model.cosine_logits(features, self.precomputed)

    # ------------------------------------------------------------------ prototype evaluation (Fig. 4)
    @property
    def support_per_class(self) -> int:
        """Support images per class of the prototype evaluation (-1: all of the class's training images)."""
        c = self.method_cfg
        return c.K_SHOT if c.EVAL_SUPPORT == 0 else c.EVAL_SUPPORT

    def support_set(self) -> list[list[Datum]]:
        """``support_per_class`` training items of each evaluated class, drawn with a private generator seeded
        by SEED (evaluating never shifts the training RNG), so the set is the same in every run of a seed."""
        per_class = self.support_per_class
        by_class: list[list[Datum]] = [[] for _ in range(self.num_classes)]
        for d in self.dm.dataset.train_x:
            by_class[d.label].append(d)
        g = torch.Generator().manual_seed(max(self.cfg.SEED, 0))
        support = []
        for label, items in enumerate(by_class):
            if not items:
                raise ConfigError(f"TRAINER.METAPROTO.EVAL_PROTOTYPES: class {label} ({self.lab2cname.get(label)}) "
                                  "has no training image to build its prototype from; set EVAL_PROTOTYPES False.")
            order = torch.randperm(len(items), generator=g).tolist()
            support.append([items[i] for i in order[: per_class if per_class > 0 else len(items)]])
        return support

    def prototypes(self) -> Tensor:
        """Normalised multimodal prototypes ``[n_cls, E]`` of the evaluated classes: the learned prompts' text
        features attend to their support set's image features (test transform), then the MLP."""
        model = self.model
        support = self.support_set()
        flat = [d for items in support for d in items]
        data = DatasetWrapper(flat, self.dm.tfm_test)
        step = self.cfg.DATALOADER.TEST.BATCH_SIZE
        feats = []
        for start in range(0, len(flat), step):
            images = torch.stack([data[i]["img"] for i in range(start, min(start + step, len(flat)))])
            feats.append(F.normalize(model.frozen_image_features(images.to(self.device)).float(), dim=-1))
        per_class = torch.cat(feats).split([len(items) for items in support])
        text = F.normalize(model.text_features().float(), dim=-1)
        every = torch.cat(per_class).unsqueeze(0)  # KV "task": all the support images
        protos = [model.prototype_net(text[i:i + 1], every if self.method_cfg.KV == "task" else s.unsqueeze(0))
                  for i, s in enumerate(per_class)]  # one class at a time: support sizes may differ
        return F.normalize(torch.cat(protos).float(), dim=-1)

    def prototype_accuracy(self, split: str) -> tuple[float, int]:
        """Accuracy (%) on ``split`` of the prototypes' predictions, and the support images per class (-1 all)."""
        self.set_train_mode(False)
        loader = self.dm.val_loader if split == "val" else self.dm.test_loader
        evaluator = Classification(self.num_classes)
        with torch.no_grad(), self.precision.autocast():
            protos = self.prototypes()
            cached = self.eval_feature_batches(loader, split)  # the features the evaluation just used
            batches = cached if cached is not None else (
                (self.frozen_image_features(b["img"].to(self.device)), b["label"]) for b in loader if b is not None)
            for feats, labels in batches:
                evaluator.process(self.model.cosine_logits(feats.to(self.device), protos), labels)
        if dist.world_size() > 1:  # each process evaluated a slice of the split
            evaluator.gather(lambda t: dist.gather_rows(t.to(self.device)).cpu())
        return float(evaluator.evaluate()["accuracy"]), self.support_per_class
