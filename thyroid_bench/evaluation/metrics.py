"""Classification metrics over arrays, with bootstrap confidence intervals.

Pure functions over arrays, in the manner of ``sklearn.metrics``: ``y_true`` holds
class indices, ``y_prob`` one row of class probabilities per case (column k is
class k of the label schema). Results are plain JSON-able dicts; fractions lie in
[0, 1]; a figure that is undefined on the data (a class with no cases, a class
never predicted) is ``None``, never a crash or a warning.

Per class, one-vs-rest, exactly as Qiao et al. 2021 (BMC Medical Imaging,
doi 10.1186/s12880-021-00710-4, Table 2) define them::

    accuracy    = (TP + TN) / (TP + FP + TN + FN)
    sensitivity = TP / (TP + FN)          (recall)
    specificity = TN / (TN + FP)
    PPV         = TP / (TP + FP)          (precision)
    NPV         = TN / (TN + FN)
    F1          = 2 * R * P / (R + P)     computed as 2TP / (2TP + FP + FN), the same
                                          value wherever R and P are defined, and 0
                                          (not undefined) when TP = 0 but the class
                                          occurs or is predicted, as scikit-learn does
    AUC         = one-vs-rest ROC AUC of the class's probability column

Where scikit-learn returns 0 for an undefined figure (MCC when a side has one class)
or a NaN with a warning (kappa), this module returns ``None``. Macro averages run over
the classes where the figure is defined: balanced accuracy over the classes present,
macro F1 over the classes present or predicted (both as scikit-learn), macro AUC over
the classes present and not universal (scikit-learn refuses that case).

Every figure, the point estimate and each bootstrap resample alike, is computed
by one vectorised routine from per-case *weights*: weight 1 for every case gives
the point estimate, and a bootstrap resample is the vector of how many times each
case was drawn. So 1,000 resamples cost a handful of matrix products instead of
1,000 Python-level metric calls. Resamples are drawn and scored in chunks of about
:data:`_CHUNK_ELEMENTS` weights, so memory does not grow with their number; the figures come
from per-case indices (confusion cell, calibration bin) and column gathers, not from dense
case-by-cell matrices, so a million cases take memory linear in the cases and about a
minute for 1,000 resamples on one core. The resampling and the bootstrap loops (``_weights``,
``_intervals``, ``_paired``) take any such figure function, so another metric suite
(:mod:`thyroid_bench.evaluation.ordinal`) adds its figures on the same resamples.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from thyroid_bench.tasks import PROB_SUM_TOLERANCE

__all__ = [
    "OVERALL_FIGURES",
    "PER_CLASS_FIGURES",
    "ECE_BINS",
    "evaluate",
    "gap",
    "compare",
    "paired_bootstrap",
    "figure_names",
    "bootstrap_record",
]

#: Overall scalar figures of :func:`evaluate`, in display order.
OVERALL_FIGURES: tuple[str, ...] = (
    "accuracy", "balanced_accuracy", "macro_f1", "macro_auc", "cohen_kappa", "mcc", "ece", "brier",
)
#: Per-class figures of :func:`evaluate` (``recall``/``precision`` repeat sensitivity/PPV).
PER_CLASS_FIGURES: tuple[str, ...] = (
    "accuracy", "sensitivity", "specificity", "ppv", "npv", "f1", "auc", "recall", "precision",
)
#: Default number of equal-width confidence bins of the expected calibration error.
ECE_BINS = 15
# Resamples are processed in chunks of about this many (resample, case) weights, so
# memory stays near 16 MB per working array whatever the number of resamples. The chunk size
# also fixes the order of the random draws (a chunk draws every stratum in turn), so it is
# part of what a seed means: changing it changes the intervals.
_CHUNK_ELEMENTS = 2_000_000
# ROC AUCs are computed for this many (resample, case) weights at a time (one resample at a
# million cases), so that their gathers stay in cache.
_AUC_ELEMENTS = 1 << 18
# A figure function: per-case weights W (B x n) -> {figure path: (B,) values, NaN where undefined}.
FigureFn = Callable[[np.ndarray], dict[str, np.ndarray]]


# --------------------------------------------------------------------------- inputs
def _class_names(k: int, class_names: Sequence[str] | None) -> tuple[str, ...]:
    if class_names is None:
        return tuple(f"class_{i}" for i in range(k))
    names = tuple(str(c) for c in class_names)
    if len(names) != k:
        raise ValueError(f"class_names has {len(names)} names but y_prob has {k} columns")
    if len(set(names)) != k:
        raise ValueError(f"class_names must be unique, got {list(names)}")
    return names


def _check_inputs(y_true: object, y_prob: object,
                  unknown: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Validate and convert: y_true -> int64 (n,), y_prob -> float64 (n, k).

    ``unknown``: one more label value accepted besides 0..k-1 (the ordinal suite's
    "present, grade unknown"); no other value outside the classes passes.
    """
    p = np.asarray(y_prob)
    if p.ndim != 2:
        raise ValueError(f"y_prob must be 2-D (n cases x k classes), got shape {p.shape}")
    n, k = p.shape
    if n == 0:
        raise ValueError("y_prob has no rows: nothing to evaluate")
    if k < 2:
        raise ValueError(f"y_prob must have at least 2 class columns, got {k}")
    if not np.issubdtype(p.dtype, np.number) or np.issubdtype(p.dtype, np.complexfloating):
        raise ValueError(f"y_prob must be real numbers, got dtype {p.dtype}")
    p = p.astype(np.float64, copy=False)
    if not np.isfinite(p).all():
        row = int(np.flatnonzero(~np.isfinite(p).all(axis=1))[0])
        raise ValueError(f"y_prob row {row} holds NaN or infinity: {p[row].tolist()}")
    if (p < 0).any() or (p > 1).any():
        row = int(np.flatnonzero(((p < 0) | (p > 1)).any(axis=1))[0])
        raise ValueError(f"y_prob row {row} has a value outside [0, 1]: {p[row].tolist()}")
    sums = p.sum(axis=1)
    bad = np.abs(sums - 1.0) > PROB_SUM_TOLERANCE
    if bad.any():
        row = int(np.flatnonzero(bad)[0])
        raise ValueError(
            f"y_prob row {row} sums to {float(sums[row])!r}, not 1 (within {PROB_SUM_TOLERANCE}); "
            "pass class probabilities (e.g. a softmax), not raw scores")

    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ValueError(f"y_true must be 1-D (one class index per case), got shape {y.shape}")
    if y.shape[0] != n:
        raise ValueError(f"y_true has {y.shape[0]} cases but y_prob has {n} rows")
    if y.dtype == bool or not np.issubdtype(y.dtype, np.number):
        raise ValueError(f"y_true must hold integer class indices, got dtype {y.dtype}")
    if not np.issubdtype(y.dtype, np.integer):
        if not np.isfinite(y).all() or (y != np.round(y)).any():
            raise ValueError("y_true must hold integer class indices, got non-integer values")
    y = y.astype(np.int64)
    outside = ((y < 0) | (y >= k)) & (y != unknown if unknown is not None else True)
    if outside.any():
        bad_val = int(y[outside][0])
        raise ValueError(f"y_true holds class index {bad_val}, outside 0-{k - 1}")
    return y, p


