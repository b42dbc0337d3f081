"""The predictions file: one CSV row per case, one probability column per class of the task.

Format (UTF-8 CSV, header on the first line), for a task with classes ``c0 ... ck``::

    case_id,prob_c0,...,prob_ck[,<regression target>][,label]

For ``four-pattern``: ``case_id,prob_diffusely_increased,prob_diffusely_decreased,
prob_focal_increased,prob_heterogeneous_uptake[,label]``; for ``residual-tissue``:
``case_id,prob_absent,prob_low,prob_moderate,prob_high[,uptake_pct][,label]``. The
``prob_<class name>`` columns follow the task's classes (written in class order; read in any
order); each row's probabilities are finite, in [0, 1] and sum to 1 within
:data:`~thyroid_bench.tasks.PROB_SUM_TOLERANCE`. A task with a regression target (``Task.
regression_target``, a percentage) may add that column: a finite number in [0, 100], or
blank where the model predicts none. The optional ``label`` column holds the true class (a
class name, the paper's code or an index) for files scored on their own; for a task with a
detection reading it may also say ``present`` (``Detection.present_label``: present, grade
not known; label -1). Any model, in or out of Python, can write this file;
:func:`read_predictions` is the one gate through which predictions enter scoring and the
leaderboard.
"""

from __future__ import annotations

import csv
import itertools
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thyroid_bench.atomic import atomic_open
from thyroid_bench.data.columns import extra_float_ok, extra_float_rule
from thyroid_bench.errors import PredictionsError
from thyroid_bench.tasks import PROB_SUM_TOLERANCE, UNKNOWN_GRADE, Task, TaskError, list_tasks

__all__ = [
    "Predictions",
    "write_predictions",
    "read_predictions",
    "task_of_header",
]

# How many problems one rejection lists before it stops counting.
_MAX_PROBLEMS = 20


@dataclass(frozen=True)
class Predictions:
    """A validated predictions file: case ids, an n x k probability matrix, labels if given,
    and the task's regression column if the file has it (``values[name]``: float64, NaN where
    blank)."""

    case_ids: list[str]
    probs: np.ndarray              # (n, k) float64, column j = class j of the task
    labels: np.ndarray | None      # (n,) int64 class indices (-1: present, class unknown), or None
    path: Path | None = None
    values: Mapping[str, np.ndarray] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.case_ids)

    def align(self, case_ids: Sequence[str]) -> Predictions:
        """The same predictions reordered to ``case_ids`` (which must all be present)."""
        index = {cid: i for i, cid in enumerate(self.case_ids)}
        order = np.array([index[str(c)] for c in case_ids], dtype=np.int64)
        return Predictions([self.case_ids[i] for i in order], self.probs[order],
                           None if self.labels is None else self.labels[order], self.path,
                           {name: v[order] for name, v in self.values.items()})

    def against(self, labels: Mapping[str, int]) -> tuple[Predictions, np.ndarray, np.ndarray]:
        """Line the predictions up with a split's labels (``case_id -> class index``).

        Returns the predictions in case-id order, the true labels in that order,
        and the row indices where the file's own ``label`` column (if any)
        disagrees with them. Every case of ``labels`` must be present (read the
        file with ``expected_case_ids`` first).
        """
        order = sorted(labels)
        aligned = self.align(order)
        y_true = np.array([labels[c] for c in order], dtype=np.int64)
        mismatch = (np.flatnonzero(aligned.labels != y_true) if aligned.labels is not None
                    else np.empty(0, dtype=np.int64))
        return aligned, y_true, mismatch


