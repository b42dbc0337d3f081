"""What an entry records for an evaluation split whose labels are withheld.

On a dataset prepared with private evaluation labels (:mod:`thyroid_bench.data.private`) a run
predicts every evaluation split but can score only those whose labels it has. For a withheld
split its entry's ``metrics[split]`` (entry schema v1, unchanged) is a marker::

    {"withheld": true, "n": 302, "bootstrap": {"resamples": 1000, "seed": 0, "level": 0.95},
     "ece_bins": 15}

the number of cases predicted, and the settings the organisers' scoring uses for the intervals
and the calibration figure (``submit --private-labels`` recomputes every figure from the
predictions file with them and checks the bootstrap settings as it checks any entry's). No
figure is claimed, so none can be wrong; the leaderboard stores the figures it computed at
submission beside the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from thyroid_bench.evaluation.metrics import ECE_BINS

__all__ = ["WITHHELD", "withheld_metrics", "is_withheld", "withheld_problem"]

#: The marker's key.
WITHHELD = "withheld"
_KEYS = {WITHHELD, "n", "bootstrap", "ece_bins"}


def withheld_metrics(n: int, *, bootstrap: int, seed: int = 0, level: float = 0.95,
                     ece_bins: int = ECE_BINS) -> dict[str, Any]:
    """The marker for a withheld split of ``n`` cases, scored later with these settings."""
    return {WITHHELD: True, "n": int(n),
            "bootstrap": {"resamples": int(bootstrap), "seed": int(seed), "level": float(level)},
            "ece_bins": int(ece_bins)}


def is_withheld(metrics: Mapping[str, Any]) -> bool:
    """Whether one split's metrics are the withheld marker (any entry claiming figures is not)."""
    return isinstance(metrics, Mapping) and metrics.get(WITHHELD) is True


def withheld_problem(metrics: Mapping[str, Any], n: int) -> str | None:
    """Why ``metrics`` is not the marker of a withheld split of ``n`` cases, or ``None``."""
    if not is_withheld(metrics):
        return ("its labels are withheld, so the entry cannot hold figures for it: mark it "
                "{\"withheld\": true, ...} as `thyroid-bench run` does")
    if set(metrics) != _KEYS:
        return (f"the withheld marker has the keys {sorted(metrics)}, expected {sorted(_KEYS)} "
                "(no figure: the labels are withheld)")
    if type(metrics["n"]) is not int or metrics["n"] != n:
        return f"the withheld marker says n = {metrics['n']!r}, the predictions file has {n} cases"
    return None
