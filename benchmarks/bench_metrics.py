"""Speed of ``evaluate()``: 10,000 cases, 1,000 stratified bootstrap resamples, in < 2 s.

Side by side with a plain scikit-learn baseline that computes the same figures on the
same resamples, one resample at a time, with sklearn metric calls. The baseline runs
``BASELINE_RESAMPLES`` resamples (a full 1,000 would take tens of seconds) and its time
is scaled linearly to 1,000; the loop's cost is linear in the number of resamples.

Run (from the repository root; this file name is not collected by default)::

    .venv/bin/pytest benchmarks/bench_metrics.py --benchmark-columns=min,mean,max,rounds -s

The ratio and the scaled baseline are printed and stored in ``extra_info``.
"""

from __future__ import annotations

import numpy as np
import pytest
from sklearn import metrics as skm

from _clock import Clock  # benchmarks/_clock.py, beside this file
from _cohort import cohort as make_cohort  # benchmarks/_cohort.py, beside this file
from thyroid_bench.evaluation.metrics import _canonical_order, _figures, _prepare, _resamples, evaluate
from thyroid_bench.tasks import get_task

CLASS_NAMES = get_task("four-pattern").class_names

N_CASES = 10_000
RESAMPLES = 1_000
BASELINE_RESAMPLES = 50
TARGET_S = 2.0
_TIMES: dict[str, float] = {}


@pytest.fixture(scope="module")
def cohort():
    """10,000 cases with the paper's internal class mix and informative probabilities."""
    return make_cohort(N_CASES)


def _sklearn_figures(y: np.ndarray, p: np.ndarray) -> dict[str, float]:
    """The figures evaluate() bootstraps, computed the plain way with scikit-learn."""
    pred = p.argmax(axis=1)
    labels = list(range(4))
    cm = skm.confusion_matrix(y, pred, labels=labels)
    prec, rec, f1, _ = skm.precision_recall_fscore_support(y, pred, labels=labels, zero_division=np.nan)
    aucs = [skm.roc_auc_score((y == c).astype(int), p[:, c]) for c in labels]
    out = {
        "accuracy": skm.accuracy_score(y, pred),
        "balanced_accuracy": skm.balanced_accuracy_score(y, pred),
        "macro_f1": skm.f1_score(y, pred, average="macro"),
        "macro_auc": skm.roc_auc_score(y, p, multi_class="ovr", labels=labels),
        "cohen_kappa": skm.cohen_kappa_score(y, pred),
        "mcc": skm.matthews_corrcoef(y, pred),
        "brier": skm.brier_score_loss(y, p, labels=labels),
    }
    conf = p.max(axis=1)  # ECE, 15 bins (i/15, (i+1)/15]: no scikit-learn function for it
    bins = np.clip(np.ceil(conf * 15).astype(int) - 1, 0, 14)
    gaps = np.bincount(bins, weights=(pred == y) - conf, minlength=15)
    out["ece"] = np.abs(gaps).sum() / len(y)
    n = cm.sum()
    for c, name in enumerate(CLASS_NAMES):
        tp, fn, fp = cm[c, c], cm[c].sum() - cm[c, c], cm[:, c].sum() - cm[c, c]
        tn = n - tp - fn - fp
        out |= {f"per_class.{name}.accuracy": (tp + tn) / n,
                f"per_class.{name}.sensitivity": rec[c], f"per_class.{name}.ppv": prec[c],
                f"per_class.{name}.specificity": tn / (tn + fp), f"per_class.{name}.npv": tn / (tn + fn),
                f"per_class.{name}.f1": f1[c], f"per_class.{name}.auc": aucs[c]}
    return out


def _sklearn_bootstrap(y, p, weights):
    """Plain loop: one resample at a time, every figure by a scikit-learn call."""
    rows = []
    for w in weights:
        idx = np.repeat(np.arange(len(y)), w.astype(np.int64))
        rows.append(_sklearn_figures(y[idx], p[idx]))
    keys = rows[0].keys()
    return {k: np.quantile([r[k] for r in rows], [0.025, 0.975]).tolist() for k in keys}, rows


def test_evaluate_vectorised(benchmark, cohort):
    y, p = cohort
    benchmark.group = "bootstrap 10k cases"
    clock = Clock(evaluate)
    result = benchmark.pedantic(clock, args=(y, p), kwargs={"bootstrap": RESAMPLES, "seed": 0},
                                rounds=3, iterations=1)
    _TIMES["vectorised"] = min(clock.seconds)
    assert result["bootstrap"]["resamples"] == RESAMPLES
    benchmark.extra_info["resamples"] = RESAMPLES
    assert _TIMES["vectorised"] < TARGET_S, f"evaluate took {_TIMES['vectorised']:.2f} s"


def test_sklearn_loop_baseline(benchmark, cohort, capsys):
    y, p = cohort
    order = _canonical_order(y, p)  # evaluate() resamples the cases in this order
    y, p = y[order], p[order]
    cs = _prepare(y, p, CLASS_NAMES, 15)
    # the first BASELINE_RESAMPLES resamples that evaluate(seed=0) draws, the very same cases
    weights = next(_resamples(cs, RESAMPLES, seed=0))[:BASELINE_RESAMPLES]
    benchmark.group = "bootstrap 10k cases"
    clock = Clock(_sklearn_bootstrap)
    _, rows = benchmark.pedantic(clock, args=(y, p, weights), rounds=2, iterations=1)
    _TIMES["sklearn"] = min(clock.seconds)
    # same resamples, same numbers: the vectorised figures equal scikit-learn's
    figs, _ = _figures(weights, cs)
    for key in ("accuracy", "macro_f1", "macro_auc", "mcc", "ece", "brier",
                "per_class.focal_increased.auc", "per_class.focal_increased.npv"):
        np.testing.assert_allclose(figs[key], [r[key] for r in rows], rtol=1e-10, atol=1e-12)

    scaled = _TIMES["sklearn"] * RESAMPLES / BASELINE_RESAMPLES
    benchmark.extra_info.update(resamples_run=BASELINE_RESAMPLES, scaled_to=RESAMPLES,
                                scaled_seconds=scaled)
    if "vectorised" in _TIMES:
        ratio = scaled / _TIMES["vectorised"]
        benchmark.extra_info["speedup"] = ratio
        with capsys.disabled():
            print(f"\n[bench_metrics] evaluate(): {_TIMES['vectorised']:.3f} s for {N_CASES} cases x "
                  f"{RESAMPLES} resamples (best of 3); scikit-learn loop: {_TIMES['sklearn']:.3f} s "
                  f"for {BASELINE_RESAMPLES} resamples (best of 2) -> {scaled:.1f} s scaled to "
                  f"{RESAMPLES}; speed-up x{ratio:.0f}")