def write_predictions(
    path: str | os.PathLike,
    task: Task,
    case_ids: Sequence[str],
    y_prob: np.ndarray,
    labels: Sequence[int] | np.ndarray | None = None,
    values: Mapping[str, Sequence[float] | np.ndarray] | None = None,
) -> Path:
    """Write a predictions CSV (atomically) that :func:`read_predictions` accepts.

    ``y_prob`` is n x k class probabilities in the task's class order; ``labels``
    (optional) are class indices, written as class names (-1 as the task's
    ``Detection.present_label``); ``values`` (optional) is ``{task.regression_target:
    n values}``, NaN written as a blank cell. Numbers are written with 17 significant
    digits, so the file reads back to the same float64 values and the metrics recomputed
    from it equal the ones computed in memory.
    """
    path = Path(path)
    ids = [str(c) for c in case_ids]
    probs = np.asarray(y_prob, dtype=np.float64)
    if probs.ndim != 2 or probs.shape[1] != task.num_classes:
        raise ValueError(f"y_prob must be n x {task.num_classes} (the classes of task {task.name}), "
                         f"got shape {probs.shape}")
    if probs.shape[0] != len(ids):
        raise ValueError(f"{len(ids)} case ids but {probs.shape[0]} probability rows")
    problems = _check_rows(probs, task.prob_columns)
    if problems:
        raise ValueError(f"cannot write {path}: row {problems[0][0] + 1}: {problems[0][1]}")
    if len(set(ids)) != len(ids) or any(not c.strip() for c in ids):
        raise ValueError("case ids must be unique and non-empty")
    label_names = None
    if labels is not None:
        lab = np.asarray(labels)
        if lab.shape != (len(ids),):
            raise ValueError(f"labels must be {len(ids)} class indices, got shape {lab.shape}")
        label_names = [task.label_text(int(v)) for v in lab]
    columns = _value_columns(path, task, values, len(ids))

    header = ["case_id", *task.prob_columns, *columns] + (["label"] if label_names is not None else [])
    with atomic_open(path, newline="") as f:
        w = csv.writer(f, lineterminator="\n")
        w.writerow(header)
        for i, cid in enumerate(ids):
            row = [cid, *(f"{v:.17g}" for v in probs[i])]
            row += ["" if math.isnan(v[i]) else f"{v[i]:.17g}" for v in columns.values()]
            if label_names is not None:
                row.append(label_names[i])
            w.writerow(row)
    return path



def _value_columns(path: Path, task: Task, values: Mapping | None, n: int) -> dict[str, np.ndarray]:
    """The regression columns to write, checked as the reader checks them."""
    out: dict[str, np.ndarray] = {}
    for name, given in (values or {}).items():
        if name != task.regression_target:
            raise ValueError(f"cannot write {path}: task {task.name} has no value column {name!r} "
                             f"(its regression target: {task.regression_target or 'none'})")
        v = np.asarray(given, dtype=np.float64)
        if v.shape != (n,):
            raise ValueError(f"{name} must hold {n} values, got shape {v.shape}")
        for i, x in enumerate(v):
            reason = None if math.isnan(x) else _value_problem(name, float(x))
            if reason:
                raise ValueError(f"cannot write {path}: row {i + 1}: {reason}")
        out[name] = v
    return out


def _value_problem(name: str, x: float) -> str | None:
    """Why a (non-blank) regression value is refused, or None."""
    if not math.isfinite(x):
        return (f"{name} = {x!r} is not a finite number; leave the cell blank where no value is "
                "predicted")
    if not extra_float_ok(name, x):  # the dataset's own rule for the column
        return f"{name} = {x!r} is not {extra_float_rule(name)}"
    return None


def _check_rows(probs: np.ndarray, columns: Sequence[str]) -> list[tuple[int, str]]:
    """(row index, reason) for every row that is not a probability vector."""
    out = []
    finite = np.isfinite(probs).all(axis=1)
    sums = probs.sum(axis=1)
    # Each probability in [0, 1], as the metrics require (metrics._check_inputs): a value of
    # 1 + 9e-7 whose row sums to 1 within the tolerance is refused here, not by the metrics.
    bad_rows = (~finite | (probs < 0).any(axis=1) | (probs > 1).any(axis=1)
                | (np.abs(sums - 1) > PROB_SUM_TOLERANCE))
    for i in np.flatnonzero(bad_rows):
        row = probs[i]
        if not finite[i]:
            bad = [columns[j] for j in range(len(row)) if not math.isfinite(row[j])]
            out.append((int(i), f"{', '.join(bad)} is NaN or infinite; expected a probability in [0, 1]"))
        elif (row < 0).any():
            bad = [f"{columns[j]}={float(row[j])!r}" for j in range(len(row)) if row[j] < 0]
            out.append((int(i), f"negative probability {', '.join(bad)}"))
        elif (row > 1).any():
            bad = [f"{columns[j]}={float(row[j])!r}" for j in range(len(row)) if row[j] > 1]
            out.append((int(i), f"probability above 1: {', '.join(bad)}; expected a probability "
                                "in [0, 1]"))
        else:
            out.append((int(i), f"probabilities sum to {float(sums[i])!r}, not 1 (tolerance "
                                f"{PROB_SUM_TOLERANCE}); write normalised class probabilities "
                                "(a softmax), not raw scores"))
    return out


