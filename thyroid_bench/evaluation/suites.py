"""Metric suites: how a task's predictions are scored, named by the task (``Task.metric_suite``).

A suite is a function ``suite(y_true, y_prob, class_names, *, bootstrap, seed, ci, ece_bins)``
returning the dict that entries, reports and the leaderboard read. ``multiclass``
(:func:`thyroid_bench.evaluation.metrics.evaluate`) serves the four-pattern task; a new
task registers its own suite with :func:`register_suite`. :func:`evaluate_task` is what the
harness, ``score`` and ``submit`` call, and :func:`selection_scores` is the same figures
without bootstrap, for picking the best epoch: one definition of each figure.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation.metrics import ECE_BINS, evaluate
from thyroid_bench.tasks import Task

__all__ = ["Suite", "register_suite", "get_suite", "evaluate_task", "selection_scores"]

Suite = Callable[..., dict]

_SUITES: dict[str, Suite] = {"multiclass": evaluate}


def register_suite(name: str, suite: Suite) -> Suite:
    """Register ``suite`` under ``name`` (a task names it in ``metric_suite``)."""
    _SUITES[name] = suite
    return suite


def get_suite(name: str) -> Suite:
    """The suite called ``name``; :class:`ThyroidBenchError` if none is registered."""
    try:
        return _SUITES[name]
    except KeyError:
        raise ThyroidBenchError(f"unknown metric suite {name!r}; known: {', '.join(_SUITES)}") from None


def evaluate_task(task: Task, y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                  bootstrap: int = 1000, seed: int = 0, ci: float = 0.95,
                  ece_bins: int = ECE_BINS) -> dict:
    """Every figure of ``task``'s metric suite, with the task's class names."""
    return get_suite(task.metric_suite)(y_true, y_prob, task.class_names, bootstrap=bootstrap,
                                        seed=seed, ci=ci, ece_bins=ece_bins)


def selection_scores(task: Task, y_true: np.ndarray, y_prob: np.ndarray,
                     metric: str | None = None) -> dict[str, float]:
    """Accuracy, macro F1 and the selection ``metric`` (default: the task's) on the selection
    fold, without bootstrap.

    The same figures, by the same code, as the entry's: macro F1 here is the macro F1 of
    :func:`~thyroid_bench.evaluation.metrics.evaluate` (classes present or predicted).
    A figure undefined on the fold counts as 0, so an epoch with it is never the best.
    """
    metric = metric or task.selection_metric
    m = evaluate_task(task, y_true, y_prob, bootstrap=0)
    if metric not in m or isinstance(m[metric], (dict, list, str)):
        raise ThyroidBenchError(f"selection metric {metric!r} is not a figure of the "
                                f"{task.metric_suite!r} suite of task {task.name}")
    names = dict.fromkeys(("accuracy", "macro_f1", metric))
    return {name: float(m[name]) if m.get(name) is not None else 0.0 for name in names}
