"""Linear-probe CLIP: logistic regression on frozen CLIP image features, the protocol of CoOp's ``lpclip/``.

Radford et al., "Learning Transferable Visual Models From Natural Language Supervision", ICML 2021 (App. A.3);
as run by Zhou et al. (CoOp, IJCV 2022), ``lpclip/feat_extractor.py`` + ``lpclip/linear_probe.py``:
unnormalised image features (the test transform for every split) computed once for train, val and test;
``LogisticRegression(solver="lbfgs", max_iter=1000, penalty="l2")``; C searched on the val set over
[1e6 ... 1e-6], then 8 rounds of binary search in log10 space; the reported classifier is the last round's.
The search itself is :mod:`vlprompt.engine.linear_probe` (ties: the largest C of the coarse grid, the left end
in a round).

Differences from the published code (all choices are keys of ``TRAINER.LINEARPROBE``):
* one run = one seed (the published script loops ``--num_run`` seeds and all of 1/2/4/8/16 shots itself;
  here the scripts loop seeds and shots, as for every other method);
* the few-shot train/val sets are the dataset's (``DATASET.NUM_SHOTS``: the same images CoOp trains on);
  ``SAMPLE_SHOTS k`` instead draws the published lpclip picks (numpy ``RandomState(SEED)``, ``k`` train and
  ``min(k, 4)`` val rows per class) from the full splits (``DATASET.NUM_SHOTS -1``);
* any backbone (the published extractor always loads RN50) in the run's precision (published: float16 on GPU);
* ``penalty="l2"`` is not passed (it is the default; passing it warns in scikit-learn 1.8/1.9 and fails from
  1.10); ``SOLVER torch`` fits the same objective with torch L-BFGS (not bit-identical to scikit-learn).

No gradient step: ``train()`` extracts features, searches C, stores the weights in the ``classifier`` module
(buffers, saved as ``classifier/model.pth.tar-1`` and ``model-best.pth.tar``) and evaluates with the engine's
``test()``, so ``--eval-only --model-dir`` reloads it like any other run.
"""
from __future__ import annotations

import datetime
import logging
import os
import time

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm
from yacs.config import CfgNode as CN

from vlprompt.clip.vision import PromptedImageEncoder
from vlprompt.data.manager import build_loader
from vlprompt.engine import Trainer
from vlprompt.engine.checkpoint import load_checkpoint, save_checkpoint
from vlprompt.engine.linear_probe import (VAL_SHOTS, fewshot_indices, search_c, sklearn_fitter,
                                          torch_fitter)
from vlprompt.errors import CheckpointError, ConfigError
from vlprompt.registry import TRAINER_REGISTRY
from vlprompt.utils import distributed as dist

logger = logging.getLogger(__name__)


class LinearClassifier(nn.Module):
    """``logits = features @ weight.T + bias`` in float64 (scikit-learn's ``decision_function``); the weights
    are buffers set by a solver, not parameters."""

    def __init__(self, n_classes: int, dim: int) -> None:
        super().__init__()
        self.register_buffer("weight", torch.zeros(n_classes, dim, dtype=torch.float64))
        self.register_buffer("bias", torch.zeros(n_classes, dtype=torch.float64))

    def set_from(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray) -> None:
        """Copy a fitted ``coef_`` ``[K or 1, D]`` / ``intercept_``; a binary model (one row, class 1 iff its
        score > 0) becomes the rows (0, w)."""
        coef, intercept = np.asarray(coef, dtype=np.float64), np.asarray(intercept, dtype=np.float64)
        if coef.shape[0] == 1 and len(classes) == 2:
            coef = np.concatenate([np.zeros_like(coef), coef])
            intercept = np.concatenate([np.zeros(1), intercept])
        weight = torch.zeros_like(self.weight)
        bias = torch.zeros_like(self.bias)
        idx = torch.as_tensor(np.asarray(classes, dtype=np.int64))
        weight[idx] = torch.from_numpy(coef).to(weight)
        bias[idx] = torch.from_numpy(intercept).to(bias)
        self.weight.copy_(weight)
        self.bias.copy_(bias)

    def forward(self, features: Tensor) -> Tensor:
        # float64 inputs are never cast by autocast
        return features.double() @ self.weight.T + self.bias


