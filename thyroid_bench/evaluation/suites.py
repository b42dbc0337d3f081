"""Metric suites: how a task's predictions are scored, named by the task (``Task.metric_suite``).

A :class:`Suite` is a small registered object; ``get_suite(name)`` returns it:

- ``suite.evaluate(y_true, y_prob, class_names, *, bootstrap, seed, ci, ece_bins, **inputs)``
  returns the dict that entries, reports and the leaderboard read (calling the suite itself
  does the same);
- ``suite.figures``: its overall scalar figure names, in display order (the leaderboard's
  columns come from them);
- ``suite.figure_names(class_names)``: every scalar figure path it reports and bootstraps
  (the overall ones, then ``per_class.<class>.<figure>``);
- ``suite.compare(y_true, y_prob_a, y_prob_b, *, metrics=[...], resamples, seed, ci, alpha,
  class_names)``: the paired bootstrap of two models on the same cases, returning
  {metric: {metric, a, b, difference, ci, p_value, significant, resamples, valid_resamples,
  seed, level}} as :func:`thyroid_bench.evaluation.metrics.compare` does (the leaderboard
  ranks adjacent rows with it on the task's main score); :func:`compare_task` is the same
  with the task's own settings passed.

Registered suites: ``multiclass`` (:func:`thyroid_bench.evaluation.metrics.evaluate`, the
four-pattern task; its output is exactly that function's) and ``ordinal``
(:mod:`thyroid_bench.evaluation.ordinal`, the residual-tissue task: grade, derived detection
and uptake figures). A new task registers its own suite with :func:`register_suite`.

:func:`evaluate_task` is what the harness, ``score`` and ``submit`` call: it passes the
task's class names, and to suites that take them its detection settings (negative class,
threshold) and its regression column (``values``: predicted, as
``Predictions.values``; ``true_values``: the dataset's). :func:`selection_scores` is the
same figures without bootstrap, for picking the best epoch: one definition of each figure.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation.metrics import ECE_BINS, OVERALL_FIGURES, compare, evaluate, figure_names
from thyroid_bench.evaluation.ordinal import (
    ORDINAL_FIGURES,
    compare_ordinal,
    evaluate_ordinal,
    ordinal_figure_names,
)
from thyroid_bench.tasks import Task

__all__ = ["Suite", "register_suite", "get_suite", "list_suites", "evaluate_task", "compare_task",
           "selection_scores"]

#: Per-task inputs of a suite beyond the class names: (task, predicted values, true values)
#: -> keyword arguments of its evaluate and compare.
TaskInputs = Callable[[Task, Mapping[str, np.ndarray], Mapping[str, np.ndarray]], dict]


@dataclass(frozen=True)
class Suite:
    """A metric suite: its evaluate function, overall figures (display order), figure paths,
    paired-bootstrap compare and how it takes a task's settings (None: class names only)."""

    name: str
    evaluate: Callable[..., dict]
    figures: tuple[str, ...]
    figure_names: Callable[[Sequence[str]], list[str]]
    compare: Callable[..., dict[str, dict]]
    task_inputs: TaskInputs | None = None

    def __call__(self, *args, **kwargs) -> dict:
        return self.evaluate(*args, **kwargs)


_SUITES: dict[str, Suite] = {}


def register_suite(suite: Suite) -> Suite:
    """Register ``suite`` under its name (a task names it in ``metric_suite``)."""
    _SUITES[suite.name] = suite
    return suite


def get_suite(name: str) -> Suite:
    """The suite called ``name``; :class:`ThyroidBenchError` if none is registered."""
    try:
        return _SUITES[name]
    except KeyError:
        raise ThyroidBenchError(f"unknown metric suite {name!r}; known: {', '.join(_SUITES)}") from None


def list_suites() -> list[str]:
    """The registered suites' names."""
    return list(_SUITES)


