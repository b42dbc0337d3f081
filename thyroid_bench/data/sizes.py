"""How many studies a dataset version needs: none of its splits empty, one in every train fold.

An empty split is a dataset nothing can be trained or evaluated on: ``run`` would fail on its
own empty predictions file long after ``prepare`` said the dataset was ready. The ``train``
split is cut into the task's folds (by patient, :func:`~thyroid_bench.data.dicom.ingest.
prepare_dicom`; fold 0 is held out for model selection), so it needs a study in each. One
definition, used three ways: ``prepare`` (any source, through
:func:`~thyroid_bench.data.format.write_dataset`) refuses to write such a version
(:func:`check_split_sizes`), ``verify`` reports it as a problem (:func:`size_problems`; a
version pulled from the Hub is verified before it is installed), and an evaluation split
where a class has no case, which is allowed, is a warning in ``info`` and ``verify``
(:func:`absent_class_warnings`): that class's own figures are undefined there.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import TRAIN_SPLIT, Task

__all__ = ["size_problems", "train_folds", "refusal", "check_split_sizes", "absent_class_warnings"]


def size_problems(rows: Mapping[str, int], train_folds: Mapping[int, int], task: Task) -> list[str]:
    """Why split sizes are unusable: each of the task's splits in ``rows`` (split -> studies)
    that is empty, and the folds of a non-empty train split with no study (``train_folds``:
    fold -> studies); empty when they are fine."""
    problems = [f"split {split} is empty" for split in task.splits if rows.get(split, 1) == 0]
    if rows.get(TRAIN_SPLIT):
        empty = [f for f in range(task.folds) if not train_folds.get(f)]
        if empty:
            problems.append(
                f"split {TRAIN_SPLIT} has {_studies(rows[TRAIN_SPLIT])} but fold(s) "
                f"{', '.join(map(str, empty))} of its {task.folds} hold none: the folds are cut by "
                f"patient (fold 0 is held out for model selection), so {TRAIN_SPLIT} needs studies "
                f"of at least {task.folds} patients")
    return problems


def _studies(n: int) -> str:
    return f"{n} stud{'y' if n == 1 else 'ies'}"


def refusal(what: str, problems: Sequence[str], rows: Mapping[str, int]) -> str:
    """The head of the message refusing version ``what``: its problems and studies per split."""
    counts = ", ".join(f"{split} {n}" for split, n in rows.items())
    return f"{what}: not written (nothing was): {'; '.join(problems)} (studies per split: {counts})."


def train_folds(train: Iterable[Mapping[str, Any]]) -> Counter:
    """Studies per fold of the train rows (a row without a whole-number fold counts in none:
    the row checks report it)."""
    folds: Counter = Counter()
    for row in train:
        try:
            folds[int(row["fold"])] += 1
        except (KeyError, TypeError, ValueError):
            continue
    return folds


def check_split_sizes(splits: Mapping[str, Sequence[Mapping[str, Any]]], task: Task, *,
                      what: str, advice: str = "") -> None:
    """Raise :class:`DatasetError` naming the studies per split if ``splits`` (split -> rows)
    would make a version with an empty split or an empty train fold (:func:`size_problems`).

    ``what`` names the version in the message; ``advice`` (what to do) ends it."""
    rows = {split: len(splits.get(split, ())) for split in task.splits}
    problems = size_problems(rows, train_folds(splits.get(TRAIN_SPLIT, ())), task)
    if problems:
        advice = advice or (f"Give every split rows, and {TRAIN_SPLIT} rows in each fold "
                            f"0-{task.folds - 1}.")
        raise DatasetError(f"{refusal(what, problems, rows)} {advice}")


def absent_class_warnings(class_counts: Mapping[str, Mapping[str, int]], task: Task, *,
                          skip: Iterable[str] = ()) -> list[str]:
    """One warning per non-empty evaluation split (split -> class name -> cases; ``skip``:
    splits whose labels are withheld) where a class of the task has no case."""
    out = []
    skip = set(skip)
    for split in task.eval_splits:
        counts = class_counts.get(split)
        if split in skip or not counts or not sum(counts.values()):
            continue
        absent = [name for name in task.class_names if not counts.get(name)]
        if absent:
            out.append(f"split {split} has no case of class {', '.join(absent)}: the per-class "
                       "figures of that class (sensitivity, PPV, F1, AUC) are undefined there "
                       "and macro averages run over the other classes")
    return out
