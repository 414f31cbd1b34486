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
embedding dim); MLP Linear(d, d/4)-ReLU-Linear(d/4, d) with a residual (MLP_RATIO 0.25); KV "class"
(support features of the class itself; "task": all support images of the task); DETACH_MM False
(KL gradients reach both distributions, as Eq. 5 is written; True treats P_mm as a fixed target); the
KL is over query images only. Features are L2-normalised before the attention (CLIP's cosine space).
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from yacs.config import CfgNode as CN

from vlprompt.clip.model import ContextPromptCLIP
from vlprompt.data.manager import DatasetWrapper, train_loader
from vlprompt.data.samplers import EpisodicBatchSampler
from vlprompt.engine import Trainer
from vlprompt.engine.losses import kl_divergence
from vlprompt.errors import ConfigError
from vlprompt.registry import TRAINER_REGISTRY


class PrototypeNet(nn.Module):
    """Multimodal prototypes: ``h = w + Attn(w, S, S)``, ``c = h + MLP(h)`` (training only)."""

    def __init__(self, dim: int, heads: int = 1, mlp_ratio: float = 0.25) -> None:
        super().__init__()
        if dim % heads:
            raise ConfigError(f"TRAINER.METAPROTO.ATTN_HEADS {heads} must divide the embedding width {dim}; "
                              "set TRAINER.METAPROTO.ATTN_HEADS 1 (or another divisor).")
        hidden = max(1, int(dim * mlp_ratio))
        self.cross_attn = nn.MultiheadAttention(dim, heads, batch_first=True)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(inplace=True), nn.Linear(hidden, dim))

    def forward(self, text: Tensor, support: Tensor) -> Tensor:
        """``text`` ``[B, E]`` (one query per prototype), ``support`` ``[B, S, E]`` -> prototypes ``[B, E]``."""
        attended, _ = self.cross_attn(text.unsqueeze(1), support, support, need_weights=False)
        h = text + attended.squeeze(1)
        return h + self.mlp(h)


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

    def build_model(self) -> nn.Module:
        c = self.method_cfg
        if c.KV not in ("class", "task"):
            raise ConfigError(f"TRAINER.METAPROTO.KV must be 'class' or 'task', got '{c.KV}'. "
                              "Set TRAINER.METAPROTO.KV class (or task).")
        model = ContextPromptCLIP(self.load_clip(), self.classnames, c.N_CTX, c.CTX_INIT)
        model.prototype_net = PrototypeNet(model.embed_dim, c.ATTN_HEADS, c.MLP_RATIO)
        return model

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner, "prototype_net": self.model.prototype_net}

    def inference_modules(self) -> dict[str, nn.Module]:
        return {"prompt_learner": self.model.prompt_learner}  # prototypes are training-only

    def build_train_loader(self) -> Iterable[dict]:
        c = self.method_cfg
        if not hasattr(self, "_episodes"):
            items = self.dm.dataset.train_x
            self._sampler = EpisodicBatchSampler([d.label for d in items], c.N_WAY, c.K_SHOT, c.META_BATCH,
                                                 c.ITERS_PER_EPOCH, c.IMAGES_PER_CLASS)
            dl = self.cfg.DATALOADER  # with several processes, each takes whole tasks of the meta-batch
            self._episodes = train_loader(DatasetWrapper(items, self.dm.tfm_train), self._sampler, dl.NUM_WORKERS,
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
        scale = model.logit_scale.exp()
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

    def model_inference(self, images: Tensor) -> Tensor:
        return self.model.logits_with(self.precomputed, images)
