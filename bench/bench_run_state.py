"""Cost of saving the run state each epoch (module files + manifest with RNG states + pruning), as a ratio to
the epoch it follows, on the tiny CLIPs and a synthetic DTD (CPU).

    python bench/bench_run_state.py                       # CoOp on the tiny ViT, 16 shots, batch 32
    python bench/bench_run_state.py --trainer InstancePrompt --clip rn --shots 16
"""
from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from tabulate import tabulate  # noqa: E402

from vlprompt import plugins  # noqa: E402
from vlprompt.config.setup import get_cfg  # noqa: E402
from vlprompt.engine.hooks import CheckpointHook  # noqa: E402
from vlprompt.registry import TRAINER_REGISTRY  # noqa: E402
from vlprompt.testing.fake_data import make_dtd  # noqa: E402
from vlprompt.testing.tiny_clip import write_tiny_clip  # noqa: E402
from vlprompt.utils.seed import set_random_seed  # noqa: E402

CONFIGS = {"CoOp": "CoOp/vit_b16_ep50", "InstancePrompt": "InstancePrompt/rn50", "MaPLe": "MaPLe/vit_b16_c2_ep5_batch4_2ctx"}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--trainer", default="CoOp", choices=sorted(CONFIGS))
    ap.add_argument("--clip", default="vit", choices=("vit", "rn", "vit_s"))
    ap.add_argument("--shots", type=int, default=16)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--workdir", default="")
    args = ap.parse_args()
    plugins.load()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="bench_run_state_"))
    root, clip = work / "data", work / f"tiny_clip_{args.clip}.pt"
    if not root.exists():
        make_dtd(str(root), images_per_class=args.shots + 4)
    if not clip.exists():
        write_tiny_clip(args.clip, str(clip))
    cfg = get_cfg()
    cfg.merge_from_file(str(REPO_ROOT / "configs/datasets/dtd.yaml"))
    cfg.merge_from_file(str(REPO_ROOT / f"configs/trainers/{CONFIGS[args.trainer]}.yaml"))
    node = args.trainer.upper()
    cfg.merge_from_list(["DATASET.ROOT", str(root), "OUTPUT_DIR", str(work / "out"), "SEED", "1", "TRAINER.NAME",
                         args.trainer, "MODEL.BACKBONE.NAME", str(clip), "INPUT.SIZE",
                         "(64, 64)" if args.clip == "rn" else "(32, 32)", f"TRAINER.{node}.PREC", "fp32",
                         "DATASET.NUM_SHOTS", str(args.shots), "DATALOADER.NUM_WORKERS", "0",
                         "DATALOADER.TRAIN_X.BATCH_SIZE", str(args.batch), "OPTIM.MAX_EPOCH", str(args.epochs),
                         "TRAIN.PRINT_FREQ", "1000000", "TRAIN.TENSORBOARD", "False", "VERBOSE", "False"])
    set_random_seed(1)
    trainer = TRAINER_REGISTRY.get(args.trainer)(cfg)
    hook = next(h for h in trainer.hooks if isinstance(h, CheckpointHook))
    epoch_s, save_s = [], []
    for trainer.epoch in range(args.epochs):
        trainer.call_hooks("before_epoch")
        started = time.perf_counter()
        trainer.run_epoch()
        epoch_s.append(time.perf_counter() - started)
        started = time.perf_counter()
        hook.after_epoch()
        save_s.append(time.perf_counter() - started)
    state_bytes = sum(f.stat().st_size for f in (work / "out").rglob("*.pth.tar-*") if f.is_file())
    rows = [[args.trainer, args.clip, f"{len(trainer.dm.dataset.train_x)} images / batch {args.batch}",
             f"{statistics.median(epoch_s):.3f}", f"{statistics.median(save_s) * 1000:.1f}",
             f"{statistics.median(save_s) / statistics.median(epoch_s):.4f}", f"{state_bytes / 1e6:.2f}"]]
    print(tabulate(rows, headers=["trainer", "CLIP", "epoch", "epoch s (median)", "save ms (median)",
                                  "save / epoch", "files on disk MB"], tablefmt="github"))


if __name__ == "__main__":
    main()
