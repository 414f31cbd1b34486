"""Speed of this repository's trainers, against the published code where there is one.

    --method coop            CoOp    vs KaiyangZhou/CoOp trainers/coop.py (on Dassl)
    --method cocoop          CoCoOp  vs KaiyangZhou/CoOp trainers/cocoop.py
    --method maple           MaPLe   vs muzairkhattak/multimodal-prompt-learning trainers/maple.py (+ its patched clip/)
    --method metaproto       MetaProto, ours only (no published code)
    --method instanceprompt  InstancePrompt, ours only (no published code)
    --method all             all of them in turn (several names may be given)
    --classes 10,100,1000    each method at each class count, then one scaling table (ratios per size)

One file per method under bench/methods/ (its config values and inputs) on shared helpers: methods/common.py
(the frozen CLIP, our trainers without data, the checks, timing, peak step memory, tables) and
methods/published.py (importing and running the published trainers). See bench/README.md for what is measured.

Every method gets the same kind of frozen CLIP: a randomly initialised open_clip ``CLIP`` of ViT-B/16 shape
(QuickGELU), or a scaled-down one on CPU, weights rounded to float16 values as in OpenAI's released files so
that the published ``clip.build_model`` sees exactly the same numbers. The published trainers load it through
their own unchanged ``load_clip_to_cpu`` (``clip._download`` is pointed at a temporary file holding the state
dict). Class names are ImageNet's. Both sides run ``PREC fp32`` and start from the same learnable values (ours
are copied into the published prompt learner by parameter name, which the two share).

Measured (median wall time of ``--repeats`` runs after the check run and ``--warmup`` more; the two sides
take turns, ours then published, run by run):

* train step: each trainer's own ``forward_backward`` on one batch: forward, loss, backward, SGD step.
* full eval: logits of ``--test-images`` images in batches of ``--test-batch`` under ``torch.no_grad``. Ours:
  ``precompute`` (image-independent work once) + ``model_inference`` per batch. Published: Dassl's
  ``model_inference`` per batch.
* peak step memory: one more, untimed, train step of each side: the memory it needs above what was held before
  (CUDA: the allocator's peak; CPU: the peak resident set).

Before timing, the eval logits of both sides on the same images are compared, and so are all learnable
parameters after one SGD step on the same batch (at every class count of ``--classes``); the run stops if they
disagree. MetaProto and InstancePrompt: a finiteness check only.

Defaults. ``--shape small`` (CPU default, a SCALED-DOWN model): 1 transformer layer per tower and 64 px images
(MaPLe: 2 layers, so that its deep prompts run, with PROMPT_DEPTH 2 on both sides instead of the published 9),
1000 classes, eval 200 images in batches of 100, median of 2 runs; CoCoOp: 100 classes, eval 100 images in
batches of 50 (the published code encodes n_cls prompts per image). ``--shape full`` (CUDA default): ViT-B/16
(12 layers, 224 px, PROMPT_DEPTH 9), 1000 classes, eval 1000 images (CoCoOp 100), one more warm-up run, median
of 5. Train batch: CoOp 8 on CPU / 32 (its config), CoCoOp 4 (its config: 1), MaPLe 4 (its config),
InstancePrompt 32.

The published code is imported at run time, never copied: ``--coop-repo`` (alias ``--published``; default
``$COOP_REPO`` or /work/ref/CoOp), ``--maple-repo`` (default ``$MAPLE_REPO`` or /work/ref/maple), Dassl from
``--dassl``.

    python bench/bench_methods.py --method coop        # CPU, scaled-down model; each method alone < 4 min on 2 cores
    python bench/bench_methods.py --method coop maple --classes 10,100    # scaling table
    python bench/bench_methods.py --method all --device cuda   # full ViT-B/16 shape
"""
from __future__ import annotations

import argparse
import gc
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parent))

import open_clip  # noqa: E402
import torch  # noqa: E402

from methods import METHODS, Method  # noqa: E402
from methods.common import (SEED, SHAPES, Setting, backbone, check_equal, check_ours_only, class_names,  # noqa: E402
                            ours_eval, ours_train_step, peak_memory, print_table, sync_params, timed)
from methods.common import build_clip  # noqa: E402,F401  (bench_ddp.py and older scripts import it from here)
from methods.published import build_published, find_published, published_eval, published_train_step  # noqa: E402

