"""Trainer: builds data and model, runs the epoch loop, evaluates, saves and resumes.

A method subclasses it and implements ``build_model``, ``compute_loss`` and ``model_inference``
(optionally ``prepare_eval``, ``checkpoint_modules``, ``build_train_loader``). The loop, the
optimizer and LR schedule, precision, logging and checkpoints belong to the engine.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import time
from typing import Any, Iterable, Optional

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from tqdm import tqdm
from yacs.config import CfgNode

from vlprompt.clip.load import load_clip
from vlprompt.data.manager import DataManager

from .checkpoint import CheckpointError, latest_checkpoint, load_checkpoint, load_state_dict_checked, save_checkpoint
from .evaluator import Classification
from .meters import AverageMeter, MetricMeter
from .optim import build_lr_scheduler, build_optimizer, lr_factor
from .precision import Precision, resolve_precision

logger = logging.getLogger(__name__)


def classification_loss(logits: Tensor, labels: Tensor) -> dict[str, Tensor]:
    """``{"loss": cross-entropy, "acc": accuracy in %}`` of ``logits`` ``[B, C]``."""
    return {"loss": F.cross_entropy(logits, labels), "acc": (logits.argmax(dim=1) == labels).float().mean() * 100.0}


class Trainer:
    """Base class of every method (Dassl's TrainerX contract, with the loop owned here)."""

    #: config node under TRAINER whose PREC key sets the precision (default: the upper-cased class name)
    precision_node: Optional[str] = None
    #: keys of saved state dicts that are rebuilt from the class names and never loaded
    ignored_checkpoint_keys: tuple[str, ...] = ("token_prefix", "token_suffix")

    @staticmethod
    def add_config(cfg: CfgNode) -> None:
        """Add this method's ``cfg.TRAINER.<NAME>`` section."""

    def __init__(self, cfg: CfgNode) -> None:
        self.cfg = cfg
        use_cuda = torch.cuda.is_available() and cfg.USE_CUDA
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.output_dir = cfg.OUTPUT_DIR
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.best_result = -float("inf")
        self._transient_epoch: Optional[int] = None
        self.precision = Precision(resolve_precision(self._requested_precision(), self.device), self.device)
        self.build_data_loader()
        self.model = self.build_model()
        self.model.to(self.device)
        learnable = [p for p in self.model.parameters() if p.requires_grad]
        n_learn = sum(p.numel() for p in learnable)
        logger.info(f"# learnable params: {n_learn:,}")
        self.optim = build_optimizer(learnable, cfg.OPTIM) if learnable else None
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM) if self.optim is not None else None
        self.evaluator = Classification(self.num_classes)

    # ------------------------------------------------------------------ method contract
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``{"loss": scalar, ...}`` for one training batch; no backward, no step.
        Default: cross-entropy of ``self.model(images)``, and the batch accuracy for the log."""
        return classification_loss(self.model(batch["img"]), batch["label"])

    def model_inference(self, images: Tensor) -> Tensor:
        """Logits ``[B, n_classes]``. Default: ``self.model(images)``."""
        return self.model(images)

    def prepare_eval(self) -> None:
        """Called once before each evaluation (cache image-independent text features here)."""

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        """Modules saved in checkpoints, under their published names."""
        return {}

    def inference_modules(self) -> dict[str, nn.Module]:
        """The checkpointed modules that evaluation needs (``--eval-only`` loads only these); default: all.
        A method whose training-only modules are checkpointed for resuming leaves them out here."""
        return self.checkpoint_modules()

    def build_train_loader(self) -> Iterable[dict]:
        return self.dm.train_loader_x

    # ------------------------------------------------------------------ helpers for methods
    @property
    def method_cfg(self) -> CfgNode:
        return self.cfg.TRAINER.get(type(self).__name__.upper(), CfgNode())

    def _requested_precision(self) -> str:
        node = self.cfg.TRAINER.get(self.precision_node or type(self).__name__.upper(), None)
        return node.PREC if node is not None and "PREC" in node else "fp32"

    def load_clip(self) -> nn.Module:
        """The frozen open_clip model of MODEL.BACKBONE.NAME in this run's precision."""
        name = self.cfg.MODEL.BACKBONE.NAME
        logger.info(f"Loading CLIP (backbone: {name})")
        model = load_clip(name, self.precision.mode, self.cfg.MODEL.BACKBONE.CACHE_DIR)
        size = getattr(model.visual, "image_size", None)
        size = size[0] if isinstance(size, (tuple, list)) else size
        if size is not None and size != self.cfg.INPUT.SIZE[0]:
            raise ValueError(f"INPUT.SIZE {tuple(self.cfg.INPUT.SIZE)} does not match the CLIP input resolution "
                             f"{size} of '{name}'; set INPUT.SIZE ({size}, {size}).")
        return model

    def build_data_loader(self) -> None:
        self.dm = DataManager(self.cfg)
        self.num_classes = self.dm.num_classes
        self.lab2cname = self.dm.lab2cname
        self.classnames = self.dm.classnames

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}

    # ------------------------------------------------------------------ training
    def set_train_mode(self, train: bool) -> None:
        """Frozen parts stay in eval mode (BatchNorm, dropout); only checkpointed modules train."""
        self.model.eval()
        if train:
            for module in self.checkpoint_modules().values():
                module.train()

    def forward_backward(self, batch: dict[str, Any]) -> dict[str, float]:
        """autocast -> compute_loss -> (scaled) backward -> optimizer step; returns floats for the log."""
        batch = self.to_device(batch)
        with self.precision.autocast():
            out = self.compute_loss(batch)
        loss = out["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(f"Loss is {loss.item()} at epoch {self.epoch + 1}, batch {self.batch_idx + 1}.")
        self.precision.backward_and_step(loss, self.optim)
        return {k: float(v.detach()) for k, v in out.items()}

    def train(self) -> None:
        if self.optim is None:
            raise RuntimeError(f"{type(self).__name__} has nothing to train; run it with --eval-only.")
        self.resume_if_exists(self.cfg.RESUME or self.output_dir)
        self.time_start = time.time()
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.run_epoch()
            self.after_epoch()
        self.after_train()

    def run_epoch(self) -> None:
        self.set_train_mode(True)
        losses, batch_time, data_time = MetricMeter(), AverageMeter(), AverageMeter()
        loader = self.build_train_loader()
        self.num_batches = len(loader)
        freq = self.cfg.TRAIN.PRINT_FREQ
        end = time.time()
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{self.max_epoch}", leave=False, disable=None)
        for self.batch_idx, batch in enumerate(bar):
            data_time.update(time.time() - end)
            losses.update(self.forward_backward(batch))
            batch_time.update(time.time() - end)
            if (self.batch_idx + 1) % freq == 0 or self.num_batches < freq:
                remaining = self.num_batches - self.batch_idx - 1 + (self.max_epoch - self.epoch - 1) * self.num_batches
                eta = str(datetime.timedelta(seconds=int(batch_time.avg * remaining)))
                logger.info(
                    f"epoch [{self.epoch + 1}/{self.max_epoch}] batch [{self.batch_idx + 1}/{self.num_batches}] "
                    f"time {batch_time.val:.3f} ({batch_time.avg:.3f}) data {data_time.val:.3f} ({data_time.avg:.3f}) "
                    f"{losses} lr {self.optim.param_groups[0]['lr']:.4e} eta {eta}")
            end = time.time()
        self.sched.step()

    def after_epoch(self) -> None:
        last = self.epoch + 1 == self.max_epoch
        freq = self.cfg.TRAIN.CHECKPOINT_FREQ
        if not self.cfg.TEST.NO_TEST and self.cfg.TEST.FINAL_MODEL == "best_val":
            result = self.test(split="val")
            if result > self.best_result:
                self.best_result = result
                self.save_model(self.epoch, val_result=result, model_name="model-best.pth.tar")
        keep = last or (freq > 0 and (self.epoch + 1) % freq == 0)
        # every epoch is saved so that --resume (and a crash) loses at most one epoch; files that the
        # published schedule would not keep are removed once the next one is written
        self.save_model(self.epoch)
        if self._transient_epoch is not None:
            self._remove_epoch_files(self._transient_epoch)
        self._transient_epoch = None if keep else self.epoch + 1

    def _remove_epoch_files(self, epoch: int) -> None:
        for name in self.checkpoint_modules():
            path = os.path.join(self.output_dir, name, f"model.pth.tar-{epoch}")
            if os.path.isfile(path):
                os.remove(path)

    def after_train(self) -> None:
        logger.info("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Deploy the model with the best val performance")
                self.load_model(self.output_dir)
            else:
                logger.info("Deploy the last-epoch model")
            self.test()
        logger.info(f"Elapsed: {datetime.timedelta(seconds=round(time.time() - self.time_start))}")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def test(self, split: Optional[str] = None) -> float:
        self.set_train_mode(False)
        split = split or self.cfg.TEST.SPLIT
        loader = self.dm.val_loader if split == "val" else None
        if loader is None:
            split, loader = "test", self.dm.test_loader
        logger.info(f"Evaluate on the *{split}* set")
        self.evaluator.reset()
        with self.precision.autocast():
            self.prepare_eval()
            for batch in tqdm(loader, desc=f"eval {split}", leave=False, disable=None):
                images = batch["img"].to(self.device, non_blocking=True)
                self.evaluator.process(self.model_inference(images).float(), batch["label"].to(self.device))
        r = self.evaluator.evaluate()
        lines = ["=> result", f"* total: {r['total']:,}", f"* correct: {r['correct']:,}",
                 f"* accuracy: {r['accuracy']:.1f}%", f"* error: {r['error_rate']:.1f}%",
                 f"* macro_f1: {r['macro_f1']:.1f}%"]
        if self.cfg.TEST.PER_CLASS_RESULT:
            lines.append("=> per-class result")
            for label, acc in sorted(r["perclass_accuracy"].items()):
                lines.append(f"* class: {label} ({self.lab2cname.get(label, '')})\tacc: {acc:.1f}%")
        logger.info("\n".join(lines))
        self._write_results(split, r)
        return float(r["accuracy"])

    def _write_results(self, split: str, r: dict) -> None:
        if not self.output_dir:
            return
        os.makedirs(self.output_dir, exist_ok=True)
        path = os.path.join(self.output_dir, "results.json")
        payload = {k: r[k] for k in ("accuracy", "error_rate", "macro_f1", "total", "correct")}
        payload.update(split=split, dataset=self.cfg.DATASET.NAME, trainer=self.cfg.TRAINER.NAME,
                       subsample=self.cfg.DATASET.SUBSAMPLE_CLASSES, seed=self.cfg.SEED)
        tmp = path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(payload, f, indent=2)
        os.replace(tmp, path)

    # ------------------------------------------------------------------ checkpoints
    def save_model(self, epoch: int, val_result: Optional[float] = None, model_name: str = "") -> None:
        for name, module in self.checkpoint_modules().items():
            state = {
                "state_dict": module.state_dict(),
                "epoch": epoch + 1,
                "optimizer": self.optim.state_dict() if self.optim is not None else None,
                "scheduler": self.sched.state_dict() if self.sched is not None else None,
                "val_result": val_result,
            }
            save_checkpoint(state, os.path.join(self.output_dir, name), model_name)

    def resume_if_exists(self, directory: str) -> None:
        modules = self.checkpoint_modules()
        paths = {name: latest_checkpoint(os.path.join(directory, name)) for name in modules}
        if not modules or any(p is None for p in paths.values()):
            logger.info("No checkpoint found, train from scratch")
            return
        logger.info(f"Found checkpoint at {directory} (will resume training)")
        for name, module in modules.items():
            ckpt = load_checkpoint(paths[name])
            load_state_dict_checked(module, ckpt["state_dict"], paths[name], self.ignored_checkpoint_keys)
            if ckpt.get("optimizer") and self.optim is not None:
                self.optim.load_state_dict(ckpt["optimizer"])
            self.start_epoch = int(ckpt["epoch"])
            logger.info(f'Loaded "{paths[name]}" (previous epoch: {self.start_epoch})')
        if self.sched is not None:  # the LR of the next epoch, as if the schedule had run
            self.sched.last_epoch = self.start_epoch
            for group in self.optim.param_groups:
                group["lr"] = group["initial_lr"] * lr_factor(self.start_epoch, self.cfg.OPTIM)

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        """Load the weights saved at ``epoch`` (default: the best-val model) from a run folder."""
        modules = self.inference_modules()
        if not modules:
            return
        if not directory:
            raise CheckpointError(f"{type(self).__name__} has learned weights to load: pass --model-dir (the "
                                  "--output-dir of a training run) and --load-epoch.")
        fname = f"model.pth.tar-{epoch}" if epoch is not None else "model-best.pth.tar"
        for name, module in modules.items():
            path = os.path.join(directory, name, fname)
            if not os.path.isfile(path):
                folder = os.path.join(directory, name)
                found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
                raise CheckpointError(f"No checkpoint at {path}. Files in {folder}: {found or 'none (no such folder)'}"
                                      ". Check --model-dir and --load-epoch.")
            ckpt = load_checkpoint(path)
            load_state_dict_checked(module, ckpt["state_dict"], path, self.ignored_checkpoint_keys)
            logger.info(f'Loading weights to {name} from "{path}" (epoch = {ckpt.get("epoch")})')
