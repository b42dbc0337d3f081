"""The labels CSV of a DICOM archive: one row per study, read and checked in one place.

The CSV labels studies for one task (``thyroid-bench prepare --source dicom --task``,
default ``four-pattern``; ``thyroid-bench tasks`` lists them): every label is parsed
by that task (:meth:`thyroid_bench.tasks.Task.parse_label`), and a label that is not
one of its classes is an error naming the labels it accepts.

Columns (header names are case-insensitive; other columns are ignored and never
enter the dataset):

``path``
    the DICOM file, relative to ``--dicom-dir`` (``/`` or ``\\`` separators);
``sop_instance_uid``
    or the file's SOP Instance UID (0008,0018); each row needs one of the two;
``label``
    a class of the task: its name, its paper code, an alias or its index (for
    ``four-pattern``: ``diffusely_increased`` / ``I`` / ``type I`` / ``0``, ...,
    ``heterogeneous_uptake`` / ``IV`` / ``type IV`` / ``3``); case and spaces are ignored;
``center``
    the centre the study comes from (use a neutral code such as ``center1``:
    it is stored in the dataset as written);
``split`` (optional)
    ``train``, ``internal`` or ``external`` for every row, to use an official
    split instead of the seeded patient-level one.

A task with a detection reading (``residual-tissue``: the grade of the remnant, class
``absent`` meaning none) takes its label from ``grade`` (or ``label``: the same column under
its generic name; a class name or index, ``0``-``3``) and/or ``present`` (``yes``/``no``,
``1``/``0``, ``true``/``false``, ``present``/``absent``) when only detection is known: an
absent study gets the negative class, a present one :data:`~thyroid_bench.tasks.UNKNOWN_GRADE`
(-1, "present, grade not known"). Each row needs one of the two; a row with both must agree.
A task with a regression target (``uptake_pct``) also reads that optional column: a plain
decimal number from 0 to 100 (% of the administered activity), or empty when not measured.

Problems in the file itself are errors naming the line (line 1 is the header):
an unknown label, an empty label, centre or locator, an unknown split, a path
outside the archive, a study listed twice.
"""

from __future__ import annotations

import csv
import io
import posixpath
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thyroid_bench.data.columns import extra_float_ok, extra_float_rule
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import SPLITS, UNKNOWN_GRADE, Task

__all__ = ["LabelRow", "SPLIT_VALUES", "PRESENT_VALUES", "read_labels_csv", "normalise_relpath",
           "grades_known"]

#: The values of the optional ``split`` column: the splits of dataset format v1.
SPLIT_VALUES: tuple[str, ...] = SPLITS
_COLUMNS = ("path", "sop_instance_uid", "label", "center", "split")
#: The ``present`` column's spellings (case ignored) and what they mean.
PRESENT_VALUES: dict[str, bool] = {
    "yes": True, "y": True, "1": True, "true": True, "present": True,
    "no": False, "n": False, "0": False, "false": False, "absent": False,
}
_MAX_LISTED = 20
#: A number as a labels CSV writes it: plain decimal digits, an optional sign, fraction and
#: exponent (no ``_`` separators, ``nan`` or ``inf``, which Python's float() would take).
_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
#: Cells quoted in a message are cut to this many characters.
_MAX_SHOWN = 40


@dataclass(frozen=True)
class LabelRow:
    """One study of the labels CSV; ``line`` is its line number in the file."""

    line: int
    label: int  # a class index of the task the CSV was read for
    center: str
    path: str | None = None
    sop_instance_uid: str | None = None
    split: str | None = None
    value: float | None = None  # the task's regression target (e.g. uptake_pct), if given


def normalise_relpath(value: str) -> str | None:
    """A CSV path as a clean POSIX path relative to the archive, or None if it escapes it."""
    text = value.strip().replace("\\", "/")
    if not text or text.startswith("/") or (len(text) > 1 and text[1] == ":"):
        return None
    norm = posixpath.normpath(text)
    if norm == "." or norm.startswith("../") or norm == "..":
        return None
    return norm


def _fail(csv_path: Path, problems: list[str]) -> None:
    shown = problems[:_MAX_LISTED]
    more = f"\n  ... and {len(problems) - _MAX_LISTED} more" if len(problems) > _MAX_LISTED else ""
    raise DatasetError(f"{csv_path}: {len(problems)} problem(s) in the labels CSV; fix them and "
                       "run again (see README 'Labels CSV'):\n  " + "\n  ".join(shown) + more)