DEFAULT_COOP = os.environ.get("COOP_REPO", "/work/ref/CoOp")
DEFAULT_MAPLE = os.environ.get("MAPLE_REPO", "/work/ref/maple")
DEFAULT_DASSL = os.environ.get("DASSL_REPO", "")
MB = 1 << 20


@dataclass
class Result:
    """One method at one setting: its table rows, and the numbers of the scaling table (None: not measured)."""
    rows: list[tuple[str, str, str, str]]
    step: tuple[float, Optional[float]]
    eval: tuple[float, Optional[float]]
    memory: tuple[Optional[int], Optional[int]]


def _ratio(published: Optional[float], ours: Optional[float]) -> str:
    return "-" if published is None or not ours else f"{published / ours:.1f}x"


def run_method(method: Method, s: Setting, args: argparse.Namespace) -> Result:
    """Build, check and time one method; print its block; return its rows and numbers."""
    print()
    print(f"== {method.title} ==")
    print(f"{method.describe(s)} | SGD lr {method.lr} | model: {s.layers} layer{'s' * (s.layers != 1)} per tower, "
          f"{s.image_size} px | classes {s.classes} | eval {s.test_images} images in batches of {s.test_batch}")
    for note in s.notes:
        print(f"NOTE: {note}")

    pub_module = None
    if method.published_repo is not None:
        pub_module = find_published(method.published_repo, getattr(args, f"{method.published_repo}_repo"),
                                    method.published_file, args.dassl)
    else:
        print("no published code: ours only")

    classnames = class_names(s.classes)
    bb = backbone(s.layers, s.image_size)
    ours = method.build_ours(s, bb.model, classnames)
    published = None
    if pub_module is not None:
        published = build_published(pub_module, method.trainer, method.node, method.published_values(s),
                                    bb.checkpoint_file(), classnames, s.image_size, method.lr, s.device,
                                    method.published_after_build)
        sync_params(ours.model.prompt_learner, published.model.prompt_learner)
        ours_tokens = ours.model.prompt_learner.prompts.tokenized_prompts.cpu()
        pub_tokens = published.model.prompt_learner.tokenized_prompts.cpu()
        if not torch.equal(ours_tokens, pub_tokens):
            raise SystemExit(f"{method.title}: tokenised class prompts differ between ours and the published code")
        eot = int(ours_tokens.argmax(dim=-1).max()) + 1
        print(f"text positions encoded per prompt: ours {eot} (up to the last EOT), published {ours_tokens.shape[1]}")

    gen = torch.Generator().manual_seed(SEED)
    batch = method.train_batch(s, gen, ours)
    test_images = [torch.randn(min(s.test_batch, s.test_images - i), 3, s.image_size, s.image_size,
                               generator=gen).to(s.device) for i in range(0, s.test_images, s.test_batch)]

    # Check run (also the first warm-up run): full-eval logits, then the parameters after one step on `batch`.
    if published is None:
        check_ours_only(method, ours, batch, test_images)
    else:
        check_equal(method, ours, published, batch, test_images)

    # Peak memory of one more (untimed) train step of each side.
    mem_ours = peak_memory(lambda: ours_train_step(ours, batch), s.device)
    mem_pub = None if published is None else peak_memory(lambda: published_train_step(published, batch), s.device)
    if mem_ours is not None:
        how = "CUDA allocator" if s.device.type == "cuda" else "resident set"
        pub_part = "" if mem_pub is None else f", published {mem_pub / MB:.0f} MB ({_ratio(mem_pub, mem_ours)})"
        print(f"peak train-step memory (one more step, above what was held before; {how}): "
              f"ours {mem_ours / MB:.0f} MB{pub_part}")

    rows, measured = [], []
    for what, ours_fn, pub_fn in (
        (method.train_label(s), lambda: ours_train_step(ours, batch),
         None if published is None else (lambda: published_train_step(published, batch))),
        (f"full eval ({s.test_images} images, {s.classes} classes)", lambda: ours_eval(ours, test_images),
         None if published is None else (lambda: published_eval(published, test_images))),
    ):
        if pub_fn is None:
            (t_ours,) = timed([ours_fn], s.device, s.warmup, s.repeats)
            rows.append((what, f"{t_ours:.3f}", "-", "-"))
            measured.append((t_ours, None))
        else:
            t_ours, t_pub = timed([ours_fn, pub_fn], s.device, s.warmup, s.repeats)
            rows.append((what, f"{t_ours:.3f}", f"{t_pub:.3f}", _ratio(t_pub, t_ours)))
            measured.append((t_ours, t_pub))
    print()
    print_table(("what", "ours (s)", "published (s)", "speed-up"), rows)
    return Result(rows, measured[0], measured[1], (mem_ours, mem_pub))


