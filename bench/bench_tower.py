"""The frozen image tower alone vs the whole CoOp train step around it, and bf16 autocast of the frozen towers.

    python bench/bench_tower.py [--device cuda] [--shape full|small] [--batch 32] [--classes 1000]

Prints one table: images/s of the image tower standalone (no autograd, the run's precision), of the same tower
inside our CoOp train step (batch / step time) and their ratio (the share of a step the tower takes), for fp32
and for amp (float32 weights under autocast: bf16 on CPU, fp16 on CUDA); then whether autocast keeps the argmax of
the evaluation logits (compared with fp32 on the same images).
"""
from __future__ import annotations

import argparse
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from methods.common import (SHAPES, backbone, build_ours, class_names, ours_eval, ours_train_step,  # noqa: E402
                            print_table, timed)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", choices=["cpu", "cuda"], default="cpu")
    ap.add_argument("--shape", choices=["full", "small"], default=None, help="default: full on CUDA, small on CPU")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--classes", type=int, default=1000)
    ap.add_argument("--repeats", type=int, default=5)
    args = ap.parse_args()
    device = torch.device(args.device)
    name = args.shape or ("full" if device.type == "cuda" else "small")
    shape = SHAPES[name]
    clip_model = backbone(shape.layers, shape.image_size).model.to(device)
    images = torch.randn(args.batch, 3, shape.image_size, shape.image_size, device=device)
    labels = torch.arange(args.batch, device=device) % args.classes
    rows, argmax = [], []
    reference = None
    for prec in ("fp32", "amp"):  # amp: float32 weights, autocast (bf16 on CPU, fp16 + GradScaler on CUDA)
        trainer = build_ours("CoOp", ["TRAINER.COOP.PREC", prec, "TRAINER.COOP.N_CTX", 16],
                             class_names(args.classes), clip_model, shape.image_size, 0.002, device)

        def tower() -> None:
            with torch.no_grad(), trainer.precision.autocast():
                trainer.model.frozen_image_features(images)

        def step() -> None:
            ours_train_step(trainer, {"img": images, "label": labels})

        t_tower, t_step = timed([tower, step], device, warmup=1, repeats=args.repeats)
        rows.append([prec, f"{args.batch / t_tower:.1f}", f"{args.batch / t_step:.1f}", f"{t_tower / t_step:.0%}"])
        logits = ours_eval(trainer, [images])
        if reference is None:
            reference = logits
        else:
            argmax.append((prec, bool(torch.equal(logits.argmax(1), reference.argmax(1))),
                           float((logits - reference).abs().max())))
    print(f"{name} ViT-B/16-shaped CLIP ({shape.layers} layers, {shape.image_size} px), {args.classes} classes, "
          f"batch {args.batch}, {device}")
    print_table(["precision", "tower alone (img/s)", "CoOp train step (img/s)", "tower share of step"], rows, 1)
    for prec, same, diff in argmax:
        print(f"{prec} ({'bf16' if device.type == 'cpu' else 'fp16'} autocast) vs fp32 eval logits: argmax {'identical' if same else 'DIFFERS'} on {args.batch} "
              f"images, max |logit diff| {diff:.3g}")


if __name__ == "__main__":
    main()
