"""The linear-probe protocol of CoOp's ``lpclip/linear_probe.py`` over precomputed features (method-independent).

* :func:`fewshot_indices` -- the published few-shot picks: ``k`` rows per label (labels in ``np.unique`` order),
  drawn without replacement from a legacy ``RandomState`` (``np.random.seed(seed)`` in the published script;
  train shots first, then val shots from the same stream).
* :func:`search_c` -- the published C search: one fit per C of :data:`SEARCH_LIST`; the FIRST best val accuracy
  (the largest C among ties) gives ``c_peak``; then ``num_step`` rounds on ``[c_peak/10, 10 c_peak]`` that fit
  both ends, keep the right end only if it is strictly better (a tie goes left) and halve the interval in
  log10 space. The result is the LAST round's classifier (not the best one), as published.
* :func:`sklearn_fitter` (the published ``LogisticRegression`` settings) and :func:`torch_fitter` (the same
  objective minimised by ``torch.optim.LBFGS``, GPU-capable, float64). A fitter maps C to a fitted classifier
  with ``predict(x)``, ``coef_`` ``[n_classes or 1, D]``, ``intercept_`` and ``classes_``.

Fits are cached by the exact value of C (lbfgs from zero is deterministic), so an interval end that a round
fits again is not refitted.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

#: the published coarse grid, in the published (descending) order
SEARCH_LIST: tuple[float, ...] = (1e6, 1e4, 1e2, 1, 1e-2, 1e-4, 1e-6)
#: val shots per train shot in the published script (other shot counts: ``min(k, 4)``)
VAL_SHOTS = {1: 1, 2: 2, 4: 4, 8: 4, 16: 4}

Fitter = Callable[[float], Any]


def fewshot_indices(labels: np.ndarray, k: int, rng: np.random.RandomState) -> np.ndarray:
    """Indices of ``k`` rows per label, labels in ``np.unique`` order, drawn with ``rng.choice(replace=False)``."""
    picks = [rng.choice(np.where(labels == c)[0], size=k, replace=False) for c in np.unique(labels)]
    return np.concatenate(picks)


def accuracy(pred: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of correct predictions (the published ``sum(pred == y) / len(y)``)."""
    return float(np.count_nonzero(np.asarray(pred) == np.asarray(labels)) / len(labels))


@dataclass
class Round:
    """One round of the binary search: both ends, their val accuracies and the kept end."""
    c_left: float
    c_right: float
    acc_left: float
    acc_right: float
    chosen: str  # "left" or "right"
    c_final: float
    classifier: Any = field(repr=False)


@dataclass
class SearchResult:
    """``search``: (C, val accuracy) of the coarse grid; ``rounds``: the binary search; ``classifier``/``c``:
    the last round's (what the published script reports)."""
    search: list[tuple[float, float]]
    peak_idx: int
    c_peak: float
    rounds: list[Round]

    @property
    def c(self) -> float:
        return self.rounds[-1].c_final if self.rounds else self.c_peak

    @property
    def classifier(self) -> Any:
        return self.rounds[-1].classifier

    @property
    def val_acc(self) -> float:
        r = self.rounds[-1]
        return r.acc_right if r.chosen == "right" else r.acc_left


def search_c(fit: Fitter, x_val: np.ndarray, y_val: np.ndarray, search_list: Sequence[float] = SEARCH_LIST,
             num_step: int = 8, log: Callable[[str], None] | None = None) -> SearchResult:
    """The published C search of ``fit`` (C -> classifier fitted on the training features) on the val set.

    Args:
        fit: e.g. ``sklearn_fitter(x_train, y_train)``.
        x_val: ``[N_val, D]`` val features; y_val: ``[N_val]`` labels.
        search_list: the coarse grid (first maximum wins, so its order matters).
        num_step: rounds of the binary search (``--num_step``), at least 1.
        log: called with the published progress lines.
    """
    if num_step < 1:
        raise ValueError(f"num_step must be >= 1, got {num_step}")
    cache: dict[float, tuple[Any, float]] = {}

    def fit_eval(c: float) -> tuple[Any, float]:
        key = float(c)
        if key not in cache:
            clf = fit(key)
            cache[key] = (clf, accuracy(clf.predict(x_val), y_val))
        return cache[key]

    search = [(c, fit_eval(c)[1]) for c in search_list]
    if log:
        log(f"Coarse search (C: val accuracy): {', '.join(f'{c:g}: {100 * a:.2f}' for c, a in search)}")
    peak_idx = int(np.argmax([a for _, a in search]))
    c_peak = search_list[peak_idx]
    c_left, c_right = 1e-1 * c_peak, 1e1 * c_peak
    rounds = []
    for step in range(num_step):
        clf_left, acc_left = fit_eval(c_left)
        clf_right, acc_right = fit_eval(c_right)
        if acc_left < acc_right:
            rounds.append(Round(c_left, c_right, acc_left, acc_right, "right", c_right, clf_right))
            lo, hi = 0.5 * (np.log10(c_right) + np.log10(c_left)), np.log10(c_right)
        else:
            rounds.append(Round(c_left, c_right, acc_left, acc_right, "left", c_left, clf_left))
            lo, hi = np.log10(c_left), 0.5 * (np.log10(c_right) + np.log10(c_left))
        if log:
            log(f"Round {step}: {c_left}/{c_right}: val accuracy (left) {100 * acc_left:.2f}, (right) "
                f"{100 * acc_right:.2f}, keep {rounds[-1].chosen}")
        c_left, c_right = float(np.power(10, lo)), float(np.power(10, hi))
    return SearchResult(search, peak_idx, c_peak, rounds)