def task_of_header(path: str | os.PathLike) -> Task:
    """The registered task a predictions file is for, from its header's ``prob_<class>`` columns.

    For files scored on their own label column, with no dataset to name the task: the task
    whose probability columns are exactly the file's; failing that, the task sharing the most
    of them (so that :func:`read_predictions` names the missing and unknown columns);
    :class:`~thyroid_bench.tasks.TaskError` when no task shares any, or several equally.
    """
    header = _read_rows(Path(path), limit=1)[0]
    found = {h.strip() for h in header if h.strip().startswith("prob_")}
    tasks = list_tasks()
    exact = [t for t in tasks if set(t.prob_columns) == found]
    if len(exact) == 1:
        return exact[0]
    shared = {t.name: len(found & set(t.prob_columns)) for t in tasks}
    best = max(shared.values(), default=0)
    closest = [t for t in tasks if shared[t.name] == best]
    if best > 0 and len(closest) == 1:
        return closest[0]
    expected = "; ".join(f"{t.name}: {', '.join(t.prob_columns)}" for t in tasks)
    raise TaskError(f"{path}: its probability columns {sorted(found)} do not say which task it is "
                    f"for; name it with --task (expected columns per task: {expected})")


def _read_rows(path: Path, limit: int | None = None) -> list[list[str]]:
    """The CSV's rows (the first ``limit`` of them); :class:`PredictionsError` if it is unreadable."""
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(itertools.islice(csv.reader(f), limit))
    except UnicodeDecodeError as exc:
        raise PredictionsError(f"{path}: not UTF-8 text ({exc}); save the predictions as a UTF-8 CSV") from None
    except csv.Error as exc:
        raise PredictionsError(f"{path}: not a readable CSV ({exc})") from None
    if not rows or not any(cell.strip() for cell in rows[0]):
        raise PredictionsError(f"{path}: empty file; expected a header line case_id,prob_<class>,..."
                               "[,label] and one row per case")
    return rows


class _Problems:
    """The problems found in a file, each with its data row, reported together."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: list[tuple[int, str]] = []

    def row(self, r: int, reason: str) -> None:
        self.items.append((r, f"row {r} (line {r + 1}): {reason}"))

    def raise_if_any(self) -> None:
        if not self.items:
            return
        self.items.sort(key=lambda p: p[0])
        shown = [text for _, text in self.items[:_MAX_PROBLEMS]]
        hidden = len(self.items) - len(shown)
        more = f"\n  ... and {hidden} more problem(s)" if hidden else ""
        raise PredictionsError(f"{self.path}: rejected ({len(self.items)} problem(s)):\n  "
                               + "\n  ".join(shown) + more)


def read_predictions(
    path: str | os.PathLike,
    task: Task,
    *,
    expected_case_ids: Iterable[str] | None = None,
) -> Predictions:
    """Read and validate a predictions CSV of ``task``; raise :class:`PredictionsError` on any problem.

    Rejected, each with the file, the row (data row r is line r + 1) and the reason:
    a missing, unknown or repeated column; a row with the wrong number of fields; an
    empty case id; a probability that is not a number, NaN, infinite or negative; a
    row whose probabilities do not sum to 1 within the tolerance; a regression value that
    is not a number, NaN, infinite, negative or above 100 (a blank cell is "not predicted");
    a bad label; a duplicate case id; with ``expected_case_ids`` (the cases of a split), a
    case id not in the split and any case of the split missing from the file. Up to 20
    problems are listed. Rows keep the file's order.
    """
    path = Path(path)
    rows = _read_rows(path)
    header = [h.strip() for h in rows[0]]
    _check_header(path, header, task)
    data = rows[1:]
    while data and not any(cell.strip() for cell in data[-1]):  # trailing blank lines
        data.pop()
    if not data:
        raise PredictionsError(f"{path}: the header is there but no case rows follow")
    problems = _Problems(path)
    expected = None if expected_case_ids is None else [str(c) for c in expected_case_ids]
    ids, probs, labels = _parse_rows(data, header, task, expected, problems)
    for i, reason in _check_rows(probs, task.prob_columns):
        problems.row(i + 1, reason)
    values = _parse_values(data, header, task, problems)
    if expected is not None:
        _check_missing(set(ids), expected, len(data), problems)
    problems.raise_if_any()
    return Predictions(ids, probs, labels if "label" in header else None, path, values)


def _parse_values(data: list[list[str]], header: list[str], task: Task,
                  problems: _Problems) -> dict[str, np.ndarray]:
    """The task's regression column, if the file has it: float64, NaN where blank."""
    name = task.regression_target
    if name is None or name not in header:
        return {}
    j = header.index(name)
    out = np.full(len(data), np.nan)
    for i, fields in enumerate(data):
        if len(fields) != len(header) or not fields[j].strip():
            continue  # a short row is reported once by _parse_rows; blank: not predicted
        text = fields[j].strip()
        try:
            x = float(text)
        except ValueError:
            problems.row(i + 1, f"{name} = {text!r} is not a number")
            continue
        reason = _value_problem(name, x)
        if reason:
            problems.row(i + 1, reason)
        else:
            out[i] = x
    return {name: out}


