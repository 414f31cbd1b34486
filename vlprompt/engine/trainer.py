"""Trainer: builds data and model, owns ``forward_backward`` and the epoch loop; everything else the loop
does (LR schedule, log lines, TensorBoard, best-val evaluation, checkpoints, divergence checks) is a hook
(``vlprompt.engine.hooks``), and the run state is saved and resumed as one unit (``run_state``).

A method subclasses it and implements ``build_model``, ``compute_loss`` and ``model_inference``
(optionally ``precompute``, ``prepare_eval``, ``checkpoint_modules``, ``inference_modules``,
``build_train_loader``, ``extra_state``/``load_extra_state``). Methods never see loop state (epoch, batch
index), and never manage caches: what ``precompute`` returns (e.g. the class text features) is computed
once per evaluation and forgotten by the engine whenever the weights change (optimizer step, load).
A method whose test images pass only through the frozen, prompt-free image tower implements
``features_to_logits`` instead of ``model_inference``: evaluation then reuses the image features within the run
and across runs (``vlprompt.engine.feature_cache``, ``MODEL.FEATURE_CACHE``).
"""
from __future__ import annotations

import contextlib
import datetime
import json
import logging
import os
import time
from typing import Any, Iterable, Iterator, Optional

import torch
from torch import Tensor, nn
from tqdm import tqdm
from yacs.config import CfgNode

from vlprompt.clip.load import load_clip
from vlprompt.data.manager import DataManager
from vlprompt.errors import BadImageError, CheckpointError, ConfigError, TrainingDivergedError
from vlprompt.utils import distributed as dist
from vlprompt.utils.files import atomic_write

from .checkpoint import init_weight_files, load_checkpoint
from .checkpoint_keys import KeyMap, load_published, to_published
from .eval_images import EvalImages
from .evaluator import Classification, result_lines, save_confusion_matrix
from .failpoints import failpoint
from .feature_cache import FeatureCache
from .kernels import prepare_towers
from .losses import classification_loss
from .hooks import (BestValHook, CheckpointHook, HookBase, LogHook, LRSchedulerHook, ParamGuardHook,
                    TensorboardHook, check_finite_loss)
from .meters import MetricMeter
from .optim import build_lr_scheduler, build_optimizer, lr_factor
from .precision import Precision, resolve_precision
from .run_state import ResumePoint, RunCheckpointer, capture_rng, restore_rng
from .run_folder import config_hash

logger = logging.getLogger(__name__)
_NOTHING = object()  # nothing precomputed since the weights last changed


