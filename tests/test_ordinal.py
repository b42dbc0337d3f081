"""The ordinal suite (residual-tissue): every figure against scikit-learn / scipy or a hand
calculation, labels of unknown grade, ties at the threshold, bootstrap, paired compare, and
the suites registry (the multiclass suite unchanged)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import spearmanr
from sklearn import metrics as skm

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation import metrics as M
from thyroid_bench.evaluation import ordinal as O
from thyroid_bench.evaluation.suites import compare_task, evaluate_task, get_suite, selection_scores
from thyroid_bench.tasks import get_task

TASK = get_task("residual-tissue")
NAMES = TASK.class_names
GRADE_KEYS = ("quadratic_kappa", "grade_mae", *M.OVERALL_FIGURES)


def _case(seed: int, n: int = 240, round_to: int | None = None, unknown: int = 0):
    """Grades with signal-carrying probabilities (rounded for ties), uptake truth with gaps and
    a noisy prediction with blanks; ``unknown`` present cases relabelled -1."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 1.3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    if round_to is not None:
        p = np.round(p, round_to)
        p[:, -1] = np.clip(1.0 - p[:, :-1].sum(axis=1), 0, 1)
        p /= p.sum(axis=1, keepdims=True)
    ut = np.round(np.where(y == 0, 0.0, 0.7 * y + rng.uniform(0, 0.7, n)), 1)
    up = np.round(np.clip(ut + rng.normal(0, 0.4, n), 0, None), 1)
    ut[rng.random(n) < 0.1] = np.nan
    up[rng.random(n) < 0.1] = np.nan
    if unknown:
        present = np.flatnonzero(y != 0)
        y[rng.choice(present, unknown, replace=False)] = -1
    return y, p, ut, up


def _evaluate(y, p, **kw):
    return O.evaluate_ordinal(y, p, NAMES, **kw)