def _ordinal_inputs(task: Task, values: Mapping[str, np.ndarray],
                    true_values: Mapping[str, np.ndarray]) -> dict:
    """The task's detection settings and its regression column, as the ordinal suite takes them."""
    kw: dict = {}
    if task.detection is not None:
        kw.update(negative=task.negative_index, threshold=task.detection.threshold)
    target = task.regression_target
    if target is not None:
        kw.update(uptake_true=true_values.get(target), uptake_pred=values.get(target))
    return kw


register_suite(Suite("multiclass", evaluate, OVERALL_FIGURES, figure_names, compare))
register_suite(Suite("ordinal", evaluate_ordinal, ORDINAL_FIGURES, ordinal_figure_names,
                     compare_ordinal, _ordinal_inputs))


def _task_inputs(task: Task, suite: Suite, values: Mapping[str, np.ndarray] | None,
                 true_values: Mapping[str, np.ndarray] | None) -> dict:
    values, true_values = dict(values or {}), dict(true_values or {})
    allowed = {task.regression_target} - {None}
    unknown = sorted((set(values) | set(true_values)) - allowed)
    if unknown:
        raise ThyroidBenchError(
            f"task {task.name} scores no value column {unknown}; its regression target is "
            f"{task.regression_target or 'none'}")
    if suite.task_inputs is None:
        return {}
    return suite.task_inputs(task, values, true_values)


def evaluate_task(task: Task, y_true: Sequence[int] | np.ndarray, y_prob: np.ndarray, *,
                  bootstrap: int = 1000, seed: int = 0, ci: float = 0.95,
                  ece_bins: int = ECE_BINS, values: Mapping[str, np.ndarray] | None = None,
                  true_values: Mapping[str, np.ndarray] | None = None) -> dict:
    """Every figure of ``task``'s metric suite, with the task's class names and settings.

    ``values``: predicted regression columns (``{task.regression_target: array}``, NaN where
    not predicted, as :attr:`Predictions.values
    <thyroid_bench.evaluation.predictions.Predictions.values>`); ``true_values``: the same
    column from the dataset, in the same case order. A column the task does not score is a
    :class:`ThyroidBenchError`.
    """
    suite = get_suite(task.metric_suite)
    return suite.evaluate(y_true, y_prob, task.class_names, bootstrap=bootstrap, seed=seed, ci=ci,
                          ece_bins=ece_bins, **_task_inputs(task, suite, values, true_values))


def compare_task(task: Task, y_true: Sequence[int] | np.ndarray, y_prob_a: np.ndarray,
                 y_prob_b: np.ndarray, *, metrics: Sequence[str], resamples: int = 1000,
                 seed: int = 0, ci: float = 0.95, alpha: float = 0.05) -> dict[str, dict]:
    """The paired bootstrap of ``task``'s suite (``Suite.compare``) with its class names and
    detection settings (regression columns are not compared here)."""
    suite = get_suite(task.metric_suite)
    kw = _task_inputs(task, suite, None, None)
    kw = {k: v for k, v in kw.items() if v is not None}
    return suite.compare(y_true, y_prob_a, y_prob_b, metrics=metrics, resamples=resamples,
                         seed=seed, ci=ci, alpha=alpha, class_names=task.class_names, **kw)


def selection_scores(task: Task, y_true: np.ndarray, y_prob: np.ndarray,
                     metric: str | None = None) -> dict[str, float]:
    """Accuracy, macro F1 and the selection ``metric`` (default: the task's) on the selection
    fold, without bootstrap.

    The same figures, by the same code, as the entry's: macro F1 here is the macro F1 of
    :func:`~thyroid_bench.evaluation.metrics.evaluate` (classes present or predicted).
    A figure undefined on the fold (a grade figure on labels of unknown grade, say) counts
    as 0, so an epoch with it is never the best.
    """
    metric = metric or task.selection_metric
    m = evaluate_task(task, y_true, y_prob, bootstrap=0)
    if metric not in m or isinstance(m[metric], (dict, list, str, bool)):
        raise ThyroidBenchError(f"selection metric {metric!r} is not a figure of the "
                                f"{task.metric_suite!r} suite of task {task.name}")
    names = dict.fromkeys(("accuracy", "macro_f1", metric))
    return {name: float(m[name]) if m.get(name) is not None else 0.0 for name in names}