class Trainer:
    """Base class of every method (Dassl's TrainerX contract, with the loop owned here)."""

    #: config node under TRAINER whose PREC key sets the precision (default: the upper-cased class name)
    precision_node: Optional[str] = None
    #: False for a method with nothing to learn (zero-shot CLIP): it evaluates without --model-dir
    learns_weights: bool = True
    #: keys of saved state dicts (published names) that are rebuilt from the class names and never loaded
    ignored_checkpoint_keys: tuple[str, ...] = ("token_prefix", "token_suffix")
    #: per checkpointed module, ``(our key prefix, published key prefix)`` renames applied when saving and
    #: loading, so that files keep the published keys (``vlprompt.engine.checkpoint_keys``)
    checkpoint_key_map: dict[str, KeyMap] = {}
    #: the ``compute_loss`` keys shown in the training log line and TensorBoard (None: all of them); set to the
    #: published trainer's ``loss_summary`` keys so that log lines match the published ones field for field
    log_keys: Optional[tuple[str, ...]] = None

    @staticmethod
    def add_config(cfg: CfgNode) -> None:
        """Add this method's ``cfg.TRAINER.<NAME>`` section."""

    def __init__(self, cfg: CfgNode) -> None:
        self.created = time.time()
        self.cfg = cfg
        use_cuda = torch.cuda.is_available() and cfg.USE_CUDA
        self.device = torch.device("cuda" if use_cuda else "cpu")
        self.output_dir = cfg.OUTPUT_DIR
        #: rank 0 (or the only process) logs, writes TensorBoard, checkpoints and results
        self.is_main = dist.is_main()
        self.start_epoch = self.epoch = 0
        self.max_epoch = cfg.OPTIM.MAX_EPOCH
        self.best_result = -float("inf")
        self._precomputed: Any = _NOTHING
        self._feature_cache: Optional[FeatureCache] = None
        #: evaluation images kept for repeated evaluations the feature cache cannot serve (DATALOADER.TEST.CACHE_MB)
        self.eval_images = EvalImages(cfg.DATALOADER.TEST.CACHE_MB)
        self._global_batch: Optional[tuple[dict[str, Tensor], slice]] = None
        self.precision = Precision(resolve_precision(self._requested_precision(), self.device), self.device)
        self.build_data_loader()
        self.model = self.build_model()
        self.model.to(self.device)
        prepare_towers(self.model, self.device, cfg.MODEL.COMPILE)  # channels_last, MODEL.COMPILE
        self.learnable = [p for p in self.model.parameters() if p.requires_grad]
        logger.info(f"# learnable params: {sum(p.numel() for p in self.learnable):,}")
        if cfg.MODEL.INIT_WEIGHTS:
            self.load_init_weights(cfg.MODEL.INIT_WEIGHTS)
        self.optim = build_optimizer(self.learnable, cfg.OPTIM) if self.learnable else None
        self.sched = build_lr_scheduler(self.optim, cfg.OPTIM) if self.optim is not None else None
        self.evaluator = Classification(self.num_classes)
        self.checkpointer = RunCheckpointer(self.output_dir, self.checkpoint_modules, self.module_state)
        self.hooks = self.build_hooks()

    # ------------------------------------------------------------------ method contract
    def build_model(self) -> nn.Module:
        raise NotImplementedError

    def compute_loss(self, batch: dict[str, Any]) -> dict[str, Tensor]:
        """``{"loss": scalar, ...}`` for one training batch; no backward, no step.
        Default: cross-entropy of ``self.model(images)``, and the batch accuracy for the log."""
        return classification_loss(self.model(batch["img"]), batch["label"])

    def model_inference(self, images: Tensor) -> Tensor:
        """Logits ``[B, n_classes]``. Default: ``features_to_logits(frozen_image_features(images))`` for a method
        that implements ``features_to_logits``, else ``self.model(images)``."""
        if self.implements_features_to_logits():
            return self.features_to_logits(self.frozen_image_features(images))
        return self.model(images)

    def features_to_logits(self, features: Tensor) -> Tensor:
        """Logits ``[B, n_classes]`` of the image features ``[B, E]`` that ``frozen_image_features`` computed (as
        computed: not normalised, in the tower's dtype; not to be modified in place). Implemented by a method whose
        test images pass only through the frozen, prompt-free image tower: its ``model_inference`` is then the
        default, and evaluation takes the features from the feature cache (``vlprompt.engine.feature_cache``)."""
        raise NotImplementedError

    def frozen_image_features(self, images: Tensor) -> Tensor:
        """Features ``[B, E]`` of the frozen, prompt-free image tower ``self.model.image_encoder``, without autograd:
        what the feature cache stores (keyed by that module's weights)."""
        with torch.no_grad():
            return self.model.image_encoder(images)

    @classmethod
    def implements_features_to_logits(cls) -> bool:
        return cls.features_to_logits is not Trainer.features_to_logits

    @classmethod
    def caches_features(cls) -> bool:
        """Evaluation may reuse image features: the method implements ``features_to_logits`` and keeps the default
        ``model_inference`` and ``frozen_image_features`` (a subclass that overrides either, e.g. to prompt the
        image tower, evaluates without the cache)."""
        return (cls.implements_features_to_logits() and cls.model_inference is Trainer.model_inference
                and cls.frozen_image_features is Trainer.frozen_image_features)

    def precompute(self) -> Any:
        """What evaluation needs from the learned weights alone, independent of the images (e.g. the class
        text features of image-independent prompts); ``model_inference`` reads it as ``self.precomputed``.
        Default: nothing."""
        return None

    @property
    def precomputed(self) -> Any:
        """``precompute()``, computed on first use after the weights last changed (no autograd)."""
        if self._precomputed is _NOTHING:
            with torch.no_grad():
                self._precomputed = self.precompute()
        return self._precomputed

    def forget_precomputed(self) -> None:
        """Called by the engine whenever the weights change (after every optimizer step, after loading)."""
        self._precomputed = _NOTHING

    def prepare_eval(self) -> None:
        """Called once before each evaluation, in every process, after ``precompute``."""

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        """Modules saved in checkpoints, under their published names."""
        return {}

    def inference_modules(self) -> dict[str, nn.Module]:
        """The checkpointed modules that evaluation needs (``--eval-only`` loads only these); default: all.
        A method whose training-only modules are checkpointed for resuming leaves them out here."""
        return self.checkpoint_modules()

    def build_train_loader(self) -> Iterable[dict]:
        return self.dm.train_loader_x

    def extra_state(self) -> dict[str, Any]:
        """State of the method that is neither a checkpointed module nor a global RNG (e.g. a private
        ``torch.Generator``); saved with every epoch and given back to ``load_extra_state`` on resume."""
        return {}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        """Restore what ``extra_state`` returned."""

    def build_hooks(self) -> list[HookBase]:
        """The hooks of the training loop, in call order (see ``vlprompt.engine.hooks``)."""
        writes = bool(self.output_dir) and self.is_main
        hooks: list[HookBase] = [LRSchedulerHook(), LogHook()]
        if self.cfg.TRAIN.TENSORBOARD and writes:
            hooks.append(TensorboardHook())
        hooks += [ParamGuardHook(), BestValHook()]
        if writes:
            hooks.append(CheckpointHook())
        for hook in hooks:
            hook.trainer = self
        return hooks

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
            raise ConfigError(f"INPUT.SIZE {tuple(self.cfg.INPUT.SIZE)} does not match the CLIP input resolution "
                             f"{size} of '{name}'; set INPUT.SIZE ({size}, {size}).")
        return model

    def build_data_loader(self) -> None:
        self.dm = DataManager(self.cfg)
        self.num_classes = self.dm.num_classes
        self.lab2cname = self.dm.lab2cname
        self.classnames = self.dm.classnames

    @property
    def feature_cache(self) -> FeatureCache:
        """The feature cache of this trainer's image tower (built on first use)."""
        if self._feature_cache is None:
            self._feature_cache = FeatureCache(self.cfg, self.model.image_encoder, self.precision.mode, self.device)
        return self._feature_cache

    def eval_feature_batches(self, loader: Iterable[dict], split: str) -> Optional[list[tuple[Tensor, Tensor]]]:
        """``(features, labels)`` of each batch of the evaluation ``loader`` (CPU tensors; features as
        ``frozen_image_features`` computes them), from the feature cache; None when this method or run does not
        cache features (the caller then runs its loop over ``loader``). Call it in the evaluation's autocast."""
        if not self.caches_features():
            return None
        with torch.no_grad():
            return self.feature_cache.batches(loader, split, self.frozen_image_features)

    def eval_logits(self, loader: Iterable[dict], split: str,
                    repeated: bool = False) -> Iterator[tuple[Tensor, Tensor]]:
        """Logits and labels of each evaluation batch of ``loader``: ``features_to_logits`` of the batch's image
        features from the feature cache, or ``model_inference`` of its images (the same logits, bit for bit);
        ``repeated``: the split will be evaluated again, so its decoded images are worth keeping."""
        cached = self.eval_feature_batches(loader, split)
        if cached is not None:
            for features, labels in cached:
                yield self.features_to_logits(features.to(self.device, copy=True)), labels
            return
        for batch in self.eval_images.batches(loader, split, keep=repeated):
            if batch is not None:  # None: every image of the batch was skipped (DATALOADER.SKIP_BAD_IMAGES)
                yield self.model_inference(batch["img"].to(self.device, non_blocking=True)), batch["label"]

    def to_device(self, batch: dict[str, Any]) -> dict[str, Any]:
        return {k: v.to(self.device, non_blocking=True) if isinstance(v, Tensor) else v for k, v in batch.items()}

    def global_batch(self) -> tuple[dict[str, Tensor], slice]:
        """``{"label", "index"}`` of the whole global batch (all processes' slices, in order) and where this
        process's rows are in it, for the step being taken. For a method whose random draws are per batch
        (e.g. picks per image): draw them for the global batch in every process and keep this slice's rows,
        so that the draws (and the generator's state) are those of one process. With one process: the batch's
        own tensors and ``slice(None)``. Needs no communication (gathered once per step by the engine)."""
        if self._global_batch is None:
            raise RuntimeError("global_batch() is set by forward_backward for the compute_loss it calls")
        return self._global_batch

    # ------------------------------------------------------------------ training
    def set_train_mode(self, train: bool) -> None:
        """Frozen parts stay in eval mode (BatchNorm, dropout); only checkpointed modules train."""
        self.model.eval()
        if train:
            for module in self.checkpoint_modules().values():
                module.train()

    def forward_backward(self, batch: Optional[dict[str, Any]]) -> Optional[dict[str, float]]:
        """autocast -> compute_loss -> (scaled) backward -> optimizer step; returns floats for the log.
        With several processes ``batch`` is this process's slice of the global batch (None: no image of it
        could be read); see :meth:`_forward_backward_sharded`."""
        if dist.world_size() > 1:
            return self._forward_backward_sharded(batch)
        batch = self.to_device(batch)
        self._global_batch = {k: batch[k] for k in ("label", "index") if k in batch}, slice(None)
        with self.precision.autocast():
            out = self.compute_loss(batch)
        check_finite_loss(out["loss"])
        self.precision.backward_and_step(out["loss"], self.optim)
        self.forget_precomputed()
        return {k: float(v.detach()) for k, v in out.items()}

    def _forward_backward_sharded(self, batch: Optional[dict[str, Any]]) -> Optional[dict[str, float]]:
        """One step of the global batch: each process's mean loss is weighted by its share of the images
        (so that the summed gradient is the gradient of the global batch's mean loss, also for uneven slices);
        all-reduces give the counts, the logged means and divergence, and the summed gradients. Class prompts
        are encoded split across processes unless some process has no image in this step (it runs no forward
        pass, so it cannot take part)."""
        count = 0 if batch is None else len(batch["label"])
        rows = (torch.stack([batch["label"], batch["index"]], dim=1) if batch is not None
                else torch.zeros(0, 2, dtype=torch.long))
        every, counts = dist.gather_rows_counted(rows.to(self.device))  # one gather: global rows and counts
        start = sum(counts[: dist.rank()])
        self._global_batch = {"label": every[:, 0], "index": every[:, 1]}, slice(start, start + count)
        total = sum(counts)
        if total == 0:  # no process could read an image of this batch
            return None
        out, local = None, {}
        with contextlib.nullcontext() if min(counts) > 0 else dist.rows_not_split():
            if count:
                batch = self.to_device(batch)
                with self.precision.autocast():
                    out = self.compute_loss(batch)
                local = {k: float(v.detach()) for k, v in out.items()}
                self._loss_keys = list(local)
            elif not hasattr(self, "_loss_keys"):
                raise BadImageError("no image of this process's first training batch could be read (all skipped by "
                                    "DATALOADER.SKIP_BAD_IMAGES); restore the dataset's images or run fewer processes")
            else:
                local = dict.fromkeys(self._loss_keys, 0.0)
            failed = out is not None and not bool(torch.isfinite(out["loss"].detach()))
            means, _, any_failed = dist.step_stats(local, count, failed, self.device)
            if any_failed:
                raise TrainingDivergedError(f"loss is {local['loss'] if failed else 'not finite'} (in process "
                                            f"{dist.rank() if failed else 'other than ' + str(dist.rank())})")
            loss = out["loss"] * (count / total) if out is not None else None
            self.precision.backward_and_step(loss, self.optim, lambda: dist.sum_gradients(self.learnable))
        self.forget_precomputed()
        return means

    def call_hooks(self, point: str, *args: Any) -> None:
        for hook in self.hooks:
            getattr(hook, point)(*args)

    def current_lr(self) -> float:
        return self.optim.param_groups[0]["lr"]

    def train(self) -> None:
        if self.optim is None:
            raise ConfigError(f"{type(self).__name__} has nothing to train; run it with --eval-only.")
        self.resume(self.cfg.RESUME or self.output_dir)
        self.time_start = time.time()
        self.call_hooks("before_train")
        for self.epoch in range(self.start_epoch, self.max_epoch):
            self.call_hooks("before_epoch")
            self.run_epoch()
            self.call_hooks("after_epoch")
        self.after_train()

    def run_epoch(self) -> None:
        self.set_train_mode(True)
        loader = self.build_train_loader()
        self.num_batches = len(loader)
        self.losses = MetricMeter()
        bar = tqdm(loader, desc=f"epoch {self.epoch + 1}/{self.max_epoch}", leave=False,
                   disable=None if self.is_main else True)
        for self.batch_idx, batch in enumerate(bar):
            # None: every image of the batch was unreadable and skipped (DATALOADER.SKIP_BAD_IMAGES); with
            # several processes every process takes part in the step even without images of its own
            if batch is None and dist.world_size() == 1:
                continue
            self.call_hooks("before_step")
            try:
                out = self.forward_backward(batch)
            except TrainingDivergedError as e:
                raise TrainingDivergedError(
                    f"{e} at epoch {self.epoch + 1}, batch {self.batch_idx + 1}/{self.num_batches} (lr "
                    f"{self.current_lr():.4e}); no step was taken with it. The usual causes are too high an "
                    f"OPTIM.LR (now {self.cfg.OPTIM.LR:g}) or PREC fp16 (try fp32 or amp).") from None
            if out is None:
                continue
            self.losses.update({k: v for k, v in out.items() if self.log_keys is None or k in self.log_keys})
            self.call_hooks("after_step")
            failpoint(f"step:{self.epoch + 1}:{self.batch_idx + 1}")

    def after_train(self) -> None:
        logger.info("Finish training")
        if not self.cfg.TEST.NO_TEST:
            if self.cfg.TEST.FINAL_MODEL == "best_val":
                logger.info("Deploy the model with the best val performance")
                dist.barrier()  # rank 0 has written model-best
                self.load_model(self.output_dir)
            else:
                logger.info("Deploy the last-epoch model")
                self.evaluated = {"checkpoint": f"last epoch ({self.max_epoch})", "epoch": self.max_epoch,
                                  "model_dir": os.path.abspath(self.output_dir)}
            self.test()
        logger.info(f"Elapsed: {datetime.timedelta(seconds=round(time.time() - self.time_start))}")
        self.call_hooks("after_train")

    # ------------------------------------------------------------------ evaluation
    @torch.no_grad()
    def test(self, split: Optional[str] = None, final: bool = True) -> float:
        """Evaluate on ``split`` (default TEST.SPLIT) and log Dassl's result lines; ``final``: this is the run's
        result, written to results.json (per-epoch val evaluations of best_val are not)."""
        self.set_train_mode(False)
        split = split or self.cfg.TEST.SPLIT
        loader = self.dm.val_loader if split == "val" else None
        if loader is None:
            split, loader = "test", self.dm.test_loader
        logger.info(f"Evaluate on the *{split}* set")
        started = time.time()
        self.evaluator.reset()
        with self.precision.autocast():
            self.forget_precomputed()  # computed afresh for every evaluation, by every process
            _ = self.precomputed
            self.prepare_eval()
            batches = self.eval_logits(loader, split, repeated=not final)  # a non-final one: best-val epochs
            for logits, labels in tqdm(batches, desc=f"eval {split}", total=len(loader),
                                       leave=False, disable=None if self.is_main else True):
                self.evaluator.process(logits.float(), labels.to(self.device))
                failpoint(f"eval:{split}")
        if dist.world_size() > 1:  # each process evaluated a slice of the split
            self.evaluator.gather(lambda t: dist.gather_rows(t.to(self.device)).cpu())
        r = self.evaluator.evaluate()
        logger.info("\n".join(result_lines(r, self.lab2cname, self.cfg.TEST.PER_CLASS_RESULT)))
        self.call_hooks("after_eval", split, r)
        if final:
            if self.cfg.TEST.COMPUTE_CMAT and self.output_dir and self.is_main:
                paths = save_confusion_matrix(self.evaluator.confusion_matrix(), self.lab2cname, self.output_dir)
                logger.info(f"Confusion matrix (rows: true class, normalised per row) is saved to {paths[0]} "
                            f"(and, with class names, {paths[1]})")
            self._write_results(split, r, time.time() - started)
        return float(r["accuracy"])

    def _write_results(self, split: str, r: dict, seconds: float) -> None:
        if not self.output_dir or not self.is_main:
            return
        payload = {k: r[k] for k in ("accuracy", "error_rate", "macro_f1", "total", "correct")}
        payload.update(split=split, dataset=self.cfg.DATASET.NAME, trainer=self.cfg.TRAINER.NAME,
                       subsample=self.cfg.DATASET.SUBSAMPLE_CLASSES, seed=self.cfg.SEED,
                       **getattr(self, "evaluated", {}), config_hash=config_hash(self.cfg),
                       eval_seconds=round(seconds, 2), elapsed_seconds=round(time.time() - self.created, 2))
        os.makedirs(self.output_dir, exist_ok=True)
        atomic_write(os.path.join(self.output_dir, "results.json"), json.dumps(payload, indent=2))

    # ------------------------------------------------------------------ checkpoints
    def module_state(self, name: str, module: nn.Module) -> dict[str, Any]:
        """What the checkpoint file of module ``name`` holds as its state dict: the published keys."""
        return to_published(module.state_dict(), self.checkpoint_key_map.get(name, ()))

    def load_module_state(self, name: str, module: nn.Module, state: dict[str, Any], source: str) -> None:
        """Load a checkpoint's state dict (published or ours) into module ``name``, checked."""
        load_published(module, state, self.checkpoint_key_map.get(name, ()), source, self.ignored_checkpoint_keys)

    def checkpoint_common(self, val_result: Optional[float] = None) -> dict[str, Any]:
        """What every Dassl module file holds besides its weights."""
        return {"optimizer": self.optim.state_dict() if self.optim is not None else None,
                "scheduler": self.sched.state_dict() if self.sched is not None else None,
                "val_result": val_result}

    def run_state(self) -> dict[str, Any]:
        """What the manifest of an epoch holds besides the module files (see ``run_state``)."""
        scaler = self.precision.scaler
        return {"best_result": self.best_result, "rng": capture_rng(), "extra": self.extra_state(),
                "scaler": scaler.state_dict() if scaler is not None else None}

    def resume(self, directory: str) -> None:
        """Continue the run saved in ``directory`` from its newest complete epoch, if any."""
        point = self.checkpointer.find(directory) if directory else None
        if point is None:
            logger.info("No checkpoint found, train from scratch")
            return
        logger.info(f"Found checkpoint at {directory} (will resume training)")
        self._load_point(point)
        if not point.exact:
            logger.warning("The folder holds no run state (saved by the published code or an older vlprompt): the "
                           "weights, optimizer and schedule resume, but the random state does not, so the resumed "
                           "epochs are not those of an uninterrupted run.")

    def _load_point(self, point: ResumePoint) -> None:
        self.forget_precomputed()
        first = None  # the optimizer/scheduler of every module file are the same: take the first one's
        for name, module in self.checkpoint_modules().items():
            ckpt = load_checkpoint(point.files[name])
            self.load_module_state(name, module, ckpt["state_dict"], point.files[name])
            logger.info(f'Loaded "{point.files[name]}" (previous epoch: {ckpt["epoch"]})')
            first = first or ckpt
        if first.get("optimizer"):
            self.optim.load_state_dict(first["optimizer"])
        # the schedule is a function of the epoch (published files pickle other scheduler classes): set it
        self.sched.last_epoch = point.epoch
        for group in self.optim.param_groups:
            group["lr"] = group["initial_lr"] * lr_factor(point.epoch, self.cfg.OPTIM)
        self.sched._last_lr = [group["lr"] for group in self.optim.param_groups]
        self.start_epoch = point.epoch
        if point.exact:
            state = point.manifest
            self.best_result = state["best_result"]
            if state.get("scaler") is not None and self.precision.scaler is not None:
                self.precision.scaler.load_state_dict(state["scaler"])
            self.load_extra_state(state.get("extra", {}))
            restore_rng(state["rng"])
        elif first.get("val_result") is not None:
            self.best_result = float(first["val_result"])

    def load_init_weights(self, path: str) -> None:
        """MODEL.INIT_WEIGHTS (Dassl's key): start from the weights saved at ``path``, a checkpoint file or a run
        folder (``checkpoint.init_weight_files``). Not a resume: the optimizer, schedule and epochs start afresh
        (and a checkpoint of this run's own output folder, if any, is resumed over these weights)."""
        modules = self.checkpoint_modules()
        if not self.learnable or not modules:
            raise ConfigError(f"MODEL.INIT_WEIGHTS {path} has no effect in VLPrompt ({type(self).__name__} trains no "
                              "weights by gradient steps); remove it from the config file or the command line")
        files = init_weight_files(path, modules, required=self.inference_modules())
        self.forget_precomputed()
        for name, file in files.items():
            ckpt = load_checkpoint(file)
            state = ckpt["state_dict"] if isinstance(ckpt.get("state_dict"), dict) else ckpt  # or a bare state dict
            self.load_module_state(name, modules[name], state, file)
            logger.info(f'Initial weights (MODEL.INIT_WEIGHTS): loaded {name} from "{file}" (epoch = '
                        f'{ckpt.get("epoch")}); optimizer, schedule and epochs start afresh')
        for name in modules.keys() - files.keys():
            logger.info(f"Initial weights (MODEL.INIT_WEIGHTS): {path} holds no {name}; it starts as initialised")

    @classmethod
    def check_weights_given(cls, model_dir: str, init_weights: str) -> None:
        """An evaluation of a method that learns weights needs a run folder (``--model-dir``) or
        ``MODEL.INIT_WEIGHTS``; ``train.py`` calls this before building the dataset and model."""
        if cls.learns_weights and not model_dir and not init_weights:
            raise CheckpointError(f"{cls.__name__} has learned weights to load: pass --model-dir (the --output-dir "
                                  "of a training run) and --load-epoch.")

    def load_model(self, directory: str, epoch: Optional[int] = None) -> None:
        """Load the weights saved at ``epoch`` (default: the best-val model) from a run folder. Without a folder,
        a run given MODEL.INIT_WEIGHTS evaluates those weights (Dassl's eval-only without --model-dir)."""
        modules = self.inference_modules()
        if not modules:
            return
        if not directory and self.cfg.MODEL.INIT_WEIGHTS:
            logger.info(f"No --model-dir: evaluating the MODEL.INIT_WEIGHTS weights ({self.cfg.MODEL.INIT_WEIGHTS})")
            self.evaluated = {"checkpoint": f"MODEL.INIT_WEIGHTS {self.cfg.MODEL.INIT_WEIGHTS}"}
            return
        type(self).check_weights_given(directory, self.cfg.MODEL.INIT_WEIGHTS)
        if not os.path.isdir(directory):
            raise CheckpointError(f"--model-dir {directory}: no such folder; give the --output-dir of a training run.")
        fname = f"model.pth.tar-{epoch}" if epoch is not None else "model-best.pth.tar"
        self.forget_precomputed()
        loaded = {}
        for name, module in modules.items():
            path = os.path.join(directory, name, fname)
            if not os.path.isfile(path):
                folder = os.path.join(directory, name)
                found = sorted(os.listdir(folder)) if os.path.isdir(folder) else []
                raise CheckpointError(f"No checkpoint at {path}. Files in {folder}: {found or 'none (no such folder)'}"
                                      ". Check --model-dir and --load-epoch.")
            ckpt = load_checkpoint(path)
            self.load_module_state(name, module, ckpt["state_dict"], path)
            logger.info(f'Loading weights to {name} from "{path}" (epoch = {ckpt.get("epoch")})')
            loaded[name] = path
        self.evaluated = {"checkpoint": loaded, "epoch": ckpt.get("epoch"), "model_dir": os.path.abspath(directory)}
