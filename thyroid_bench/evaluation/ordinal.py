"""The ``ordinal`` metric suite: a graded target with a derived detection reading and an
optional regression column (the ``residual-tissue`` task), over arrays.

Three groups of figures, all from the same per-case weights as
:mod:`thyroid_bench.evaluation.metrics` (weight 1 for the point estimate, draw counts for a
bootstrap resample), so every figure gets the same stratified bootstrap interval:

- **grade**: every figure :func:`~thyroid_bench.evaluation.metrics.evaluate` gives on the
  grades (same keys, same values, same intervals), plus ``quadratic_kappa`` (Cohen's kappa
  with quadratic weights (i - j)^2 over the full grade scale, as
  ``sklearn.metrics.cohen_kappa_score(y, pred, labels=range(k), weights="quadratic")``;
  without ``labels`` scikit-learn re-indexes the grades that occur, which differs only when
  a grade is neither true nor predicted) and ``grade_mae`` (mean |true grade - argmax
  grade|). Both follow from the weighted confusion matrix.
- **detection**: present truth is any label but the negative class (label -1, "present,
  grade unknown", counts as present); P(present) = 1 - P(negative), called present when
  P(present) >= the threshold (0.5). ``detection_accuracy, _sensitivity, _specificity,
  _ppv, _npv, _balanced_accuracy`` (mean of sensitivity and specificity over the sides
  present, as ``balanced_accuracy_score``), ``_f1`` (2TP / (2TP + FP + FN)) and ``_auc``
  (ROC AUC of P(present), which equals the one-vs-rest AUC of the negative class), the
  2 x 2 ``detection_confusion_matrix`` [[TN, FP], [FN, TP]] (rows: truth absent, present),
  ``detection_support`` {"absent", "present"} and ``detection_threshold``.
- **uptake** (when predicted): over the cases with both a true and a predicted value,
  ``uptake_mae`` (percentage points), ``uptake_spearman`` (rank correlation, ties at their
  mean rank, as ``scipy.stats.spearmanr``; a bootstrap resample ranks its drawn cases,
  repeats included) and ``uptake_n``.

When any label is -1 the grades are not known: every grade figure, ``confusion_matrix``
and the per-class figures are ``None`` and ``grades_known`` is False; detection and uptake
are still computed. Undefined figures are ``None``. Intervals are stratified by the true
label (-1 being a stratum of its own) and do not depend on the order of the cases.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from thyroid_bench.evaluation import metrics as M
from thyroid_bench.evaluation.metrics import ECE_BINS, OVERALL_FIGURES
from thyroid_bench.tasks import UNKNOWN_GRADE

__all__ = [
    "DETECTION_FIGURES",
    "GRADE_FIGURES",
    "UPTAKE_FIGURES",
    "ORDINAL_FIGURES",
    "ordinal_figure_names",
    "evaluate_ordinal",
    "compare_ordinal",
]

#: Detection figures, in display order (balanced accuracy first: the task's main score).
DETECTION_FIGURES: tuple[str, ...] = (
    "detection_balanced_accuracy", "detection_sensitivity", "detection_specificity",
    "detection_ppv", "detection_npv", "detection_f1", "detection_auc", "detection_accuracy",
)
#: Grade figures beyond :func:`~thyroid_bench.evaluation.metrics.evaluate`'s.
GRADE_FIGURES: tuple[str, ...] = ("quadratic_kappa", "grade_mae")
#: Regression figures of the predicted uptake.
UPTAKE_FIGURES: tuple[str, ...] = ("uptake_mae", "uptake_spearman")
#: The suite's overall scalar figures, in display order.
ORDINAL_FIGURES: tuple[str, ...] = (*DETECTION_FIGURES, *GRADE_FIGURES, *OVERALL_FIGURES,
                                    *UPTAKE_FIGURES)


def ordinal_figure_names(class_names: Sequence[str]) -> list[str]:
    """Every scalar figure path the suite reports (and bootstraps) for these classes."""
    return [*DETECTION_FIGURES, *GRADE_FIGURES, *UPTAKE_FIGURES, *M.figure_names(class_names)]


# --------------------------------------------------------------------------- inputs
def _check_uptake(values: object, n: int, what: str) -> np.ndarray | None:
    """float64 (n,), NaN where missing; ``ValueError`` on infinity or a negative value."""
    if values is None:
        return None
    v = np.asarray(values, dtype=np.float64)
    if v.shape != (n,):
        raise ValueError(f"{what} must hold one value per case ({n}), got shape {v.shape}")
    bad = np.isinf(v) | (v < 0)
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise ValueError(f"{what} row {i} is {float(v[i])!r}: expected a percentage >= 0, or NaN "
                         "where there is none")
    return v


def _check_detection(negative: int, threshold: float, k: int) -> None:
    if isinstance(negative, bool) or not isinstance(negative, (int, np.integer)) or not 0 <= negative < k:
        raise ValueError(f"negative must be a class index 0-{k - 1}, got {negative!r}")
    if not 0 < threshold < 1:
        raise ValueError(f"the detection threshold must lie strictly between 0 and 1, got {threshold!r}")


# --------------------------------------------------------------------------- core
@dataclass
class _Uptake:
    """The cases with a true and a predicted uptake, prepared for weighted MAE and ranks."""

    cases: np.ndarray      # (m,) indices into the cases
    abs_err: np.ndarray    # (m,) |true - predicted|
    ties_true: tuple       # (order, group starts, group of each sorted case), see _tie_groups
    ties_pred: tuple


@dataclass
class _Ordinal:
    """What the suite's figures need from one set of predictions, precomputed once."""

    names: tuple[str, ...]
    y: np.ndarray                 # (n,) labels, -1 for present of unknown grade
    grades: M._Cases | None       # evaluate()'s cases, None when a grade is unknown
    det_cell: np.ndarray          # (n,) the detection cell: 0 TN, 1 FP, 2 FN, 3 TP
    det_auc: tuple                # ROC preparation of P(present)
    uptake: _Uptake | None