def read_labels_csv(csv_path: Path, task: Task) -> tuple[list[LabelRow], bool]:
    """Read and check a labels CSV of ``task``; return its rows and whether it has a ``split`` column.

    Labels become class indices of ``task``. Raises :class:`DatasetError` listing
    every faulty line at once.
    """
    csv_path = Path(csv_path)
    reader = csv.reader(io.StringIO(_read_text(csv_path), newline=""))
    records = _records(reader, csv_path)
    index = _header(records, csv_path, task)
    rows: list[LabelRow] = []
    problems: list[str] = []
    seen_path: dict[str, int] = {}
    seen_uid: dict[str, int] = {}
    for cells in records:
        if not any(c.strip() for c in cells):
            continue  # blank line
        # reader.line_num: the physical line where the record ends (header is line 1).
        row, row_problems = _parse_row(cells, reader.line_num, index, task)
        problems += row_problems + _repeats(row, seen_path, seen_uid)
        rows.append(row)
    if problems:
        _fail(csv_path, problems)
    if not rows:
        raise DatasetError(f"labels CSV {csv_path} has a header but no rows; add one row per study")
    return rows, "split" in index


def _records(reader: Any, csv_path: Path) -> Iterator[list[str]]:
    """The CSV's records; one the csv module cannot read (a field beyond its 128 kB limit)
    is a :class:`DatasetError` naming its line."""
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            raise DatasetError(f"{csv_path}: line {reader.line_num}: not a readable CSV record "
                               f"({exc}); save the labels as a plain CSV, one study per line") from None
        yield cells


def grades_known(rows: list[LabelRow]) -> bool:
    """Whether every row has its class (no "present, grade not known" row)."""
    return all(r.label != UNKNOWN_GRADE for r in rows)


def _read_text(csv_path: Path) -> str:
    """The file's text (UTF-8, a byte order mark dropped)."""
    try:
        return csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"labels CSV {csv_path} not found; pass --labels the CSV "
                           "(columns path or sop_instance_uid, label, center[, split])") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"labels CSV {csv_path} is not UTF-8 text ({exc}); save it as UTF-8 CSV") from None


def _known_columns(task: Task) -> tuple[str, ...]:
    """The columns read for ``task``: the common ones, the detection and regression ones."""
    extra = ("grade", "present") if task.detection is not None else ()
    regression = (task.regression_target,) if task.regression_target else ()
    return (*_COLUMNS, *extra, *regression)


def _missing_label_column(columns: list[str], task: Task) -> list[str]:
    """The label column(s) the header lacks, or a conflict between two spellings of it."""
    if task.detection is None:
        return [] if "label" in columns else ["label"]
    if "label" in columns and "grade" in columns:
        return ["one of label or grade, not both (they are the same column)"]
    return [] if {"label", "grade", "present"} & set(columns) else ["grade or present"]


def _header(reader: Iterator[list[str]], csv_path: Path, task: Task) -> dict[str, int]:
    """The position of each known column, once the header has the required ones, each once."""
    try:
        header = next(reader)
    except StopIteration:
        raise DatasetError(f"labels CSV {csv_path} is empty; it needs a header line "
                           "'path,label,center' and one row per study") from None
    columns = [h.strip().lower() for h in header]
    problems: list[str] = []
    dupes = sorted({c for c in columns if c and columns.count(c) > 1})
    if dupes:
        problems.append(f"line 1: column(s) {dupes} appear more than once")
    missing = _missing_label_column(columns, task) + [c for c in ("center",) if c not in columns]
    if "path" not in columns and "sop_instance_uid" not in columns:
        missing.append("path or sop_instance_uid")
    if missing:
        hint = " (spell it 'center')" if "centre" in columns else ""
        problems.append(f"line 1: missing column(s) {missing}{hint}; header is {header}")
    if problems:
        _fail(csv_path, problems)
    return {c: columns.index(c) for c in _known_columns(task) if c in columns}


