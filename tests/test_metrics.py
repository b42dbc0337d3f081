"""Metrics: every figure against scikit-learn or a hand calculation, degenerate cases, bootstrap."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from sklearn import metrics as skm

from thyroid_bench.evaluation import metrics as M
from thyroid_bench.evaluation.metrics import _figures, _prepare, _resamples, figure_names, gap
from thyroid_bench.tasks import get_task

CLASS_NAMES = get_task("four-pattern").class_names


def _names(p, class_names):
    """The four-pattern names for four columns (as the task's suite passes them), else the default."""
    if class_names is None and np.asarray(p).ndim == 2 and np.asarray(p).shape[1] == len(CLASS_NAMES):
        return CLASS_NAMES
    return class_names


def evaluate(y, p, class_names=None, **kw):
    return M.evaluate(y, p, _names(p, class_names), **kw)


def compare(y, p, q, class_names=None, **kw):
    return M.compare(y, p, q, class_names=_names(p, class_names), **kw)


def paired_bootstrap(y, p, q, class_names=None, **kw):
    return M.paired_bootstrap(y, p, q, class_names=_names(p, class_names), **kw)


def test_default_class_names_are_generic():
    p = np.full((2, 3), 1 / 3)
    assert M.evaluate(np.array([0, 2]), p, bootstrap=0)["class_names"] == ["class_0", "class_1", "class_2"]


def _random_case(seed: int, n: int = 300, k: int = 4, signal: float = 1.2, round_to: int | None = None):
    """Random labels with probabilities that carry some signal (optionally rounded, for ties)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, k, n)
    logits = rng.normal(size=(n, k))
    logits[np.arange(n), y] += signal
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    if round_to is not None:  # coarse probabilities: many tied scores
        p = np.round(p, round_to)
        p[:, -1] = 1.0 - p[:, :-1].sum(axis=1)
        p = np.clip(p, 0, 1)
        p /= p.sum(axis=1, keepdims=True)
    return y, p


def _one_vs_rest(y, pred, c):
    return (y == c).astype(int), (pred == c).astype(int)


@pytest.mark.parametrize("seed,round_to", [(0, None), (1, None), (2, 1), (3, 2), (4, None)])
def test_every_figure_matches_scikit_learn(seed, round_to):
    y, p = _random_case(seed, n=250 + 37 * seed, round_to=round_to)
    pred = p.argmax(axis=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate(y, p, bootstrap=0)

    assert r["n"] == len(y)
    assert r["class_names"] == list(CLASS_NAMES)
    assert r["confusion_matrix"] == skm.confusion_matrix(y, pred, labels=range(4)).tolist()
    assert r["accuracy"] == pytest.approx(skm.accuracy_score(y, pred), abs=1e-12)
    assert r["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
    assert r["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    assert r["macro_auc"] == pytest.approx(
        skm.roc_auc_score(y, p, multi_class="ovr", average="macro", labels=range(4)), abs=1e-12)
    assert r["cohen_kappa"] == pytest.approx(skm.cohen_kappa_score(y, pred), abs=1e-12)
    assert r["mcc"] == pytest.approx(skm.matthews_corrcoef(y, pred), abs=1e-12)
    assert r["brier"] == pytest.approx(skm.brier_score_loss(y, p, labels=range(4)), abs=1e-12)

    prec, rec, f1, support = skm.precision_recall_fscore_support(y, pred, labels=range(4))
    for c, name in enumerate(CLASS_NAMES):
        pc = r["per_class"][name]
        t, q = _one_vs_rest(y, pred, c)
        assert pc["support"] == support[c]
        assert pc["sensitivity"] == pc["recall"] == pytest.approx(rec[c], abs=1e-12)
        assert pc["ppv"] == pc["precision"] == pytest.approx(prec[c], abs=1e-12)
        assert pc["f1"] == pytest.approx(f1[c], abs=1e-12)
        assert pc["accuracy"] == pytest.approx(skm.accuracy_score(t, q), abs=1e-12)
        # specificity is the recall of "not c", NPV the precision of "not c"
        assert pc["specificity"] == pytest.approx(skm.recall_score(1 - t, 1 - q), abs=1e-12)
        assert pc["npv"] == pytest.approx(skm.precision_score(1 - t, 1 - q), abs=1e-12)
        assert pc["auc"] == pytest.approx(skm.roc_auc_score(t, p[:, c]), abs=1e-12)


def test_specificity_and_npv_by_hand():
    # rows = true class, columns = predicted class
    cm = np.array([[5, 1, 0, 2],
                   [1, 6, 0, 0],
                   [0, 1, 3, 1],
                   [2, 0, 0, 4]])
    y, pred = [], []
    for t in range(4):
        for q in range(4):
            y += [t] * cm[t, q]
            pred += [q] * cm[t, q]
    p = np.full((len(y), 4), 0.1)
    p[np.arange(len(y)), pred] = 0.7
    r = evaluate(np.array(y), p, bootstrap=0)
    assert r["confusion_matrix"] == cm.tolist()
    assert r["n"] == 26
    # class 0: TP 5, FN 3 (row rest), FP 3 (column rest), TN 26 - 5 - 3 - 3 = 15
    c0 = r["per_class"]["diffusely_increased"]
    assert c0["specificity"] == pytest.approx(15 / 18)
    assert c0["npv"] == pytest.approx(15 / 18)
    assert c0["accuracy"] == pytest.approx(20 / 26)
    # class 2: TP 3, FN 2, FP 0, TN 21 -> specificity 21/21, NPV 21/23, PPV 3/3
    c2 = r["per_class"]["focal_increased"]
    assert c2["specificity"] == pytest.approx(1.0)
    assert c2["npv"] == pytest.approx(21 / 23)
    assert c2["ppv"] == pytest.approx(1.0)
    assert c2["f1"] == pytest.approx(2 * 1.0 * 0.6 / 1.6)
    # class 3: TP 4, FN 2, FP 3, TN 17
    c3 = r["per_class"]["heterogeneous_uptake"]
    assert c3["specificity"] == pytest.approx(17 / 20)
    assert c3["npv"] == pytest.approx(17 / 19)
    assert r["accuracy"] == pytest.approx(18 / 26)


def test_ece_by_hand():
    # 4 cases, 2 classes, 15 bins on the top-class probability:
    # conf 0.95 correct, 0.95 wrong -> bin (14/15, 1]: |1/2 - 0.95| * 2/4 = 0.225
    # conf 0.6 correct, 0.55 correct -> bin (8/15, 9/15]: |1 - 0.575| * 2/4 = 0.2125
    y = np.array([0, 1, 0, 1])
    p = np.array([[0.95, 0.05], [0.95, 0.05], [0.6, 0.4], [0.45, 0.55]])
    r = evaluate(y, p, bootstrap=0)
    assert r["ece_bins"] == 15
    assert r["ece"] == pytest.approx(0.225 + 0.2125)
    assert r["class_names"] == ["class_0", "class_1"]
    # Brier: ((0.05^2)*2 + (0.95^2)*2 + (0.4^2)*2 + (0.45^2)*2) / 4
    assert r["brier"] == pytest.approx((2 * 0.05**2 + 2 * 0.95**2 + 2 * 0.4**2 + 2 * 0.45**2) / 4)


def test_ties_predict_the_first_maximum():
    p = np.array([[0.4, 0.4, 0.1, 0.1], [0.25, 0.25, 0.25, 0.25]])
    r = evaluate(np.array([1, 2]), p, bootstrap=0)
    assert r["confusion_matrix"][1][0] == 1  # true 1, predicted 0
    assert r["confusion_matrix"][2][0] == 1  # true 2, predicted 0


def test_absent_class_gives_none_without_warnings():
    y, p = _random_case(5, n=200)
    keep = y != 2
    y, p = y[keep], p[keep]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate(y, p, bootstrap=50)
    c2 = r["per_class"]["focal_increased"]
    assert c2["support"] == 0
    assert c2["sensitivity"] is None and c2["recall"] is None and c2["auc"] is None
    assert c2["specificity"] is not None
    assert r["ci"]["per_class.focal_increased.sensitivity"] is None
    present = [c for c in range(4) if c != 2]
    pred = p.argmax(axis=1)
    # macro AUC over the classes present; balanced accuracy over the classes present
    aucs = [skm.roc_auc_score((y == c).astype(int), p[:, c]) for c in present]
    assert r["macro_auc"] == pytest.approx(np.mean(aucs), abs=1e-12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn warns here; we must not
        assert r["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, pred), abs=1e-12)
        assert r["macro_f1"] == pytest.approx(skm.f1_score(y, pred, average="macro"), abs=1e-12)
    json.dumps(r, allow_nan=False)


def test_never_predicted_class_has_no_ppv():
    y = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pred = np.array([0, 0, 1, 1, 1, 0, 3, 3])  # class 2 never predicted
    p = np.full((8, 4), 0.1)
    p[np.arange(8), pred] = 0.7
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate(y, p, bootstrap=20)
    c2 = r["per_class"]["focal_increased"]
    assert c2["ppv"] is None and c2["precision"] is None
    assert c2["sensitivity"] == 0.0
    assert c2["f1"] == 0.0  # 2TP / (2TP + FP + FN) = 0 / 2
    assert c2["npv"] == pytest.approx(6 / 8)
    assert r["ci"]["per_class.focal_increased.ppv"] is None


def test_all_one_class():
    y = np.zeros(10, dtype=int)
    p = np.tile([0.7, 0.1, 0.1, 0.1], (10, 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = evaluate(y, p, bootstrap=30)
    assert r["accuracy"] == 1.0
    assert r["cohen_kappa"] is None and r["mcc"] is None and r["macro_auc"] is None
    c0 = r["per_class"]["diffusely_increased"]
    assert c0["sensitivity"] == 1.0 and c0["ppv"] == 1.0
    assert c0["specificity"] is None and c0["npv"] is None and c0["auc"] is None
    for name in CLASS_NAMES[1:]:
        assert r["per_class"][name]["f1"] is None  # neither true nor predicted
    assert r["macro_f1"] == 1.0
    assert r["ci"]["accuracy"] == [1.0, 1.0]
    json.dumps(r, allow_nan=False)


def test_bootstrap_reproducible_and_contains_point():
    y, p = _random_case(7, n=400)
    a = evaluate(y, p, bootstrap=200, seed=3)
    b = evaluate(y, p, bootstrap=200, seed=3)
    c = evaluate(y, p, bootstrap=200, seed=4)
    assert a == b
    assert a["ci"] != c["ci"]
    assert a["bootstrap"]["resamples"] == 200 and a["bootstrap"]["seed"] == 3
    assert set(a["ci"]) == set(figure_names(CLASS_NAMES))
    for key in ("accuracy", "macro_f1", "macro_auc", "balanced_accuracy",
                "per_class.focal_increased.sensitivity", "per_class.diffusely_decreased.npv"):
        lo, hi = a["ci"][key]
        point = a[key] if "." not in key else a["per_class"][key.split(".")[1]][key.split(".")[2]]
        assert lo <= point <= hi
        assert hi - lo > 0
    # binomial sanity check: the accuracy interval is about +-1.96 sd wide
    sd = np.sqrt(a["accuracy"] * (1 - a["accuracy"]) / len(y))
    width = a["ci"]["accuracy"][1] - a["ci"]["accuracy"][0]
    assert 2.5 * sd < width < 5.5 * sd
    narrower = evaluate(y, p, bootstrap=200, seed=3, ci=0.5)
    assert narrower["ci"]["accuracy"][1] - narrower["ci"]["accuracy"][0] < width


def test_result_does_not_depend_on_case_order():
    y, p = _random_case(11, n=300, round_to=2)
    perm = np.random.default_rng(0).permutation(len(y))
    assert evaluate(y[perm], p[perm], bootstrap=100) == evaluate(y, p, bootstrap=100)
    q = np.roll(p, 1, axis=1)
    a = paired_bootstrap(y, p, q, resamples=100)
    assert paired_bootstrap(y[perm], p[perm], q[perm], resamples=100) == a


def test_resampled_figures_equal_scikit_learn_on_the_drawn_cases():
    """The weighted (vectorised) figures of a resample equal sklearn on the repeated cases."""
    y, p = _random_case(8, n=120, round_to=2)
    cs = _prepare(y, p, CLASS_NAMES, 15)
    W = next(_resamples(cs, 5, seed=0))
    figs, C = _figures(W, cs)
    for b in range(W.shape[0]):
        idx = np.repeat(np.arange(len(y)), W[b].astype(int))
        yb, pb = y[idx], p[idx]
        assert np.bincount(yb, minlength=4).tolist() == np.bincount(y, minlength=4).tolist()
        predb = pb.argmax(axis=1)
        assert C[b].tolist() == skm.confusion_matrix(yb, predb, labels=range(4)).tolist()
        assert figs["macro_auc"][b] == pytest.approx(skm.roc_auc_score(yb, pb, multi_class="ovr"))
        assert figs["macro_f1"][b] == pytest.approx(skm.f1_score(yb, predb, average="macro"))
        assert figs["mcc"][b] == pytest.approx(skm.matthews_corrcoef(yb, predb))
        assert figs["per_class.focal_increased.auc"][b] == pytest.approx(
            skm.roc_auc_score((yb == 2).astype(int), pb[:, 2]))
        assert figs["ece"][b] == pytest.approx(evaluate(yb, pb, bootstrap=0)["ece"])


@pytest.mark.parametrize("y,p,match", [
    ([0, 1], np.array([0.5, 0.5]), "2-D"),
    ([0, 1, 1], np.full((2, 4), 0.25), "3 cases but y_prob has 2"),
    ([0, 1], np.array([[0.5, 0.5, np.nan, 0.0], [0.25] * 4]), "row 0 holds NaN"),
    ([0, 1], np.array([[1.2, -0.2, 0, 0], [0.25] * 4]), "row 0 has a value outside"),
    ([0, 1], np.array([[0.25] * 4, [0.3] * 4]), "row 1 sums to"),
    ([0, 4], np.full((2, 4), 0.25), "class index 4"),
    ([0, -1], np.full((2, 4), 0.25), "class index -1"),
    ([0.5, 1], np.full((2, 4), 0.25), "integer"),
    ([[0], [1]], np.full((2, 4), 0.25), "1-D"),
    ([], np.zeros((0, 4)), "no rows"),
])
def test_bad_input_is_rejected(y, p, match):
    with pytest.raises(ValueError, match=match):
        evaluate(np.array(y), p, bootstrap=0)


def test_bad_arguments_are_rejected():
    y, p = _random_case(0, n=20)
    with pytest.raises(ValueError, match="3 names"):
        evaluate(y, p, ["a", "b", "c"], bootstrap=0)
    with pytest.raises(ValueError, match="resamples"):
        evaluate(y, p, bootstrap=-1)
    with pytest.raises(ValueError, match="confidence level"):
        evaluate(y, p, ci=95)


def test_gap_is_internal_minus_external():
    y1, p1 = _random_case(1, n=200, signal=2.0)
    y2, p2 = _random_case(2, n=200, signal=0.5)
    a, b = evaluate(y1, p1, bootstrap=0), evaluate(y2, p2, bootstrap=0)
    g = gap(a, b)
    assert g["accuracy"] == pytest.approx(a["accuracy"] - b["accuracy"])
    assert g["accuracy"] > 0
    assert g["per_class"]["focal_increased"]["auc"] == pytest.approx(
        a["per_class"]["focal_increased"]["auc"] - b["per_class"]["focal_increased"]["auc"])
    b["per_class"]["focal_increased"]["ppv"] = None
    assert gap(a, b)["per_class"]["focal_increased"]["ppv"] is None


def test_paired_bootstrap_same_model_and_clear_winner():
    y, p = _random_case(9, n=300, signal=0.8)
    same = paired_bootstrap(y, p, p.copy(), metric="macro_f1", resamples=200)
    # same resampled cases for both models: every resampled difference is exactly zero
    assert same["difference"] == 0.0 and same["ci"] == [0.0, 0.0]
    assert same["p_value"] == 1.0 and same["significant"] is False

    good = np.full_like(p, 0.02)
    good[np.arange(len(y)), y] = 0.94
    res = paired_bootstrap(y, good, p, metric="accuracy", resamples=200, seed=1)
    assert res["difference"] == pytest.approx(1.0 - skm.accuracy_score(y, p.argmax(1)))
    assert res["ci"][0] > 0 and res["significant"] is True and res["p_value"] < 0.01
    assert res == paired_bootstrap(y, good, p, metric="accuracy", resamples=200, seed=1)

    several = compare(y, good, p, metrics=["macro_auc", "per_class.focal_increased.f1"], resamples=50)
    assert set(several) == {"macro_auc", "per_class.focal_increased.f1"}
    assert several["macro_auc"]["a"] == pytest.approx(1.0)
    with pytest.raises(ValueError, match="unknown metric"):
        paired_bootstrap(y, good, p, metric="auroc")


def test_paired_bootstrap_small_difference_is_not_significant():
    y, p = _random_case(10, n=200, signal=1.0)
    rng = np.random.default_rng(0)
    q = p + rng.uniform(0, 0.02, p.shape)  # a near-copy: nearly the same predictions
    q /= q.sum(axis=1, keepdims=True)
    res = paired_bootstrap(y, p, q, metric="macro_auc", resamples=300)
    assert res["ci"][0] <= res["difference"] <= res["ci"][1]
    assert res["significant"] is False
