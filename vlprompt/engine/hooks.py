"""Hooks: everything the training loop does besides ``forward_backward`` (detectron2's idea, small).

Call points, in the order of ``Trainer.hooks`` at each one:

* ``before_train()``: after resuming, before the first epoch.
* ``before_epoch()`` / ``after_epoch()``: around each epoch (``trainer.epoch`` is 0-based).
* ``before_step()`` / ``after_step()``: around each ``forward_backward``; ``trainer.batch_idx``,
  ``trainer.num_batches`` and ``trainer.losses`` (the epoch's running meters) are set.
* ``after_eval(split, results)``: after every evaluation (``results``: the evaluator's dict).
* ``after_train()``: after the final evaluation.

Default order: LR scheduler (so that the last batch's log line shows the next epoch's rate, as Dassl's
trainers step it inside ``forward_backward``), log, TensorBoard, parameter guard, best-val evaluation,
checkpoint (saved last, after everything that changes the run state).
"""
from __future__ import annotations

import datetime
import logging
import os
import time
from typing import TYPE_CHECKING, Any

import torch

from vlprompt.errors import TrainingDivergedError

from .meters import AverageMeter

if TYPE_CHECKING:
    from .trainer import Trainer

logger = logging.getLogger(__name__)


class HookBase:
    trainer: "Trainer"

    def before_train(self) -> None: ...
    def before_epoch(self) -> None: ...
    def before_step(self) -> None: ...
    def after_step(self) -> None: ...
    def after_epoch(self) -> None: ...
    def after_eval(self, split: str, results: dict[str, Any]) -> None: ...
    def after_train(self) -> None: ...


class LRSchedulerHook(HookBase):
    """Steps the per-epoch schedule after the epoch's last batch (before that batch is logged, as Dassl)."""

    def after_step(self) -> None:
        t = self.trainer
        if t.batch_idx + 1 == t.num_batches:
            t.sched.step()

    def after_epoch(self) -> None:
        t = self.trainer
        if t.sched.last_epoch <= t.epoch:  # the last batch was skipped (all of its images unreadable)
            t.sched.step()


class LogHook(HookBase):
    """Dassl's training line every TRAIN.PRINT_FREQ batches (every batch when an epoch has fewer):
    ``epoch [e/E] batch [b/B] time t (avg) data t (avg) <name val (avg)>... lr x.xxxxe-xx eta h:mm:ss``."""

    def before_epoch(self) -> None:
        self.batch_time, self.data_time = AverageMeter(), AverageMeter()
        self.end = time.time()

    def before_step(self) -> None:
        self.data_time.update(time.time() - self.end)

    def after_step(self) -> None:
        t = self.trainer
        self.batch_time.update(time.time() - self.end)
        freq = t.cfg.TRAIN.PRINT_FREQ
        if (t.batch_idx + 1) % freq == 0 or t.num_batches < freq:
            remaining = t.num_batches - t.batch_idx - 1 + (t.max_epoch - t.epoch - 1) * t.num_batches
            eta = str(datetime.timedelta(seconds=int(self.batch_time.avg * remaining)))
            logger.info(
                f"epoch [{t.epoch + 1}/{t.max_epoch}] batch [{t.batch_idx + 1}/{t.num_batches}] "
                f"time {self.batch_time.val:.3f} ({self.batch_time.avg:.3f}) "
                f"data {self.data_time.val:.3f} ({self.data_time.avg:.3f}) "
                f"{t.losses} lr {t.current_lr():.4e} eta {eta}")
        self.end = time.time()


class TensorboardHook(HookBase):
    """Dassl's scalars in OUTPUT_DIR/tensorboard: ``train/<loss name>`` (epoch running mean) and ``train/lr``
    per step, ``<split>/<metric>`` per evaluation. A resumed run purges the steps it replays."""

    def before_train(self) -> None:
        from torch.utils.tensorboard import SummaryWriter  # imported here: it costs a second at start-up

        t = self.trainer
        log_dir = os.path.join(t.output_dir, "tensorboard")
        logger.info(f"Initialize tensorboard (log_dir={log_dir})")
        steps_per_epoch = len(t.build_train_loader())
        self.writer = SummaryWriter(log_dir=log_dir, purge_step=t.start_epoch * steps_per_epoch or None)

    def after_step(self) -> None:
        t = self.trainer
        step = t.epoch * t.num_batches + t.batch_idx
        for name, meter in t.losses.meters.items():
            self.writer.add_scalar(f"train/{name}", meter.avg, step)
        self.writer.add_scalar("train/lr", t.current_lr(), step)

    def after_eval(self, split: str, results: dict[str, Any]) -> None:
        if getattr(self, "writer", None) is None:
            return
        for k, v in results.items():
            if isinstance(v, (int, float)):
                self.writer.add_scalar(f"{split}/{k}", v, self.trainer.epoch)

    def after_train(self) -> None:
        if getattr(self, "writer", None) is not None:
            self.writer.close()
            self.writer = None


class ParamGuardHook(HookBase):
    """Stops the run before saving an epoch whose learnable parameters are non-finite or exploded
    (|x| > TRAIN.MAX_PARAM_ABS), naming the parameter and the usual causes."""

    def after_epoch(self) -> None:
        t = self.trainer
        limit = t.cfg.TRAIN.MAX_PARAM_ABS
        for name, p in t.model.named_parameters():
            if not p.requires_grad:
                continue
            biggest = float(p.detach().abs().max()) if p.numel() else 0.0
            if biggest != biggest or biggest == float("inf"):
                problem = "became non-finite (NaN/inf)"
            elif limit > 0 and biggest > limit:
                problem = f"exploded: max |value| {biggest:.3g} > TRAIN.MAX_PARAM_ABS {limit:g}"
            else:
                continue
            raise TrainingDivergedError(
                f"learnable parameter {name} {problem} after epoch {t.epoch + 1} (lr {t.current_lr():.4e}); nothing "
                f"of this epoch was saved. The usual causes are too high an OPTIM.LR (now {t.cfg.OPTIM.LR:g}) or "
                "PREC fp16; lower it, or raise TRAIN.MAX_PARAM_ABS if such values are expected.")


class BestValHook(HookBase):
    """With TEST.FINAL_MODEL best_val: evaluate on val after every epoch and save ``model-best.pth.tar``
    when the result improves on the best so far (which is part of the saved run state)."""

    def after_epoch(self) -> None:
        t = self.trainer
        if t.cfg.TEST.NO_TEST or t.cfg.TEST.FINAL_MODEL != "best_val":
            return
        result = t.test(split="val", final=False)
        if result > t.best_result:
            t.best_result = result
            if t.is_main and t.output_dir:
                t.checkpointer.save_best(t.epoch + 1, t.checkpoint_common(val_result=result))


class CheckpointHook(HookBase):
    """Saves the run state of every epoch as one unit, then removes the files of earlier epochs that
    TRAIN.CHECKPOINT_FREQ does not keep (the last epoch is always kept), as Dassl's schedule would."""

    def after_epoch(self) -> None:
        t = self.trainer
        t.checkpointer.save_epoch(t.epoch + 1, t.checkpoint_common(), t.run_state())
        freq = t.cfg.TRAIN.CHECKPOINT_FREQ
        t.checkpointer.prune(lambda e: e == t.max_epoch or (freq > 0 and e % freq == 0))


def check_finite_loss(loss: torch.Tensor) -> None:
    """Raise before a non-finite loss reaches backward (the loop adds epoch, batch and LR to the message)."""
    if not torch.isfinite(loss):
        raise TrainingDivergedError(f"loss is {loss.item()}")