def _tie_groups(values: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    order = np.argsort(values, kind="stable")
    v = values[order]
    new = np.r_[True, v[1:] != v[:-1]]
    return order, np.flatnonzero(new), np.cumsum(new) - 1


def _prepare_uptake(true: np.ndarray | None, pred: np.ndarray | None) -> _Uptake | None:
    if true is None or pred is None:
        return None
    cases = np.flatnonzero(np.isfinite(true) & np.isfinite(pred))
    if not cases.size:
        return None
    t, p = true[cases], pred[cases]
    return _Uptake(cases, np.abs(t - p), _tie_groups(t), _tie_groups(p))


def _prepare(y: np.ndarray, p: np.ndarray, names: tuple[str, ...], ece_bins: int, negative: int,
             threshold: float, uptake_true: np.ndarray | None,
             uptake_pred: np.ndarray | None) -> _Ordinal:
    n = len(y)
    grades = M._prepare(y, p, names, ece_bins) if (y >= 0).all() else None
    present = y != negative
    p_present = 1.0 - p[:, negative]
    called = p_present >= threshold
    det_cell = 2 * present.astype(np.int64) + called
    return _Ordinal(names, y, grades, det_cell, M._auc_prep(present, p_present),
                    _prepare_uptake(uptake_true, uptake_pred))


def _detection(W: np.ndarray, oc: _Ordinal) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Detection figures per weight row, and the weighted 2 x 2 cells (B, 4): TN, FP, FN, TP."""
    D = M._binned(W, oc.det_cell, None, 4)  # whole weights: exact
    tn, fp, fn, tp = D.T
    sens, spec = M._div(tp, tp + fn), M._div(tn, tn + fp)
    return {
        "detection_balanced_accuracy": M._nanmean(np.stack([sens, spec], axis=-1)),
        "detection_sensitivity": sens,
        "detection_specificity": spec,
        "detection_ppv": M._div(tp, tp + fp),
        "detection_npv": M._div(tn, tn + fn),
        "detection_f1": M._div(2 * tp, 2 * tp + fp + fn),
        "detection_auc": M._auc_from(W, [oc.det_auc])[:, 0],
        "detection_accuracy": M._div(tp + tn, D.sum(axis=1)),
    }, D


def _grade_extra(C: np.ndarray) -> dict[str, np.ndarray]:
    """Quadratic-weighted kappa and grade MAE from weighted confusion matrices (B, k, k)."""
    k = C.shape[1]
    i, j = np.indices((k, k))
    total = C.sum(axis=(1, 2))
    row, col = C.sum(axis=2), C.sum(axis=1)
    sq = (i - j) ** 2
    expected = M._div(np.einsum("bi,bj,ij->b", row, col, sq), total)
    observed = (C * sq).sum(axis=(1, 2))
    return {"quadratic_kappa": 1.0 - M._div(observed, expected),
            "grade_mae": M._div((C * np.abs(i - j)).sum(axis=(1, 2)), total)}


def _ranks(W: np.ndarray, ties: tuple) -> tuple[np.ndarray, np.ndarray]:
    """Each case's mean rank in the weighted sample (a case drawn w times fills w places),
    and how many distinct values each row draws."""
    order, starts, group = ties
    gw = np.add.reduceat(np.take(W, order, axis=1), starts, axis=1)
    mean_rank = np.cumsum(gw, axis=1) - gw + (gw + 1) / 2
    ranks = np.empty_like(W)
    ranks[:, order] = np.take(mean_rank, group, axis=1)
    return ranks, (gw > 0).sum(axis=1)


def _uptake(W: np.ndarray, up: _Uptake) -> dict[str, np.ndarray]:
    """Uptake MAE and Spearman's rho per weight row (weighted Pearson of the mean ranks)."""
    Wu = W[:, up.cases]
    total = Wu.sum(axis=1)
    rt, distinct_t = _ranks(Wu, up.ties_true)
    rp, distinct_p = _ranks(Wu, up.ties_pred)
    dt = rt - M._div((Wu * rt).sum(axis=1), total)[:, None]
    dp = rp - M._div((Wu * rp).sum(axis=1), total)[:, None]
    var = (Wu * dt * dt).sum(axis=1) * (Wu * dp * dp).sum(axis=1)
    defined = (distinct_t > 1) & (distinct_p > 1)  # a constant side has no rank correlation
    rho = M._div((Wu * dt * dp).sum(axis=1), np.sqrt(np.where(defined, var, 0.0)))
    return {"uptake_mae": M._div(Wu @ up.abs_err, total), "uptake_spearman": np.clip(rho, -1, 1)}


def _figures(W: np.ndarray, oc: _Ordinal) -> tuple[dict[str, np.ndarray], np.ndarray | None, np.ndarray]:
    """Every figure path of the suite per weight row (NaN where undefined or not computable),
    the weighted grade confusion (None when grades are unknown) and the detection cells."""
    nan = np.full(W.shape[0], np.nan)
    figs = {key: nan for key in ordinal_figure_names(oc.names)}
    det, D = _detection(W, oc)
    figs.update(det)
    C = None
    if oc.grades is not None:
        grade, C = M._figures(W, oc.grades)
        figs.update(grade)
        figs.update(_grade_extra(C))
    if oc.uptake is not None:
        figs.update(_uptake(W, oc.uptake))
    return figs, C, D


# --------------------------------------------------------------------------- API
def _inputs(y_true: object, y_prob: object, class_names: Sequence[str] | None, ece_bins: int,
            negative: int, threshold: float, uptake_true: object, uptake_pred: object) -> _Ordinal:
    """Validated inputs in canonical order, prepared."""
    y, p = M._check_inputs(y_true, y_prob, unknown=UNKNOWN_GRADE)
    M._check_ece_bins(ece_bins)
    _check_detection(negative, threshold, p.shape[1])
    names = M._class_names(p.shape[1], class_names)
    ut = _check_uptake(uptake_true, len(y), "the true uptake")
    up = _check_uptake(uptake_pred, len(y), "the predicted uptake")
    order = M._canonical_order(y, p, tiebreak=[v for v in (ut, up) if v is not None])
    return _prepare(y[order], p[order], names, int(ece_bins), int(negative), float(threshold),
                    _take(ut, order), _take(up, order))


def _take(values: np.ndarray | None, order: np.ndarray) -> np.ndarray | None:
    return None if values is None else values[order]


def evaluate_ordinal(
    y_true: Sequence[int] | np.ndarray,
    y_prob: np.ndarray,
    class_names: Sequence[str] | None = None,
    *,
    bootstrap: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    ece_bins: int = ECE_BINS,
    negative: int = 0,
    threshold: float = 0.5,
    uptake_true: Sequence[float] | np.ndarray | None = None,
    uptake_pred: Sequence[float] | np.ndarray | None = None,
) -> dict:
    """All figures of graded predictions, with stratified bootstrap confidence intervals.

    ``y_true``: n grades 0..k-1, or -1 (present, grade unknown); ``y_prob``: n x k grade
    probabilities; ``negative``: the class meaning absent; ``threshold``: P(present) at or
    above which a case is called present; ``uptake_true``/``uptake_pred``: the regression
    column (NaN where not measured / not predicted). Returns :func:`metrics.evaluate
    <thyroid_bench.evaluation.metrics.evaluate>`'s dict on the grades plus the flat keys
    ``detection_*`` (see the module), ``quadratic_kappa``, ``grade_mae``, ``uptake_mae``,
    ``uptake_spearman``, ``uptake_n`` and ``grades_known``; ``ci`` holds an interval (or
    None) for every scalar figure under the same names. Raises ``ValueError`` on bad input.
    """
    M._check_bootstrap_args(bootstrap, ci)
    oc = _inputs(y_true, y_prob, class_names, ece_bins, negative, threshold, uptake_true, uptake_pred)
    point, C, D = _figures(np.ones((1, len(oc.y))), oc)
    out = M._summary(oc.names, oc.y, point if oc.grades is not None else {},
                     None if C is None else C[0], int(ece_bins))
    tn, fp, fn, tp = np.rint(D[0]).astype(int).tolist()
    out.update({key: M._num(point[key][0]) for key in DETECTION_FIGURES})
    out["detection_confusion_matrix"] = [[tn, fp], [fn, tp]]
    out["detection_threshold"] = float(threshold)
    out["detection_support"] = {"absent": tn + fp, "present": fn + tp}
    out.update({key: M._num(point[key][0]) for key in (*GRADE_FIGURES, *UPTAKE_FIGURES)})
    out["uptake_n"] = 0 if oc.uptake is None else int(oc.uptake.cases.size)
    out["grades_known"] = oc.grades is not None
    keys = ordinal_figure_names(oc.names)
    intervals = M._intervals(oc.y, lambda W: _figures(W, oc)[0], keys, bootstrap, seed, ci)
    out["ci"] = {key: intervals[key] for key in keys} if intervals else {}
    out["bootstrap"] = M.bootstrap_record(bootstrap, seed, ci, _stratified(oc))
    return out


def _stratified(oc: _Ordinal) -> str:
    if oc.grades is not None:
        return "by true class"
    return "by true class (present cases of unknown grade as one stratum)"


def compare_ordinal(
    y_true: Sequence[int] | np.ndarray,
    y_prob_a: np.ndarray,
    y_prob_b: np.ndarray,
    *,
    metrics: Sequence[str] = ("detection_balanced_accuracy",),
    resamples: int = 1000,
    seed: int = 0,
    ci: float = 0.95,
    alpha: float = 0.05,
    class_names: Sequence[str] | None = None,
    negative: int = 0,
    threshold: float = 0.5,
    uptake_true: Sequence[float] | np.ndarray | None = None,
    uptake_a: Sequence[float] | np.ndarray | None = None,
    uptake_b: Sequence[float] | np.ndarray | None = None,
) -> dict[str, dict]:
    """Paired bootstrap comparison of two models on the same cases, for any figure path of
    :func:`ordinal_figure_names`; the return shape and test of
    :func:`metrics.compare <thyroid_bench.evaluation.metrics.compare>`.

    A figure undefined on the data (a grade figure with labels of unknown grade, uptake when
    a model predicts none) gives ``None`` for its side, difference and p-value.
    """
    M._check_bootstrap_args(resamples, ci)
    if resamples < 1:
        raise ValueError("a paired bootstrap needs at least 1 resample")
    y, pa = M._check_inputs(y_true, y_prob_a, unknown=UNKNOWN_GRADE)
    _, pb = M._check_inputs(y_true, y_prob_b, unknown=UNKNOWN_GRADE)
    if pa.shape != pb.shape:
        raise ValueError(f"the two models' probabilities differ in shape: {pa.shape} vs {pb.shape}")
    _check_detection(negative, threshold, pa.shape[1])
    names = M._class_names(pa.shape[1], class_names)
    valid = ordinal_figure_names(names)
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    for m in metrics:
        if m not in valid:
            raise ValueError(f"unknown metric {m!r}; choose one of {', '.join(valid)}")
    ut, ua, ub = (_check_uptake(v, len(y), what) for v, what in (
        (uptake_true, "the true uptake"), (uptake_a, "model a's uptake"), (uptake_b, "model b's uptake")))
    # one canonical order for both sides, from the pair
    order = M._canonical_order(y, pa, pb, tiebreak=[v for v in (ut, ua, ub) if v is not None])
    y, ut = y[order], _take(ut, order)
    a, b = (_prepare(y, p[order], names, ECE_BINS, int(negative), float(threshold), ut,
                     _take(u, order)) for p, u in ((pa, ua), (pb, ub)))
    return M._paired(y, lambda W: _figures(W, a)[0], lambda W: _figures(W, b)[0], metrics,
                     resamples=resamples, seed=seed, level=ci, alpha=alpha)