def sklearn_fitter(x: np.ndarray, y: np.ndarray, max_iter: int = 1000, tol: float = 1e-4) -> Fitter:
    """C -> ``LogisticRegression(solver="lbfgs", max_iter=1000, C=C)`` fitted on ``x`` ``[N, D]``, ``y`` ``[N]``.
    The published call also passes ``penalty="l2"``: that is the default (the same model), and passing it
    warns in scikit-learn 1.8/1.9 and fails from 1.10, so it is left out."""
    try:
        from sklearn.linear_model import LogisticRegression
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the scikit-learn solver of the linear probe needs scikit-learn: pip install scikit-learn"
                          " (or use the torch solver)") from e

    def fit(c: float) -> Any:
        return LogisticRegression(solver="lbfgs", max_iter=max_iter, tol=tol, C=c).fit(x, y)

    return fit


class TorchLogistic:
    """A multinomial logistic regression fitted by :func:`torch_fitter` (scikit-learn's attribute names)."""

    def __init__(self, coef: np.ndarray, intercept: np.ndarray, classes: np.ndarray, n_iter: int) -> None:
        self.coef_, self.intercept_, self.classes_, self.n_iter_ = coef, intercept, classes, np.array([n_iter])

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x, dtype=np.float64) @ self.coef_.T + self.intercept_

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classes_[np.argmax(self.decision_function(x), axis=1)]


def torch_fitter(x: np.ndarray, y: np.ndarray, max_iter: int = 1000, tol: float = 1e-4,
                 device: str | torch.device = "cpu") -> Fitter:
    """C -> multinomial logistic regression minimising scikit-learn's lbfgs objective (mean cross-entropy +
    ``||W||^2 / (2 C N)``, intercept not penalised; full ``[n_classes, D]`` weights, also for two classes)
    with ``torch.optim.LBFGS`` in float64 from zero (strong-Wolfe line search, history 10, stop when the
    largest gradient entry is <= ``tol``, as scipy's ``gtol``). Not bit-identical to scikit-learn: where the
    optimum is flat (large C on separable data, tiny C) the predictions depend on where lbfgs stops."""
    dev = torch.device(device)
    classes, yi = np.unique(y, return_inverse=True)
    xt = torch.as_tensor(np.asarray(x, dtype=np.float64), device=dev)
    yt = torch.as_tensor(yi, device=dev)
    n, d = xt.shape

    def fit(c: float) -> TorchLogistic:
        w = torch.zeros(len(classes), d, dtype=torch.float64, device=dev, requires_grad=True)
        b = torch.zeros(len(classes), dtype=torch.float64, device=dev, requires_grad=True)
        opt = torch.optim.LBFGS([w, b], lr=1, max_iter=max_iter, tolerance_grad=tol, tolerance_change=1e-12,
                                history_size=10, line_search_fn="strong_wolfe")

        def closure() -> torch.Tensor:
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt) + (w * w).sum() / (2 * c * n)
            loss.backward()
            return loss

        opt.step(closure)
        n_iter = opt.state[opt._params[0]].get("n_iter", 0)
        return TorchLogistic(w.detach().cpu().numpy(), b.detach().cpu().numpy(), classes, n_iter)

    return fit