# --------------------------------------------------------------------------- core
@dataclass
class _Cases:
    """What the figures need from one (y_true, y_prob) pair, precomputed once."""

    n: int
    k: int
    names: tuple[str, ...]
    y: np.ndarray          # (n,) true class
    pred: np.ndarray       # (n,) argmax class
    cell: np.ndarray       # (n,) the confusion cell y*k + pred
    brier: np.ndarray      # (n,) per-case multiclass Brier term
    ece_bin: np.ndarray    # (n,) the case's confidence bin
    ece: np.ndarray        # (n,) correct - confidence
    bins: int              # number of confidence bins
    auc_prep: list         # per class: (positives, negatives by score, #neg below, #neg <= or None)


def _prepare(y: np.ndarray, p: np.ndarray, names: tuple[str, ...], ece_bins: int) -> _Cases:
    n, k = p.shape
    pred = p.argmax(axis=1)  # first maximum on ties
    onehot = np.zeros((n, k))
    onehot[np.arange(n), y] = 1.0
    brier = ((p - onehot) ** 2).sum(axis=1)
    # ECE: equal-width bins (i/M, (i+1)/M] on the top-class confidence (Guo et al. 2017).
    conf = p.max(axis=1)
    bins = np.clip(np.ceil(conf * ece_bins).astype(np.int64) - 1, 0, ece_bins - 1)
    auc_prep = [_auc_prep(y == c, p[:, c]) for c in range(k)]
    return _Cases(n, k, names, y, pred, y * k + pred, brier, bins, (pred == y) - conf, ece_bins,
                  auc_prep)