def _parse_row(cells: list[str], line: int, index: dict[str, int], task: Task
               ) -> tuple[LabelRow, list[str]]:
    """One data line -> its :class:`LabelRow` (label -1 if it has none) and its problems."""
    def cell(name: str) -> str:
        i = index.get(name)
        return cells[i].strip() if i is not None and i < len(cells) else ""

    problems: list[str] = []
    raw_path, uid = cell("path"), cell("sop_instance_uid")
    path = normalise_relpath(raw_path) if raw_path else None
    if raw_path and path is None:
        problems.append(f"path {_shown(raw_path)} must be relative to --dicom-dir and stay inside it")
    if not raw_path and not uid:
        problems.append("neither path nor sop_instance_uid given: the study cannot be found")
    if task.detection is None:
        label, label_problem = _parse_label(cell("label"), task)
    else:
        label, label_problem = _parse_grade_or_presence(cell("grade") or cell("label"),
                                                        cell("present"), task)
    problems += label_problem
    value, value_problem = _parse_value(cell(task.regression_target or ""), task)
    problems += value_problem
    center = cell("center")
    if not center:
        problems.append("the center is empty")
    split = None
    if "split" in index:
        split = cell("split").lower()
        if split not in task.splits:
            problems.append(f"split {cell('split')!r} is not one of {task.splits} "
                            "(with a split column every row needs one)")
    row = LabelRow(line=line, label=label, center=center, path=path,
                   sop_instance_uid=uid or None, split=split, value=value)
    return row, [f"line {line}: {p}" for p in problems]


def _parse_label(raw: str, task: Task) -> tuple[int, list[str]]:
    """The class index of ``raw`` in ``task`` (-1 and the problem if it is none)."""
    if not raw:
        return -1, [f"the label is empty: every study needs one ({task.accepted_labels()})"]
    try:
        return task.parse_label(raw), []
    except ValueError as exc:
        return -1, [str(exc)]


def _parse_grade_or_presence(grade: str, present: str, task: Task) -> tuple[int, list[str]]:
    """The label of a task with a detection reading: the grade if given, else from presence."""
    negative = task.negative_index
    is_present = PRESENT_VALUES.get(present.lower()) if present else None
    if present and is_present is None:
        return UNKNOWN_GRADE, [f"present {_shown(present)} is not one of {sorted(PRESENT_VALUES)}"]
    if not grade:
        if is_present is None:
            return UNKNOWN_GRADE, ["neither grade nor present given: every study needs one "
                                   f"(grade: {task.accepted_labels()}; present: yes or no)"]
        return (UNKNOWN_GRADE if is_present else negative), []
    label, problems = _parse_label(grade, task)
    if not problems and is_present is not None and is_present != (label != negative):
        problems = [f"grade {grade!r} and present {present!r} disagree"]
    return label, problems


def _parse_value(raw: str, task: Task) -> tuple[float | None, list[str]]:
    """The regression target's value: empty -> None; otherwise a plain decimal number in the
    column's range (:func:`~thyroid_bench.data.columns.extra_float_ok`: finite, >= 0, at most
    100 for a percentage such as ``uptake_pct``); ``-0`` is 0."""
    if not raw:
        return None, []
    column = task.regression_target or ""
    value = float(raw) if _NUMBER.fullmatch(raw) else float("nan")
    if not extra_float_ok(column, value):
        return None, [f"{column} {_shown(raw)} is not {extra_float_rule(column)} "
                      "(leave it empty when not measured)"]
    return value + 0.0, []


def _shown(raw: str) -> str:
    """A cell as quoted in a message, cut to a readable length."""
    return repr(raw if len(raw) <= _MAX_SHOWN else raw[:_MAX_SHOWN] + "...")


def _repeats(row: LabelRow, seen_path: dict[str, int], seen_uid: dict[str, int]) -> list[str]:
    """A row naming a path or SOP Instance UID of an earlier row; remembers the first line of each."""
    problems = []
    if row.path is not None:
        if row.path in seen_path:
            problems.append(f"line {row.line}: path {row.path!r} already listed on line "
                            f"{seen_path[row.path]}")
        seen_path.setdefault(row.path, row.line)
    if row.sop_instance_uid:
        if row.sop_instance_uid in seen_uid:
            problems.append(f"line {row.line}: sop_instance_uid already listed on line "
                            f"{seen_uid[row.sop_instance_uid]}")
        seen_uid.setdefault(row.sop_instance_uid, row.line)
    return problems