class LinearProbeModel(nn.Module):
    def __init__(self, clip_model: nn.Module, n_classes: int) -> None:
        super().__init__()
        self.image_encoder = PromptedImageEncoder(clip_model)
        dim = getattr(clip_model.visual, "output_dim", None) or clip_model.text_projection.shape[-1]
        self.classifier = LinearClassifier(n_classes, int(dim))

    def features(self, images: Tensor) -> Tensor:
        """Unnormalised image features ``[B, D]`` (as ``clip_model.visual`` in the published extractor)."""
        return self.image_encoder(images).float()

    def forward(self, images: Tensor) -> Tensor:
        return self.classifier(self.features(images))

    def logits_of_features(self, features: Tensor) -> Tensor:
        """``forward`` of the image encoder's output ``[B, D]``."""
        return self.classifier(features.float())


@TRAINER_REGISTRY.register()
class LinearProbeCLIP(Trainer):
    precision_node = "LINEARPROBE"  # the config node is TRAINER.LINEARPROBE

    @property
    def method_cfg(self) -> CN:
        return self.cfg.TRAINER.LINEARPROBE

    @staticmethod
    def add_config(cfg: CN) -> None:
        cfg.TRAINER.LINEARPROBE = CN()
        # Solver of the logistic regression: sklearn (the published one) or torch (L-BFGS, GPU-capable)
        cfg.TRAINER.LINEARPROBE.SOLVER = "sklearn"
        # Coarse C grid, searched in this order (the first best val accuracy wins)
        cfg.TRAINER.LINEARPROBE.SEARCH_LIST = [1e6, 1e4, 1e2, 1.0, 1e-2, 1e-4, 1e-6]
        # Rounds of the binary search around the best C of the grid (the published --num_step)
        cfg.TRAINER.LINEARPROBE.NUM_STEP = 8
        # Iteration limit and gradient tolerance of lbfgs (published: scikit-learn's 1000 and 1e-4)
        cfg.TRAINER.LINEARPROBE.MAX_ITER = 1000
        cfg.TRAINER.LINEARPROBE.TOL = 1e-4
        # 0: the dataset's few-shot train/val sets; k > 0: the published lpclip picks of k shots per class
        # (numpy RandomState(SEED)) from the full splits, with DATASET.NUM_SHOTS -1
        cfg.TRAINER.LINEARPROBE.SAMPLE_SHOTS = 0
        # Precision of the feature extractor: fp16, fp32, amp or bf16
        cfg.TRAINER.LINEARPROBE.PREC = "fp16"

    def build_model(self) -> nn.Module:
        self.check_search_keys()
        return LinearProbeModel(self.load_clip(), self.num_classes)

    def check_search_keys(self) -> None:
        """Fail before the features are extracted on a search the fit could not run."""
        lp = self.cfg.TRAINER.LINEARPROBE
        if lp.SOLVER not in ("sklearn", "torch"):
            raise ConfigError(f"TRAINER.LINEARPROBE.SOLVER must be sklearn or torch, got '{lp.SOLVER}'.")
        if int(lp.NUM_STEP) < 1:
            raise ConfigError(f"TRAINER.LINEARPROBE.NUM_STEP {lp.NUM_STEP}: the binary search needs at least 1 "
                              "round; pass TRAINER.LINEARPROBE.NUM_STEP 1 or more")
        if not lp.SEARCH_LIST or any(float(c) <= 0 for c in lp.SEARCH_LIST):
            raise ConfigError(f"TRAINER.LINEARPROBE.SEARCH_LIST {list(lp.SEARCH_LIST)} must list positive C "
                              "values, e.g. [1e6, 1e4, 1e2, 1.0]")

    def checkpoint_modules(self) -> dict[str, nn.Module]:
        return {"classifier": self.model.classifier}

    def features_to_logits(self, features: Tensor) -> Tensor:
        return self.model.logits_of_features(features)

    # ------------------------------------------------------------------ fitting
    @torch.no_grad()
    def extract_features(self, items: list, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Features ``[N, D]`` (float64) and labels ``[N]`` of ``items``, test transform, in order."""
        dl = self.cfg.DATALOADER
        loader = build_loader(items, self.dm.tfm_test, dl.TEST.BATCH_SIZE, False, dl.NUM_WORKERS,
                              "SequentialSampler", dl.SKIP_BAD_IMAGES)
        feats, labels = [], []
        self.model.eval()
        with self.precision.autocast():
            batches = self.eval_feature_batches(loader, split)  # from the feature cache (test() of val reuses them)
            if batches is None:
                batches = ((self.frozen_image_features(b["img"].to(self.device)), b["label"])
                           for b in tqdm(loader, desc=f"features {split}", leave=False) if b is not None)
            for f, y in batches:  # as LinearProbeModel.features
                feats.append(f.float().double().cpu())
                labels.append(y)
        x, y = torch.cat(feats).numpy(), torch.cat(labels).numpy()
        logger.info(f"Extracted {split} features: {x.shape[0]:,} x {x.shape[1]}")
        return x, y

    def fewshot_split(self, x_tr, y_tr, x_va, y_va):
        k = self.method_cfg.SAMPLE_SHOTS
        if k <= 0:
            return x_tr, y_tr, x_va, y_va
        if self.cfg.SEED < 0:
            raise ConfigError("TRAINER.LINEARPROBE.SAMPLE_SHOTS draws the published picks from SEED: set --seed.")
        rng = np.random.RandomState(self.cfg.SEED)
        tr = fewshot_indices(y_tr, k, rng)
        va = fewshot_indices(y_va, VAL_SHOTS.get(k, min(k, 4)), rng)
        return x_tr[tr], y_tr[tr], x_va[va], y_va[va]

    def fit(self) -> float:
        """Extract features, search C on val, set the classifier; returns the chosen C."""
        lp = self.method_cfg
        dataset = self.dm.dataset
        if not dataset.val:
            raise ConfigError(f"{type(self).__name__} chooses C on the val split, but {self.cfg.DATASET.NAME} has "
                              "no val images here.")
        x_tr, y_tr, x_va, y_va = self.fewshot_split(*self.extract_features(dataset.train_x, "train"),
                                                    *self.extract_features(dataset.val, "val"))
        missing = sorted(set(range(self.num_classes)) - set(y_tr.tolist()))
        if missing:
            raise ConfigError(f"the training set has no image of classes {missing[:10]}; the linear probe needs "
                              "every class.")
        if lp.SOLVER == "sklearn":
            fit = sklearn_fitter(x_tr, y_tr, lp.MAX_ITER, lp.TOL)
        else:  # torch (checked in build_model)
            fit = torch_fitter(x_tr, y_tr, lp.MAX_ITER, lp.TOL, self.device)
        logger.info(f"Linear probe: {len(y_tr):,} train / {len(y_va):,} val features, solver {lp.SOLVER}")
        result = search_c(fit, x_va, y_va, list(lp.SEARCH_LIST), lp.NUM_STEP, log=logger.info)
        clf = result.classifier
        self.model.classifier.set_from(clf.coef_, clf.intercept_, clf.classes_)
        logger.info(f"Chosen C: {result.c} (val accuracy {100 * result.val_acc:.2f}%)")
        self.fitted = {"C": float(result.c), "val_accuracy": 100 * result.val_acc}
        return result.c

    def train(self) -> None:
        if dist.world_size() > 1:
            raise ConfigError(f"{type(self).__name__} fits in one process; run it without torchrun (NGPU=1).")
        self.time_start = time.time()
        c = self.fit()
        if self.output_dir and self.is_main:
            state = {"state_dict": self.model.classifier.state_dict(), "epoch": 1, "optimizer": None,
                     "scheduler": None, "val_result": self.fitted["val_accuracy"], "C": c,
                     "classnames": list(self.classnames)}
            folder = os.path.join(self.output_dir, "classifier")
            save_checkpoint(state, folder)
            save_checkpoint(state, folder, "model-best.pth.tar", pointer=False)
        logger.info("Finish training")
        if not self.cfg.TEST.NO_TEST:
            self.evaluated = {"checkpoint": "linear probe", "epoch": 1, "linear_probe": self.fitted}
            self.test()
        logger.info(f"Elapsed: {datetime.timedelta(seconds=round(time.time() - self.time_start))}")

    def load_model(self, directory: str, epoch: int | None = None) -> None:
        """As the engine's, and refuse weights fitted on other classes (e.g. base weights on new classes)."""
        fname = f"model.pth.tar-{epoch}" if epoch is not None else "model-best.pth.tar"
        path = os.path.join(directory or "", "classifier", fname)
        saved = load_checkpoint(path).get("classnames") if os.path.isfile(path) else None
        if saved is not None and list(saved) != list(self.classnames):
            raise CheckpointError(f"{path} was fitted on {len(saved)} other classes ({', '.join(saved[:3])}, ...); a "
                                  "linear probe has weights only for the classes it was fitted on (no new classes).")
        super().load_model(directory, epoch)
