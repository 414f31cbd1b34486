"""Linear-probe C search: ``vlprompt.engine.linear_probe.search_c`` vs the published lpclip loop.

Random features (fixed generator): class means N(0, 1) plus noise N(0, 2), ``--classes`` x ``--shots`` train
rows and ``min(shots, 4)`` val rows per class, ``--dim`` wide. Rows:

* ``sklearn, published loop``: the published search as written (7 grid fits + 2 fits per round, every round
  refits both ends) with ``LogisticRegression(solver="lbfgs", max_iter=1000, C=c)`` (the published settings);
* ``sklearn, ours``: ``search_c`` with the same fits (an end fitted before is not refitted: same result);
* ``torch L-BFGS, ours``: ``search_c`` with ``torch_fitter`` (``--device cuda`` for the GPU).

    python bench/bench_linear_probe.py                          # 1000 classes x 16 shots x 512 (long on a CPU)
    python bench/bench_linear_probe.py --classes 100 --steps 8   # scaled down
"""
from __future__ import annotations

import argparse
import sys
import time
from typing import Optional, Sequence

import numpy as np
from tabulate import tabulate

from vlprompt.engine.linear_probe import SEARCH_LIST, accuracy, search_c, sklearn_fitter, torch_fitter


def make_features(classes: int, shots: int, dim: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    means = rng.standard_normal((classes, dim))
    y_tr, y_va = np.repeat(np.arange(classes), shots), np.repeat(np.arange(classes), min(shots, 4))
    x_tr = means[y_tr] + 2.0 * rng.standard_normal((len(y_tr), dim))
    x_va = means[y_va] + 2.0 * rng.standard_normal((len(y_va), dim))
    return x_tr, y_tr, x_va, y_va


def published_loop(fit, x_va, y_va, num_step):
    """The published search, every fit done as written (for timing; same choices as ``search_c``)."""
    accs = [accuracy(fit(c).predict(x_va), y_va) for c in SEARCH_LIST]
    c_peak = SEARCH_LIST[int(np.argmax(accs))]
    c_left, c_right, n_fits = 1e-1 * c_peak, 1e1 * c_peak, len(SEARCH_LIST)
    for _ in range(num_step):
        acc_l = accuracy(fit(c_left).predict(x_va), y_va)
        acc_r = accuracy(fit(c_right).predict(x_va), y_va)
        n_fits += 2
        if acc_l < acc_r:
            c_final, lo, hi = c_right, 0.5 * (np.log10(c_right) + np.log10(c_left)), np.log10(c_right)
        else:
            c_final, lo, hi = c_left, np.log10(c_left), 0.5 * (np.log10(c_right) + np.log10(c_left))
        c_left, c_right = float(np.power(10, lo)), float(np.power(10, hi))
    return c_final, n_fits


class Counting:
    def __init__(self, fit):
        self.fit, self.n = fit, 0

    def __call__(self, c):
        self.n += 1
        return self.fit(c)


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--classes", type=int, default=1000)
    p.add_argument("--shots", type=int, default=16)
    p.add_argument("--dim", type=int, default=512)
    p.add_argument("--steps", type=int, default=8, help="rounds of the binary search (published: 8)")
    p.add_argument("--device", default="cpu", help="device of the torch solver")
    p.add_argument("--skip-published", action="store_true")
    args = p.parse_args(argv)
    x_tr, y_tr, x_va, y_va = make_features(args.classes, args.shots, args.dim)
    print(f"{args.classes} classes x {args.shots} shots x {args.dim} dims: {len(y_tr):,} train, {len(y_va):,} val; "
          f"{args.steps} rounds", flush=True)
    rows = []
    runs = [("sklearn, published loop", None), ("sklearn, ours", sklearn_fitter(x_tr, y_tr)),
            ("torch L-BFGS, ours", torch_fitter(x_tr, y_tr, device=args.device))]
    for name, fit in runs:
        if fit is None and args.skip_published:
            continue
        start = time.perf_counter()
        if fit is None:
            c, n_fits = published_loop(sklearn_fitter(x_tr, y_tr), x_va, y_va, args.steps)
            val = float("nan")
        else:
            counted = Counting(fit)
            r = search_c(counted, x_va, y_va, SEARCH_LIST, args.steps)
            c, n_fits, val = r.c, counted.n, 100 * r.val_acc
        seconds = time.perf_counter() - start
        rows.append([name, f"{seconds:.1f}", n_fits, f"{seconds / n_fits:.2f}", f"{c:.6g}", f"{val:.2f}"])
        print(f"  {name}: {seconds:.1f} s", flush=True)
    print(tabulate(rows, headers=["search", "seconds", "fits", "s / fit", "chosen C", "val acc %"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