def scaling_row(method: Method, s: Setting, r: Result) -> tuple[str, ...]:
    ms = lambda t: "-" if t is None else f"{t * 1000:.0f}"  # noqa: E731
    mem_ours, mem_pub = r.memory
    return (method.title, f"{s.layers}L {s.image_size}px", str(s.classes), ms(r.step[0]), ms(r.step[1]),
            _ratio(r.step[1], r.step[0]), ms(r.eval[0]), ms(r.eval[1]), _ratio(r.eval[1], r.eval[0]),
            "-" if mem_ours is None else f"{mem_ours / MB:.0f}", _ratio(mem_pub, mem_ours))


SCALING_HEADER = ("method", "model", "classes", "step ours (ms)", "step published (ms)", "step speed-up",
                  "eval ours (ms)", "eval published (ms)", "eval speed-up", "step memory ours (MB)",
                  "step memory published / ours")


# ------------------------------------------------------------------------------------------------- CLI
def _class_counts(text: str) -> list[int]:
    try:
        counts = [int(c) for c in text.split(",") if c.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected class counts such as 1000 or 10,100,1000, got {text!r}")
    if not counts or min(counts) < 1:
        raise argparse.ArgumentTypeError(f"class counts must be positive integers, got {text!r}")
    return list(dict.fromkeys(counts))


def parse_args(argv: Optional[Sequence[str]] = None, method: Optional[str] = None,
               description: Optional[str] = None) -> argparse.Namespace:
    """The command line; with ``method`` (a wrapper such as bench_coop.py) there is no --method option."""
    p = argparse.ArgumentParser(description=description or __doc__.split("\n\n")[0],
                                formatter_class=argparse.RawTextHelpFormatter)
    if method is None:
        p.add_argument("--method", nargs="+", required=True, choices=[*METHODS, "all"], metavar="METHOD",
                       help=f"one or more of {', '.join(METHODS)}, or all (in turn)")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="default cpu")
    p.add_argument("--shape", choices=sorted(SHAPES), default=None,
                   help="small: 1 layer per tower (MaPLe: 2), 64 px images (default on CPU); full: ViT-B/16, "
                        "12 layers, 224 px (default on CUDA)")
    p.add_argument("--small", dest="shape", action="store_const", const="small", help="same as --shape small")
    p.add_argument("--full", dest="shape", action="store_const", const="full", help="same as --shape full")
    p.add_argument("--layers", type=int, help="transformer layers per tower (overrides the preset)")
    p.add_argument("--image-size", type=int, help="image side in pixels, a multiple of 16 (overrides the preset)")
    p.add_argument("--classes", type=_class_counts, metavar="N[,N...]",
                   help="number of classes (ImageNet names; default 1000, CoCoOp on CPU 100); several, comma-\n"
                        "separated (10,100,1000): every method at each count, then one scaling table")
    p.add_argument("--train-batch", type=int, help="images per train step (not MetaProto: 4 x 5-way x 16 images)")
    p.add_argument("--test-images", type=int, help="images in the full eval")
    p.add_argument("--test-batch", type=int, help="images per eval batch")
    p.add_argument("--warmup", type=int, help="untimed runs before timing, besides the check run")
    p.add_argument("--repeats", type=int, help="timed runs (the median is reported)")
    p.add_argument("--coop-repo", "--published", dest="coop_repo", type=Path, default=Path(DEFAULT_COOP),
                   help="clone of KaiyangZhou/CoOp (default $COOP_REPO or /work/ref/CoOp)")
    p.add_argument("--maple-repo", type=Path, default=Path(DEFAULT_MAPLE),
                   help="clone of muzairkhattak/multimodal-prompt-learning (default $MAPLE_REPO or /work/ref/maple)")
    p.add_argument("--dassl", type=Path, default=Path(DEFAULT_DASSL) if DEFAULT_DASSL else None,
                   help="clone of Dassl.pytorch (default $DASSL_REPO, else Dassl.pytorch next to --coop-repo; "
                        "not needed if dassl is installed)")
    args = p.parse_args(argv)
    if method is not None:
        args.method = [method]
    args.device = torch.device(args.device)
    if args.device.type == "cuda" and not torch.cuda.is_available():
        p.error("--device cuda: CUDA is not available")
    args.shape = args.shape or ("small" if args.device.type == "cpu" else "full")
    if args.image_size is not None and args.image_size % 16:
        p.error("--image-size must be a multiple of the patch size 16")
    if args.dassl is None:
        args.dassl = args.coop_repo.parent / "Dassl.pytorch"
    args.methods = list(METHODS) if "all" in args.method else list(dict.fromkeys(args.method))
    return args