@pytest.mark.parametrize("seed,round_to", [(0, None), (1, 1), (2, 2)])
def test_every_figure_equals_scikit_learn_and_scipy(seed, round_to):
    y, p, ut, up = _case(seed, round_to=round_to)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = _evaluate(y, p, bootstrap=0, uptake_true=ut, uptake_pred=up)
    present, score = (y != 0).astype(int), 1.0 - p[:, 0]
    called = (score >= 0.5).astype(int)
    pred = p.argmax(axis=1)
    assert m["detection_sensitivity"] == pytest.approx(skm.recall_score(present, called))
    assert m["detection_specificity"] == pytest.approx(skm.recall_score(present, called, pos_label=0))
    assert m["detection_ppv"] == pytest.approx(skm.precision_score(present, called))
    assert m["detection_npv"] == pytest.approx(skm.precision_score(present, called, pos_label=0))
    assert m["detection_balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(present, called))
    assert m["detection_f1"] == pytest.approx(skm.f1_score(present, called))
    assert m["detection_accuracy"] == pytest.approx(skm.accuracy_score(present, called))
    assert m["detection_auc"] == pytest.approx(skm.roc_auc_score(present, score))
    # the AUC of P(present) is the one-vs-rest AUC of class absent
    assert m["detection_auc"] == pytest.approx(skm.roc_auc_score(y == 0, p[:, 0]))
    assert m["detection_confusion_matrix"] == skm.confusion_matrix(present, called).tolist()
    assert m["detection_support"] == {"absent": int((y == 0).sum()), "present": int((y != 0).sum())}
    assert m["quadratic_kappa"] == pytest.approx(
        skm.cohen_kappa_score(y, pred, labels=range(4), weights="quadratic"))
    assert m["quadratic_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred, weights="quadratic"))
    assert m["grade_mae"] == pytest.approx(skm.mean_absolute_error(y, pred))
    both = np.isfinite(ut) & np.isfinite(up)
    assert m["uptake_n"] == int(both.sum())
    assert m["uptake_mae"] == pytest.approx(skm.mean_absolute_error(ut[both], up[both]))
    assert m["uptake_spearman"] == pytest.approx(spearmanr(ut[both], up[both]).statistic)
    assert m["grades_known"] is True
    # the grade figures are evaluate()'s, exactly
    plain = M.evaluate(y, p, NAMES, bootstrap=0)
    assert {k: m[k] for k in plain} == plain


def test_grade_figures_and_intervals_are_evaluates_even_with_uptake():
    y, p, ut, up = _case(3, n=150, round_to=1)  # many (grade, probabilities) ties
    m = _evaluate(y, p, bootstrap=200, seed=4, uptake_true=ut, uptake_pred=up)
    plain = M.evaluate(y, p, NAMES, bootstrap=200, seed=4)
    assert {k: m[k] for k in plain if k != "ci"} == {k: v for k, v in plain.items() if k != "ci"}
    assert {k: m["ci"][k] for k in plain["ci"]} == plain["ci"]
    assert set(m["ci"]) == set(O.ordinal_figure_names(NAMES))


def test_labels_of_unknown_grade_by_hand():
    # truth: absent, absent, present?, low, high, present?; P(absent) per case:
    y = np.array([0, 0, -1, 1, 3, -1])
    p_abs = np.array([0.9, 0.3, 0.2, 0.6, 0.1, 0.8])
    rest = (1 - p_abs)[:, None] * np.array([0.5, 0.3, 0.2])
    p = np.column_stack([p_abs, rest])
    m = _evaluate(y, p, bootstrap=100, seed=1)
    # called present (P(present) >= 0.5): cases 1, 2, 4 -> TN 1, FP 1, FN 2 (cases 3, 5), TP 2
    assert m["detection_confusion_matrix"] == [[1, 1], [2, 2]]
    assert m["detection_support"] == {"absent": 2, "present": 4}
    assert m["detection_sensitivity"] == pytest.approx(2 / 4)
    assert m["detection_specificity"] == pytest.approx(1 / 2)
    assert m["detection_ppv"] == pytest.approx(2 / 3)
    assert m["detection_npv"] == pytest.approx(1 / 3)
    assert m["detection_balanced_accuracy"] == pytest.approx(0.5)
    assert m["detection_f1"] == pytest.approx(2 * 2 / (2 * 2 + 1 + 2))
    assert m["detection_accuracy"] == pytest.approx(3 / 6)
    # positives' P(present) 0.8, 0.4, 0.9, 0.2 against negatives' 0.1, 0.7: 2 + 1 + 2 + 1 of 8
    # pairs score higher
    assert m["detection_auc"] == pytest.approx(6 / 8)
    assert m["grades_known"] is False and m["confusion_matrix"] is None
    for key in GRADE_KEYS:
        assert m[key] is None and m["ci"][key] is None
    assert all(v is None for c in m["per_class"].values() for k, v in c.items() if k != "support")
    assert [c["support"] for c in m["per_class"].values()] == [2, 1, 0, 1]
    lo, hi = m["ci"]["detection_sensitivity"]
    assert 0 <= lo <= hi <= 1
    assert m["bootstrap"]["stratified"].startswith("by true class (present cases of unknown grade")
    # uptake is still scored where grades are unknown, over the cases with both values
    ut, up = np.array([0.0, 0.1, 1.5, 0.6, np.nan, 2.2]), np.array([0.2, 0.0, 1.1, np.nan, 2.5, 1.9])
    mu = _evaluate(y, p, bootstrap=0, uptake_true=ut, uptake_pred=up)
    both = np.isfinite(ut) & np.isfinite(up)
    assert mu["uptake_n"] == 4 and mu["grades_known"] is False
    assert mu["uptake_mae"] == pytest.approx(skm.mean_absolute_error(ut[both], up[both]))
    assert mu["uptake_spearman"] == pytest.approx(spearmanr(ut[both], up[both]).statistic)


def test_ties_at_the_threshold_are_called_present():
    # P(absent) exactly 0.5 -> P(present) 0.5 -> present; a hair above -> absent
    p = np.array([[0.5, 0.5, 0.0, 0.0], [0.5, 0.2, 0.2, 0.1], [0.5000001, 0.4999999, 0, 0],
                  [0.2, 0.2, 0.3, 0.3]])
    y = np.array([0, 1, 2, 0])
    m = _evaluate(y, p, bootstrap=0)
    assert m["detection_confusion_matrix"] == [[0, 2], [1, 1]]
    assert m["detection_threshold"] == 0.5
    assert m["detection_specificity"] == 0.0 and m["detection_sensitivity"] == 0.5
    assert m["detection_npv"] == 0.0
    # the grade is the argmax (first maximum on ties): case 0 is graded absent, called present
    assert m["confusion_matrix"][0][0] == 1
    # another threshold, from the task's Detection settings
    assert _evaluate(y, p, bootstrap=0, threshold=0.6)["detection_confusion_matrix"] == [[1, 1], [2, 0]]


def test_undefined_figures_are_none_without_warnings():
    y = np.zeros(5, dtype=int)  # no present case: sensitivity, AUC undefined
    p = np.tile([0.8, 0.1, 0.05, 0.05], (5, 1))
    ut, up = np.full(5, 0.0), np.full(5, 1.0)  # constant: no rank correlation
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        m = _evaluate(y, p, bootstrap=20, uptake_true=ut, uptake_pred=up)
    assert m["detection_sensitivity"] is None and m["detection_auc"] is None
    assert m["detection_ppv"] is None and m["detection_f1"] is None
    assert m["detection_specificity"] == 1.0 and m["detection_balanced_accuracy"] == 1.0
    assert m["quadratic_kappa"] is None  # one grade on both sides: sklearn's NaN
    assert m["uptake_mae"] == 1.0 and m["uptake_spearman"] is None and m["uptake_n"] == 5
    assert m["ci"]["detection_auc"] is None and m["ci"]["uptake_spearman"] is None
    none = _evaluate(y, p, bootstrap=0, uptake_true=ut, uptake_pred=np.full(5, np.nan))
    assert none["uptake_mae"] is None and none["uptake_spearman"] is None and none["uptake_n"] == 0
    assert _evaluate(y, p, bootstrap=0)["uptake_n"] == 0


def test_intervals_reproducible_row_order_independent_and_around_the_estimate():
    y, p, ut, up = _case(5, n=160, round_to=1, unknown=6)
    # duplicated (label, probabilities) rows that differ only in uptake
    y, p = np.r_[y, y[:10]], np.vstack([p, p[:10]])
    ut, up = np.r_[ut, ut[:10] + 0.5], np.r_[up, up[:10][::-1]]
    a = _evaluate(y, p, bootstrap=150, seed=7, uptake_true=ut, uptake_pred=up)
    assert a == _evaluate(y, p, bootstrap=150, seed=7, uptake_true=ut, uptake_pred=up)
    perm = np.random.default_rng(0).permutation(len(y))
    assert _evaluate(y[perm], p[perm], bootstrap=150, seed=7, uptake_true=ut[perm],
                     uptake_pred=up[perm]) == a
    assert _evaluate(y, p, bootstrap=150, seed=8, uptake_true=ut, uptake_pred=up)["ci"] != a["ci"]
    for key in (*O.DETECTION_FIGURES, *O.UPTAKE_FIGURES):
        lo, hi = a["ci"][key]
        assert lo <= a[key] + 1e-12 and a[key] - 1e-12 <= hi, key


def test_resampled_figures_equal_scikit_learn_on_the_drawn_cases():
    y, p, ut, up = _case(6, n=90, round_to=1)
    oc = O._prepare(y, p, NAMES, 15, 0, 0.5, ut, up)
    W = next(M._weights(y, 4, seed=3))
    figs, _, _ = O._figures(W, oc)
    for b in range(4):
        idx = np.repeat(np.arange(len(y)), W[b].astype(int))
        yb, pb, utb, upb = y[idx], p[idx], ut[idx], up[idx]
        present, called = (yb != 0).astype(int), (1 - pb[:, 0] >= 0.5).astype(int)
        pred = pb.argmax(axis=1)
        both = np.isfinite(utb) & np.isfinite(upb)
        expected = {
            "detection_balanced_accuracy": skm.balanced_accuracy_score(present, called),
            "detection_auc": skm.roc_auc_score(present, 1 - pb[:, 0]),
            "detection_f1": skm.f1_score(present, called),
            "detection_sensitivity": skm.recall_score(present, called),
            "detection_specificity": skm.recall_score(present, called, pos_label=0),
            "detection_ppv": skm.precision_score(present, called),
            "detection_npv": skm.precision_score(present, called, pos_label=0),
            "detection_accuracy": skm.accuracy_score(present, called),
            "quadratic_kappa": skm.cohen_kappa_score(yb, pred, labels=range(4), weights="quadratic"),
            "grade_mae": skm.mean_absolute_error(yb, pred),
            "uptake_mae": skm.mean_absolute_error(utb[both], upb[both]),
            "uptake_spearman": spearmanr(utb[both], upb[both]).statistic,
        }
        for key, value in expected.items():
            assert figs[key][b] == pytest.approx(value), (key, b)


def test_paired_compare_on_detection_balanced_accuracy():
    y, p, _, _ = _case(7, n=200, unknown=10)
    same = O.compare_ordinal(y, p, p.copy(), class_names=NAMES, resamples=200)
    r = same["detection_balanced_accuracy"]
    assert r["difference"] == 0.0 and r["p_value"] == 1.0 and r["significant"] is False
    good = np.zeros_like(p)  # a model that always knows presence
    good[np.arange(len(y)), np.where(y == 0, 0, 2)] = 1.0
    res = get_suite("ordinal").compare(y, good, p, metrics=["detection_balanced_accuracy",
                                                            "quadratic_kappa"],
                                       resamples=300, seed=2, alpha=0.05, class_names=NAMES)
    win = res["detection_balanced_accuracy"]
    ma, mb = (_evaluate(y, q, bootstrap=0) for q in (good, p))
    assert win["a"] == ma["detection_balanced_accuracy"] == 1.0
    assert win["b"] == mb["detection_balanced_accuracy"]
    assert win["difference"] == pytest.approx(1.0 - mb["detection_balanced_accuracy"])
    assert win["significant"] is True and win["p_value"] < 0.05 and win["valid_resamples"] == 300
    assert res["quadratic_kappa"]["a"] is None and res["quadratic_kappa"]["p_value"] is None
    perm = np.random.default_rng(1).permutation(len(y))
    again = compare_task(TASK, y[perm], good[perm], p[perm], metrics=["detection_balanced_accuracy",
                                                                      "quadratic_kappa"],
                         resamples=300, seed=2)
    assert again == res
    with pytest.raises(ValueError, match="unknown metric 'macro_auroc'"):
        O.compare_ordinal(y, p, p, metrics=["macro_auroc"], class_names=NAMES)


def test_bad_input_is_rejected():
    y, p, ut, up = _case(8, n=10)
    with pytest.raises(ValueError, match="class index -2"):
        _evaluate(np.r_[y[:-1], -2], p, bootstrap=0)
    with pytest.raises(ValueError, match=r"predicted uptake row 3 is inf"):
        _evaluate(y, p, bootstrap=0, uptake_true=ut, uptake_pred=np.r_[up[:3], np.inf, up[4:]])
    with pytest.raises(ValueError, match=r"true uptake row 0 is -0.5"):
        _evaluate(y, p, bootstrap=0, uptake_true=np.r_[-0.5, ut[1:]], uptake_pred=up)
    with pytest.raises(ValueError, match="one value per case"):
        _evaluate(y, p, bootstrap=0, uptake_true=ut[:-1], uptake_pred=up)
    with pytest.raises(ValueError, match="threshold"):
        _evaluate(y, p, bootstrap=0, threshold=1.0)
    with pytest.raises(ValueError, match="class index -1"):  # -1 is not a class of evaluate()
        M.evaluate(np.r_[y[:-1], -1], p, NAMES, bootstrap=0)


def test_suites_registry_and_evaluate_task():
    multiclass, ordinal = get_suite("multiclass"), get_suite("ordinal")
    assert multiclass.figures == M.OVERALL_FIGURES and multiclass.compare is M.compare
    assert ordinal.figures[0] == TASK.main_score.metric == "detection_balanced_accuracy"
    assert set(TASK.shown_beside) <= set(ordinal.figures)
    y, p, ut, up = _case(9, n=80, unknown=4)
    m = evaluate_task(TASK, y, p, bootstrap=50, values={"uptake_pct": up},
                      true_values={"uptake_pct": ut})
    assert m == _evaluate(y, p, bootstrap=50, uptake_true=ut, uptake_pred=up)
    assert set(ordinal.figures) <= set(m) and set(ordinal.figure_names(NAMES)) == set(m["ci"])
    with pytest.raises(ThyroidBenchError, match="scores no value column"):
        evaluate_task(TASK, y, p, values={"volume": up})
    four = get_task("four-pattern")
    y4 = np.abs(y) % 4
    with pytest.raises(ThyroidBenchError, match="regression target is none"):
        evaluate_task(four, y4, p, values={"uptake_pct": up})
    # the multiclass suite is evaluate() itself: four-pattern's output is unchanged
    assert evaluate_task(four, y4, p, bootstrap=30, seed=1) == M.evaluate(
        y4, p, four.class_names, bootstrap=30, seed=1)


def test_selection_scores_on_detection_balanced_accuracy():
    y, p, _, _ = _case(10, n=60)
    s = selection_scores(TASK, y, p)
    present, called = y != 0, 1 - p[:, 0] >= 0.5
    assert s["detection_balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(present, called))
    assert s["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(axis=1)))
    y[np.flatnonzero(y != 0)[:3]] = -1  # grades unknown: grade figures count as 0
    s = selection_scores(TASK, y, p)
    assert s["accuracy"] == 0.0 and s["macro_f1"] == 0.0
    assert s["detection_balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(present, called))