def _parse_rows(data: list[list[str]], header: list[str], task: Task, expected: list[str] | None,
                problems: _Problems) -> tuple[list[str], np.ndarray, np.ndarray]:
    """Case ids, probabilities and labels of every row; faults go to ``problems``."""
    col = {name: j for j, name in enumerate(header)}
    prob_cols = [col[c] for c in task.prob_columns]
    expected_set = None if expected is None else set(expected)
    ids: list[str] = []
    probs = np.zeros((len(data), task.num_classes))
    probs[:, 0] = 1.0  # a placeholder row (one-hot) passes the row checks for any class count
    labels = np.zeros(len(data), dtype=np.int64)
    seen: dict[str, int] = {}
    for i, fields in enumerate(data):
        r = i + 1
        if len(fields) != len(header):
            problems.row(r, f"{len(fields)} fields, the header has {len(header)}")
            ids.append("")
            continue
        cid = fields[col["case_id"]].strip()
        ids.append(cid)
        _check_case_id(cid, r, seen, expected_set, problems)
        try:
            probs[i] = [float(fields[j]) for j in prob_cols]
        except ValueError:
            for name, j in zip(task.prob_columns, prob_cols):
                if not _is_number(fields[j]):
                    problems.row(r, f"{name} = {fields[j].strip()!r} is not a number")
        if "label" in col:
            labels[i] = _parse_label(fields[col["label"]], task, r, problems)
    return ids, probs, labels


def _check_case_id(cid: str, r: int, seen: dict[str, int], expected: set[str] | None,
                   problems: _Problems) -> None:
    """An empty or duplicate case id, or (with the split's cases) one not in the split."""
    if not cid:
        problems.row(r, "case_id is empty")
    elif cid in seen:
        problems.row(r, f"duplicate case_id {cid!r} (first on row {seen[cid]}); one row per case")
    else:
        seen[cid] = r
        if expected is not None and cid not in expected:
            problems.row(r, f"case_id {cid!r} is not a case of the split being scored")


def _check_missing(found: set[str], expected: list[str], n_rows: int, problems: _Problems) -> None:
    missing = [c for c in expected if c not in found]
    if missing:
        shown = ", ".join(repr(c) for c in missing[:5]) + (" ..." if len(missing) > 5 else "")
        problems.items.append((n_rows + 1, f"{len(missing)} case(s) of the split have no row: "
                                           f"{shown}; predict every case of the split"))


def _parse_label(text: str, task: Task, r: int, problems: _Problems) -> int:
    text = text.strip()
    if not text:
        problems.row(r, "label is empty; fill it for every row or drop the label column")
        return 0
    if task.detection is not None and text.lower() == task.detection.present_label.lower():
        return UNKNOWN_GRADE
    try:
        return task.parse_label(text)
    except ValueError as exc:
        present = ("" if task.detection is None else
                   f", or {task.detection.present_label} (present, class not known)")
        problems.row(r, f"{exc}{present}")
        return 0


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _check_header(path: Path, header: list[str], task: Task) -> None:
    value = [task.regression_target] if task.regression_target else []
    allowed = ["case_id", *task.prob_columns, *value, "label"]
    problems = []
    repeated = sorted({h for h in header if header.count(h) > 1})
    if repeated:
        problems.append(f"repeated column(s) {repeated}")
    missing = [c for c in ["case_id", *task.prob_columns] if c not in header]
    if missing:
        problems.append(f"missing column(s) {missing}")
    unknown = [h for h in header if h not in allowed]
    if unknown:
        problems.append(f"unknown column(s) {unknown}")
    if problems:
        raise PredictionsError(
            f"{path}: header (line 1): {'; '.join(problems)}. Expected exactly "
            f"case_id, {', '.join(task.prob_columns)} and optionally "
            f"{' and '.join([*value, 'label'])} "
            f"(one probability column per class of task {task.name})")