def setting(method: Method, args: argparse.Namespace, classes: Optional[int] = None) -> Setting:
    """What ``method`` runs with: the shape preset, the method's defaults, the options, and ``classes``."""
    base = dict(vars(SHAPES[args.shape]), classes=1000, train_batch=8, test_images=200 if args.shape == "small"
                else 1000, test_batch=100)
    base.update(method.defaults.get(args.shape, {}))
    notes = []
    if args.shape == "small":
        for key, why in (("layers", "so that its deep prompts (layer >= 1) run"),
                         ("classes", "its published code is slow on CPU")):
            given = classes if key == "classes" else getattr(args, key)
            if key in method.defaults.get("small", {}) and given is None:
                notes.append(f"{key} {base[key]} on CPU, {why}")
    for key in base:
        if key != "classes" and getattr(args, key, None) is not None:
            base[key] = getattr(args, key)
    if classes is not None:
        base["classes"] = classes
    return Setting(**base, device=args.device, notes=notes)


def main(argv: Optional[Sequence[str]] = None, method: Optional[str] = None,
         description: Optional[str] = None) -> int:
    args = parse_args(argv, method, description)
    device: torch.device = args.device
    print(f"device {device} ({torch.cuda.get_device_name(device) if device.type == 'cuda' else 'CPU'}, "
          f"{torch.get_num_threads()} threads) | torch {torch.__version__} | open_clip {open_clip.__version__}")
    print("model: random open_clip CLIP, ViT-B/16 widths (vision 768, patch 16, text 512, embed 512), context 77, "
          "QuickGELU, PREC fp32")
    sizes: list[Optional[int]] = list(args.classes) if args.classes else [None]
    settings = {(key, n): setting(METHODS[key], args, n) for n in sizes for key in args.methods}
    if any((s.layers, s.image_size) != (12, 224) for s in settings.values()):
        print(f"NOTE: {'CPU run with a' if device.type == 'cpu' else 'a'} SCALED-DOWN model (the real ViT-B/16 has "
              "12 layers per tower and 224 px images); times are not those of ViT-B/16.")
    print(f"warm-up: the check run + {args.warmup if args.warmup is not None else SHAPES[args.shape].warmup}, then "
          f"the median of {args.repeats if args.repeats is not None else SHAPES[args.shape].repeats} runs")

    summary, scaling = [], []
    for n in sizes:
        if len(sizes) > 1:
            print()
            print(f"######## {n} classes ########")
        for key in args.methods:
            s = settings[(key, n)]
            result = run_method(METHODS[key], s, args)
            summary += [(METHODS[key].title, f"{s.layers}L {s.image_size}px", what, *times)
                        for what, *times in result.rows]
            scaling.append(scaling_row(METHODS[key], s, result))
            gc.collect()  # this size's trainers go before the next are built
    if len(sizes) > 1:
        print()
        print("== scaling (speed-up and memory: published / ours; ratios are what to compare on a shared machine) ==")
        print_table(SCALING_HEADER, scaling, text_cols=2)
    elif len(args.methods) > 1:
        print()
        print("== summary ==")
        print_table(("method", "model", "what", "ours (s)", "published (s)", "speed-up"), summary)
    return 0


if __name__ == "__main__":
    sys.exit(main())
