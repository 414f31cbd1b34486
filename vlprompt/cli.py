"""``train.py``: the published command line (Dassl/CoOp flags and trailing KEY VALUE overrides)."""
from __future__ import annotations

import argparse
import logging
import sys
from typing import TYPE_CHECKING, Optional, Sequence

from vlprompt.utils.launch import launched_rank, launched_world_size
from vlprompt.utils.logging import setup_logger

if TYPE_CHECKING:
    from yacs.config import CfgNode

# torch, the plugins and the engine are imported once the command line has been checked (vlprompt.preflight):
# --help and mistakes in the command line or the file system come back in a fraction of a second
logger = logging.getLogger("vlprompt")
_opened = [False]  # this process got past claiming the output folder (its errors are then its own)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description="Train or evaluate a prompt-learning method on CLIP.")
    p.add_argument("--root", type=str, default="", help="folder holding the datasets")
    p.add_argument("--output-dir", type=str, default="", help="output folder of this run")
    p.add_argument("--resume", type=str, default="", help="run folder to resume training from")
    p.add_argument("--seed", type=int, default=None, help="random seed (a negative value leaves it unset)")
    p.add_argument("--source-domains", type=str, nargs="+", help="source domains for DA/DG")
    p.add_argument("--target-domains", type=str, nargs="+", help="target domains for DA/DG")
    p.add_argument("--transforms", type=str, nargs="+", help="data augmentation methods")
    p.add_argument("--config-file", type=str, default="", help="method config (configs/trainers/...)")
    p.add_argument("--dataset-config-file", type=str, default="", help="dataset config (configs/datasets/...)")
    p.add_argument("--trainer", type=str, default="", help="registered trainer name, e.g. CoOp")
    p.add_argument("--backbone", type=str, default="", help="MODEL.BACKBONE.NAME")
    p.add_argument("--head", type=str, default="", help="MODEL.HEAD.NAME (unused by CLIP methods)")
    p.add_argument("--eval-only", action="store_true", help="evaluation only")
    p.add_argument("--model-dir", type=str, default="", help="run folder to load for --eval-only")
    p.add_argument("--load-epoch", type=int, default=None, help="epoch of the checkpoint to load")
    p.add_argument("--no-train", action="store_true", help="build everything, do not train")
    p.add_argument("--overwrite", action="store_true",
                   help="the output folder holds another run: delete its checkpoints and results, start this run there")
    p.add_argument("--no-feature-cache", action="store_true",
                   help="compute evaluation image features afresh, neither reading nor writing the feature cache "
                        "(MODEL.FEATURE_CACHE False)")
    p.add_argument("--compile", action="store_true",
                   help="torch.compile the frozen CLIP towers (MODEL.COMPILE True)")
    p.add_argument("--plugins", type=str, nargs="+", default=[], help="extra folders of trainer/dataset plugins")
    p.add_argument("opts", default=None, nargs=argparse.REMAINDER, help="KEY VALUE config overrides")
    return p


def main(argv: Optional[Sequence[str]] = None) -> int:
    # with torchrun, every process parses and checks the same command; process 0 claims the output folder
    # and is the only one that logs to it (the others print warnings and errors only)
    setup_logger(level=logging.INFO if launched_rank() == 0 else logging.WARNING)
    args = build_parser().parse_args(argv)
    from vlprompt.preflight import check_command_line

    check_command_line(args)
    from vlprompt import plugins
    from vlprompt.config import setup_cfg
    from vlprompt.engine.run_folder import release_lock, run_identity
    from vlprompt.utils import distributed

    plugins.load(args.plugins)
    cfg = setup_cfg(args)
    if launched_world_size() > 1:
        cfg = _distributed_cfg(cfg)
    created_group = distributed.init_from_env(cfg.USE_CUDA)
    identity = run_identity(cfg, args.eval_only, args.model_dir, args.load_epoch)
    _open_run_folder_on_main(cfg, identity, args.overwrite)
    try:
        return _run(args, cfg)
    finally:
        if distributed.is_main():
            release_lock(cfg.OUTPUT_DIR)
        if created_group:
            distributed.shutdown()


def _distributed_cfg(cfg: CfgNode) -> CfgNode:
    """Several processes always draw augmentations per image (so that the run is the single-process run
    with DATALOADER.PER_IMAGE_SEEDS True, whatever the number of processes and workers)."""
    if not cfg.DATALOADER.PER_IMAGE_SEEDS:
        cfg.defrost()
        cfg.DATALOADER.PER_IMAGE_SEEDS = True
        cfg.freeze()
    return cfg


def _open_run_folder_on_main(cfg: CfgNode, identity: dict, overwrite: bool) -> None:
    """Process 0 claims the output folder; the others wait for it and stop with its error, if any."""
    from vlprompt.engine.run_folder import open_run_folder
    from vlprompt.errors import RunFolderError, VLPromptError
    from vlprompt.utils import distributed

    error: Optional[Exception] = None
    if distributed.is_main():
        try:
            open_run_folder(cfg, identity, overwrite=overwrite)
        except VLPromptError as e:
            error = e
    message = distributed.broadcast_object(None if error is None else str(error))
    if error is not None:
        raise error
    if message is not None:
        raise RunFolderError(message)
    _opened[0] = True


def _run(args: argparse.Namespace, cfg: CfgNode) -> int:
    import torch

    from vlprompt.registry import TRAINER_REGISTRY
    from vlprompt.utils import distributed
    from vlprompt.utils.seed import set_random_seed

    trainer_cls = TRAINER_REGISTRY.get(cfg.TRAINER.NAME)
    if args.eval_only:
        trainer_cls.check_weights_given(args.model_dir, cfg.MODEL.INIT_WEIGHTS)
    if distributed.is_main():
        setup_logger(cfg.OUTPUT_DIR)
    if distributed.world_size() > 1:
        logger.info(f"Distributed: {distributed.world_size()} processes ({distributed.backend()}); each takes a "
                    f"slice of the global batch of {cfg.DATALOADER.TRAIN_X.BATCH_SIZE} and of every evaluation; "
                    "DATALOADER.PER_IMAGE_SEEDS True (a single-process run with that key is the same run)")
    if cfg.SEED >= 0:
        logger.info(f"Setting fixed seed: {cfg.SEED}")
        set_random_seed(cfg.SEED)
    if torch.cuda.is_available() and cfg.USE_CUDA:
        torch.backends.cudnn.benchmark = True
    if cfg.VERBOSE:
        logger.info("***************\n** Arguments **\n***************")
        for key in sorted(vars(args)):
            logger.info(f"{key}: {getattr(args, key)}")
        logger.info(f"************\n** Config **\n************\n{cfg}")
    logger.info(f"Loading trainer: {cfg.TRAINER.NAME}")
    trainer = trainer_cls(cfg)
    if args.eval_only:
        trainer.load_model(args.model_dir, epoch=args.load_epoch)
        trainer.test()
        return 0
    if not args.no_train:
        trainer.train()
    return 0


def run(argv: Optional[Sequence[str]] = None) -> None:
    """Entry point: a user error (:class:`~vlprompt.errors.VLPromptError`) is shown as one line and exits
    with code 2; anything else is a bug and keeps its traceback."""
    from vlprompt.errors import VLPromptError, user_message

    try:
        sys.exit(main(argv))
    except VLPromptError as e:
        # until the output folder is open, every process meets the same errors: process 0 prints them
        if launched_rank() == 0 or _opened[0]:
            where = f"[rank {launched_rank()}] " if launched_rank() > 0 else ""
            logging.getLogger("vlprompt").error(f"{where}Error: {user_message(e)}")
        sys.exit(2)
