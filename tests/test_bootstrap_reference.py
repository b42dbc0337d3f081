"""The bootstrap's figures are those of the code before issue 13 made it fast at a million cases.

``bootstrap_reference.json`` holds what :func:`reference_outputs` returned at commit b23c479
(``metrics.evaluate`` and ``ordinal.evaluate_ordinal`` drawing whole resample chunks, the
weights counted over every case at once, the confusion matrix and the calibration error as
dense matrix products). The code now draws the same resamples (same seed, same chunks, same
order of draws) and counts and sums them differently: every figure must be equal, exactly,
except the expected calibration error, whose per-bin sums are now added in another order
(agreement within 1e-12, relative). To rebuild the file from that commit::

    PYTHONPATH=<checkout of b23c479> python -c "import sys; sys.path.insert(0, 'tests');
        import json, test_bootstrap_reference as t;
        print(json.dumps(t.reference_outputs(), indent=1, sort_keys=True))"
"""

from __future__ import annotations

import json
import math
import tracemalloc
from pathlib import Path

import numpy as np

from thyroid_bench.evaluation.metrics import evaluate
from thyroid_bench.evaluation.ordinal import evaluate_ordinal

REFERENCE = Path(__file__).with_name("bootstrap_reference.json")
#: name: (cases, input seed, coarse probabilities (many ties), a class never true,
#: resamples, bootstrap seed). "chunked": 5,000 cases draw 400 resamples per chunk, so 1,000
#: resamples take three chunks.
CASES = {
    "small_ties": (60, 1, True, None, 300, 7),
    "absent_class": (40, 2, False, 3, 200, 0),
    "chunked": (5000, 3, False, None, 1000, 11),
    "chunked_ties": (3000, 4, True, None, 700, 5),
}


def four_pattern(n: int, seed: int, *, ties: bool = False, absent: int | None = None):
    """``n`` cases of four classes: labels and softmax probabilities leaning to the truth."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 4, n)
    if absent is not None:
        y[y == absent] = (absent + 1) % 4
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 1.2
    p = np.exp(logits)
    p /= p.sum(axis=1, keepdims=True)
    if ties:  # coarse probabilities: many cases tie on a class's score
        p = np.round(p, 1)
        p[:, 0] = 1.0 - p[:, 1:].sum(axis=1)
        p = np.clip(p, 0, 1)
        p /= p.sum(axis=1, keepdims=True)
    return y, p


def reference_outputs() -> dict:
    """Every case's ``evaluate`` result, and the ordinal suite's with and without known grades."""
    out = {}
    for name, (n, seed, ties, absent, boot, boot_seed) in CASES.items():
        y, p = four_pattern(n, seed, ties=ties, absent=absent)
        out[name] = evaluate(y, p, bootstrap=boot, seed=boot_seed)
    y, p = four_pattern(800, 9, ties=True)
    rng = np.random.default_rng(9)
    true = np.where(rng.random(800) < 0.2, np.nan, rng.gamma(2.0, 1.0, 800))
    pred = np.clip(np.round(true + rng.normal(0, 0.5, 800), 1), 0, None)
    out["ordinal_graded"] = evaluate_ordinal(y, p, bootstrap=400, seed=3, uptake_true=true,
                                             uptake_pred=pred)
    y[:25] = -1  # present, grade unknown
    out["ordinal"] = evaluate_ordinal(y, p, bootstrap=400, seed=3, uptake_true=true, uptake_pred=pred)
    return json.loads(json.dumps(out))  # as the file holds it


def _leaves(value, path=""):
    if isinstance(value, dict):
        for key in sorted(value):
            yield from _leaves(value[key], f"{path}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from _leaves(item, f"{path}[{i}]")
    else:
        yield path, value


def test_bootstrap_figures_are_those_of_the_dense_implementation():
    reference = json.loads(REFERENCE.read_text())
    now = reference_outputs()
    old, new = dict(_leaves(reference)), dict(_leaves(now))
    assert old.keys() == new.keys()
    assert len(old) > 1000
    differ = {k: (old[k], new[k]) for k in old if old[k] != new[k]}
    assert all(k.rsplit(".", 1)[-1].startswith("ece") for k in differ), differ
    for a, b in differ.values():
        assert math.isclose(a, b, rel_tol=1e-12), (a, b)
    assert now["chunked"]["ci"]["macro_auc"] == reference["chunked"]["ci"]["macro_auc"]


def test_bootstrap_memory_does_not_grow_with_the_resamples():
    y, p = four_pattern(50_000, 5)
    peaks = []
    for resamples in (40, 400):
        tracemalloc.start()
        try:
            evaluate(y, p, bootstrap=resamples, seed=1)
            peaks.append(tracemalloc.get_traced_memory()[1])
        finally:
            tracemalloc.stop()
    assert peaks[1] < 1.1 * peaks[0], peaks


def test_a_million_cases_path_gives_the_same_figures(monkeypatch):
    """At a million cases resamples are counted, binned and scored a row at a time; that path,
    forced here on a small case, gives exactly the figures of the whole-chunk path."""
    import thyroid_bench.evaluation.metrics as M

    y, p = four_pattern(3000, 4, ties=True)
    whole = evaluate(y, p, bootstrap=300, seed=5)
    monkeypatch.setattr(M, "_AUC_ELEMENTS", 64)
    assert evaluate(y, p, bootstrap=300, seed=5) == whole