def _auc_prep(positive: np.ndarray, scores: np.ndarray) -> tuple:
    """What :func:`_auc_from` needs for one ROC curve: (positives (a slice when consecutive, as
    a class is in the canonical order), negatives sorted by score, for each positive the number
    of negatives scoring strictly lower, and lower or equal (None when no positive ties a
    negative))."""
    pos = np.flatnonzero(positive)
    neg = np.flatnonzero(~positive)
    neg = neg[np.argsort(scores[neg], kind="stable")]
    neg_scores = scores[neg]
    lower = np.searchsorted(neg_scores, scores[pos], side="left")
    lower_eq = np.searchsorted(neg_scores, scores[pos], side="right")
    if pos.size and pos[-1] - pos[0] + 1 == pos.size:
        pos = slice(int(pos[0]), int(pos[-1]) + 1)
    return pos, neg, lower, None if (lower == lower_eq).all() else lower_eq


def _div(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """a / b, NaN where b == 0, without a warning."""
    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    return np.divide(a, b, out=np.full(a.shape, np.nan), where=b != 0)


def _nanmean(a: np.ndarray) -> np.ndarray:
    """Mean over the last axis of the defined (non-NaN) values, NaN if none; no warning."""
    ok = ~np.isnan(a)
    return _div(np.where(ok, a, 0.0).sum(axis=-1), ok.sum(axis=-1))


def _auc(W: np.ndarray, cs: _Cases) -> np.ndarray:
    """One-vs-rest ROC AUC per class for each weight row: (B, k), NaN if undefined."""
    return _auc_from(W, cs.auc_prep)


def _auc_from(W: np.ndarray, preps: Sequence[tuple]) -> np.ndarray:
    """ROC AUC of each curve prepared by :func:`_auc_prep`, per weight row: (B, curves).

    Weighted Mann-Whitney statistic: the probability that a positive case scores above
    a negative one, ties counted one half, which equals the area under the trapezoidal
    ROC curve (what ``sklearn.metrics.roc_auc_score`` computes). The negatives are
    sorted by score once; per resample, a cumulative sum of their weights gives, for
    each positive, the weight of the negatives below it. Weights are whole numbers, so the
    sums are done in integers (twice the statistic, ties then count one) and exact; rows are
    taken a few at a time, so that a million cases' gathers stay in cache.
    """
    Wi = W.astype(np.int32 if W.shape[1] < 2**31 else np.int64)  # draw counts: exact
    out = np.empty((W.shape[0], len(preps)))
    step = max(1, _AUC_ELEMENTS // max(1, W.shape[1]))
    for c, prep in enumerate(preps):
        for start in range(0, W.shape[0], step):
            out[start:start + step, c] = _auc_rows(Wi[start:start + step], prep)
    return out


def _auc_rows(Wi: np.ndarray, prep: tuple) -> np.ndarray:
    """One curve's ROC AUC for a few rows of integer weights (see :func:`_auc_from`)."""
    pos, neg, lower, lower_eq = prep
    cum_neg = np.zeros((Wi.shape[0], len(neg) + 1), dtype=Wi.dtype)
    np.cumsum(np.take(Wi, neg, axis=1), axis=1, out=cum_neg[:, 1:])
    below = np.take(cum_neg, lower, axis=1).astype(np.int64)
    # twice the weight below each positive; a tied negative counts one (a half, doubled)
    below2 = below + (np.take(cum_neg, lower_eq, axis=1) if lower_eq is not None else below)
    w_pos = Wi[:, pos] if isinstance(pos, slice) else np.take(Wi, pos, axis=1)
    num2 = np.einsum("bi,bi->b", w_pos, below2)
    return _div(num2, 2 * w_pos.sum(axis=1, dtype=np.int64) * cum_neg[:, -1].astype(np.int64))


def _binned(W: np.ndarray, index: np.ndarray, values: np.ndarray | None, size: int) -> np.ndarray:
    """Per weight row, the weighted sum of ``values`` (1 when None) over the cases of each
    ``index`` value 0..size-1: (B, size)."""
    B, n = W.shape
    if n >= _AUC_ELEMENTS:  # a few rows of many cases: row by row
        return np.stack([np.bincount(index, weights=W[r] if values is None else W[r] * values,
                                     minlength=size) for r in range(B)])
    flat = (np.arange(B)[:, None] * size + index[None, :]).ravel()
    weights = (W if values is None else W * values).ravel()
    return np.bincount(flat, weights=weights, minlength=B * size).reshape(B, size)


def _figures(W: np.ndarray, cs: _Cases) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Every scalar figure for each row of case weights W (B x n).

    Returns ({figure path: (B,) array, NaN where undefined}, confusion (B, k, k)).
    """
    B, k = W.shape[0], cs.k
    total = W.sum(axis=1)
    C = _binned(W, cs.cell, None, k * k).reshape(B, k, k)  # whole weights: exact
    tp = np.diagonal(C, axis1=1, axis2=2)
    row, col = C.sum(axis=2), C.sum(axis=1)
    fn, fp = row - tp, col - tp
    tn = total[:, None] - tp - fn - fp
    sens = _div(tp, tp + fn)
    ppv = _div(tp, tp + fp)
    f1 = _div(2 * tp, 2 * tp + fp + fn)
    auc = _auc(W, cs)
    per = {
        "accuracy": _div(tp + tn, total[:, None]),
        "sensitivity": sens,
        "specificity": _div(tn, tn + fp),
        "ppv": ppv,
        "npv": _div(tn, tn + fn),
        "f1": f1,
        "auc": auc,
        "recall": sens,
        "precision": ppv,
    }
    trace = tp.sum(axis=1)
    rc = (row * col).sum(axis=1)
    # Cohen's kappa (po - pe) / (1 - pe); multiclass MCC as Gorodkin 2004 (scikit-learn's form).
    po, pe = _div(trace, total), _div(rc, total ** 2)
    cov_tp = trace * total - rc
    cov_pp = total ** 2 - (col ** 2).sum(axis=1)
    cov_tt = total ** 2 - (row ** 2).sum(axis=1)
    denom = cov_tt * cov_pp
    figs: dict[str, np.ndarray] = {
        "accuracy": po,
        # balanced accuracy: mean recall over the classes present in y_true (scikit-learn's)
        "balanced_accuracy": _nanmean(sens),
        # macro F1 over the classes present in y_true or predicted (scikit-learn's default)
        "macro_f1": _nanmean(f1),
        # macro AUC over the classes whose AUC is defined (present, and not every case)
        "macro_auc": _nanmean(auc),
        "cohen_kappa": _div(po - pe, 1 - pe),
        "mcc": _div(cov_tp, np.sqrt(np.where(denom > 0, denom, 0.0))),
        "ece": _div(np.abs(_binned(W, cs.ece_bin, cs.ece, cs.bins)).sum(axis=1), total),
        "brier": _div(W @ cs.brier, total),
    }
    for j, name in enumerate(cs.names):
        for fig, values in per.items():
            figs[f"per_class.{name}.{fig}"] = values[:, j]
    return figs, C


def _resamples(cs: _Cases, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield stratified bootstrap weight matrices (chunk x n) of ``cs``'s cases, seeded."""
    return _weights(cs.y, resamples, seed)


def _weights(strata_of: np.ndarray, resamples: int, seed: int) -> Iterator[np.ndarray]:
    """Yield stratified bootstrap weight matrices (chunk x n), seeded.

    Each resample draws, within every stratum (each distinct value of ``strata_of``, the
    true label, in increasing order), as many cases as the stratum has, with replacement; a
    case's weight is how many times it was drawn. Stratifying by the true class keeps every
    class's support fixed, so per-class figures stay defined. Resamples come in chunks of
    about :data:`_CHUNK_ELEMENTS` weights (memory does not grow with their number); a
    stratum's draws are counted within the stratum (a window of its cases when they are
    consecutive, as in the canonical order), which keeps the counting in cache.
    """
    n = len(strata_of)
    rng = np.random.default_rng(seed)
    strata = [np.flatnonzero(strata_of == v) for v in np.unique(strata_of)]
    chunk = max(1, min(resamples, _CHUNK_ELEMENTS // n))
    done = 0
    while done < resamples:
        b = min(chunk, resamples - done)
        W = np.empty((b, n))  # the strata cover every case
        for s in strata:  # one draw per stratum per chunk, in this order: what the seed means
            m = len(s)
            draws = rng.integers(0, m, size=(b, m))
            counts = (np.stack([np.bincount(row, minlength=m) for row in draws])
                      if m >= _AUC_ELEMENTS else  # a few rows of many cases: row by row
                      np.bincount((np.arange(b)[:, None] * m + draws).ravel(),
                                  minlength=b * m).reshape(b, m))
            if s[-1] - s[0] + 1 == m:
                W[:, s[0]:s[-1] + 1] = counts
            else:
                W[:, s] = counts
        yield W
        done += b


def _intervals(strata_of: np.ndarray, figures: FigureFn, keys: Sequence[str], resamples: int,
               seed: int, level: float) -> dict[str, list[float] | None]:
    """Percentile intervals of ``figures`` (``W -> {key: (B,) values}``) over stratified
    resamples; {} when ``resamples`` is 0. The one bootstrap loop of every suite."""
    if not resamples:
        return {}
    samples: dict[str, list[np.ndarray]] = {key: [] for key in keys}
    for W in _weights(strata_of, int(resamples), seed):
        figs = figures(W)
        for key in keys:
            samples[key].append(figs[key])
    return {key: _percentile_ci(np.concatenate(samples[key]), level) for key in keys}


def _percentile_ci(values: np.ndarray, level: float) -> list[float] | None:
    v = values[np.isfinite(values)]
    if v.size == 0:
        return None
    lo, hi = np.quantile(v, [(1 - level) / 2, (1 + level) / 2])
    return [float(lo), float(hi)]


def _num(x: float) -> float | None:
    x = float(x)
    return None if np.isnan(x) else x


def _check_bootstrap_args(resamples: int, ci: float) -> None:
    if isinstance(resamples, bool) or not isinstance(resamples, (int, np.integer)) or resamples < 0:
        raise ValueError(f"the number of bootstrap resamples must be an integer >= 0, got {resamples!r}")
    if not 0 < ci < 1:
        raise ValueError(f"the confidence level must lie strictly between 0 and 1, got {ci!r}")


def _canonical_order(y: np.ndarray, *probs: np.ndarray, tiebreak: Sequence[np.ndarray] = ()) -> np.ndarray:
    """A case order that depends only on the cases' values, never on their input order.

    Sorting by (true class, then every probability column) before resampling makes the
    bootstrap a function of the *set* of cases: the same predictions in any row order
    give identical intervals (a leaderboard re-scoring a file gets the claimed numbers).
    Cases that tie on every key are identical, so their relative order cannot matter.
    ``tiebreak`` (other per-case values a suite scores, such as a regression column) orders
    cases that tie on the class and probabilities, and only those.
    """
    keys = [col for p in reversed(probs) for col in reversed(p.T)]
    return np.lexsort((*reversed(tiebreak), *keys, y))


# --------------------------------------------------------------------------- API
def figure_names(class_names: Sequence[str]) -> list[str]:
    """Every scalar figure path :func:`evaluate` reports (and bootstraps) for these classes."""
    return list(OVERALL_FIGURES) + [
        f"per_class.{c}.{f}" for c in class_names for f in PER_CLASS_FIGURES]


def evaluate(
    y_true: Sequence[int] | np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    ece_bins: int = ECE_BINS,
) -> dict:
    """All figures of a set of predictions, with stratified bootstrap confidence intervals.

    Parameters: ``y_true`` n class indices; ``y_prob`` n x k class probabilities (rows
    sum to 1); ``class_names`` k names (default ``class_<i>``; a task's
    metric suite passes its class names); ``bootstrap`` number of resamples (0: no intervals);
    ``seed`` of the resampling; ``ci`` the interval level; ``ece_bins`` equal-width bins.

    The predicted class is the argmax of ``y_prob`` (the first maximum on ties).
    Returns a JSON-able dict: ``n``, ``class_names``, the overall figures
    (``accuracy``, ``balanced_accuracy``, ``macro_f1``, ``macro_auc``, ``cohen_kappa``,
    ``mcc``, ``ece``, ``ece_bins``, ``ece_binning``, ``brier``), ``confusion_matrix``
    (rows true, columns predicted), ``per_class`` {name: {support, accuracy,
    sensitivity, specificity, ppv, npv, f1, auc, recall, precision}}, ``ci`` {figure
    path: [low, high] or None} (percentile intervals over the resamples where the figure
    is defined) and ``bootstrap`` {resamples, seed, level, stratified, method}. The result
    does not depend on the order of the cases (they are put in a canonical order first).
    Undefined figures are ``None``. Raises ``ValueError`` on malformed input.
    """
    y, p = _check_inputs(y_true, y_prob)
    _check_bootstrap_args(bootstrap, ci)
    _check_ece_bins(ece_bins)
    names = _class_names(p.shape[1], class_names)
    order = _canonical_order(y, p)
    cs = _prepare(y[order], p[order], names, int(ece_bins))

    point, C = _figures(np.ones((1, cs.n)), cs)
    out = _summary(names, y, point, C[0], int(ece_bins))
    out["ci"] = _intervals(cs.y, lambda W: _figures(W, cs)[0], figure_names(names),
                           bootstrap, seed, ci)
    out["bootstrap"] = bootstrap_record(bootstrap, seed, ci)
    return out


def _check_ece_bins(ece_bins: int) -> None:
    if isinstance(ece_bins, bool) or not isinstance(ece_bins, (int, np.integer)) or ece_bins < 1:
        raise ValueError(f"ece_bins must be a positive integer, got {ece_bins!r}")


def _summary(names: Sequence[str], y: np.ndarray, point: Mapping[str, np.ndarray],
             confusion: np.ndarray | None, ece_bins: int) -> dict:
    """:func:`evaluate`'s result up to ``per_class``, from the point figures (figure path ->
    (1,) array). A path missing from ``point`` is ``None``; so is a ``None`` confusion
    matrix (a suite that cannot compute the class figures reports them all as ``None``)."""
    def value(key: str) -> float | None:
        return _num(point[key][0]) if key in point else None

    out: dict = {"n": int(len(y)), "class_names": list(names)}
    for fig in OVERALL_FIGURES:
        out[fig] = value(fig)
    out["ece_bins"] = int(ece_bins)
    out["ece_binning"] = (f"{int(ece_bins)} equal-width bins (i/{int(ece_bins)}, "
                          f"(i+1)/{int(ece_bins)}] on the top-class probability")
    out["confusion_matrix"] = None if confusion is None else np.rint(confusion).astype(int).tolist()
    support = np.bincount(y[y >= 0], minlength=len(names))
    out["per_class"] = {
        name: {"support": int(support[j]),
               **{fig: value(f"per_class.{name}.{fig}") for fig in PER_CLASS_FIGURES}}
        for j, name in enumerate(names)
    }
    return out


def bootstrap_record(resamples: int, seed: int, level: float,
                     stratified: str = "by true class") -> dict:
    """The ``bootstrap`` entry of a result: how its intervals were drawn."""
    return {"resamples": int(resamples), "seed": int(seed), "level": float(level),
            "stratified": stratified, "method": "percentile"}


def gap(metrics_internal: Mapping, metrics_external: Mapping) -> dict:
    """Internal minus external for every scalar figure, overall and per class.

    Both arguments are :func:`evaluate` results over the same classes. A positive gap
    in accuracy-like figures means the model does worse on the external centre (for
    ``ece`` and ``brier``, lower is better, so a negative gap is the drop). ``None``
    where either side is undefined.
    """
    a_names, b_names = list(metrics_internal["per_class"]), list(metrics_external["per_class"])
    if a_names != b_names:
        raise ValueError(f"the two results have different classes: {a_names} vs {b_names}")

    def diff(a: object, b: object) -> float | None:
        return None if a is None or b is None else float(a) - float(b)

    out: dict = {fig: diff(metrics_internal.get(fig), metrics_external.get(fig))
                 for fig in OVERALL_FIGURES}
    out["per_class"] = {
        name: {fig: diff(metrics_internal["per_class"][name].get(fig),
                         metrics_external["per_class"][name].get(fig))
               for fig in PER_CLASS_FIGURES}
        for name in a_names
    }
    return out


def compare(
    y_true: Sequence[int] | np.ndarray,
    y_prob_a: np.ndarray,
    y_prob_b: np.ndarray,
    *,
    metrics: Sequence[str] = ("accuracy", "macro_f1", "macro_auc"),
    resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = 0.05,
    class_names: Sequence[str] | None = None,
) -> dict[str, dict]:
    """Paired bootstrap comparison of two models' predictions on the same cases.

    Both models are scored on the *same* resampled case sets (stratified by true class),
    so case difficulty cancels out of the difference. For each figure path in
    ``metrics`` (any key of :func:`figure_names`, e.g. ``"macro_f1"`` or
    ``"per_class.focal_increased.sensitivity"``) returns {metric, a, b, difference
    (a - b), ci [low, high], p_value, significant, resamples, seed, level}.

    The two-sided p-value tests "no difference" by the shifted bootstrap (Efron &
    Tibshirani 1993, sec. 16.4): the share of resampled differences at least as far
    from the observed one as the observed one is from zero, (1 + count) / (1 + B).
    ``significant`` is ``p_value < alpha``.
    """
    y, pa = _check_inputs(y_true, y_prob_a)
    _, pb = _check_inputs(y_true, y_prob_b)
    if pa.shape != pb.shape:
        raise ValueError(f"the two models' probabilities differ in shape: {pa.shape} vs {pb.shape}")
    _check_bootstrap_args(resamples, ci)
    if resamples < 1:
        raise ValueError("a paired bootstrap needs at least 1 resample")
    names = _class_names(pa.shape[1], class_names)
    valid = figure_names(names)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in valid:
            raise ValueError(f"unknown metric {m!r}; choose one of {', '.join(valid)}")
    order = _canonical_order(y, pa, pb)
    y, pa, pb = y[order], pa[order], pb[order]
    ca, cb = _prepare(y, pa, names, ECE_BINS), _prepare(y, pb, names, ECE_BINS)
    return _paired(y, lambda W: _figures(W, ca)[0], lambda W: _figures(W, cb)[0], metrics,
                   resamples=resamples, seed=seed, level=ci, alpha=alpha)


def _paired(strata_of: np.ndarray, figures_a: FigureFn, figures_b: FigureFn, metrics: Sequence[str],
            *, resamples: int, seed: int, level: float, alpha: float) -> dict[str, dict]:
    """The paired bootstrap of :func:`compare` over two figure functions (``W -> {key: (B,)}``)
    of the same cases, in canonical order: the one paired loop of every suite."""
    ones = np.ones((1, len(strata_of)))
    point_a, point_b = figures_a(ones), figures_b(ones)
    diffs: dict[str, list[np.ndarray]] = {m: [] for m in metrics}
    for W in _weights(strata_of, int(resamples), seed):
        fa, fb = figures_a(W), figures_b(W)
        for m in metrics:
            diffs[m].append(fa[m] - fb[m])
    out = {}
    for m in metrics:
        a, b = _num(point_a[m][0]), _num(point_b[m][0])
        d = np.concatenate(diffs[m])
        d = d[np.isfinite(d)]
        observed = None if a is None or b is None else a - b
        if observed is None or d.size == 0:
            p_value, interval = None, None
        else:
            extreme = int((np.abs(d - observed) >= abs(observed) - 1e-12).sum())
            p_value = (1 + extreme) / (1 + d.size)
            interval = _percentile_ci(d, level)
        out[m] = {
            "metric": m, "a": a, "b": b, "difference": observed, "ci": interval,
            "p_value": p_value, "significant": None if p_value is None else bool(p_value < alpha),
            "resamples": int(resamples), "valid_resamples": int(d.size), "seed": int(seed),
            "level": float(level),
        }
    return out


def paired_bootstrap(
    y_true: Sequence[int] | np.ndarray,
    y_prob_a: np.ndarray,
    y_prob_b: np.ndarray,
    *,
    metric: str = "macro_f1",
    resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = 0.05,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Paired bootstrap test of one figure between models a and b (see :func:`compare`).

    Returns {metric, a, b, difference (a - b), ci, p_value (two-sided), significant
    (p < alpha), resamples, valid_resamples, seed, level}.
    """
    return compare(y_true, y_prob_a, y_prob_b, metrics=[metric], resamples=resamples,
                   seed=seed, ci=ci, alpha=alpha, class_names=class_names)[metric]
