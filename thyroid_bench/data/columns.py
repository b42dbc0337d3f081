"""The columns of dataset format v1, declared once: order, Hugging Face dtype, hashing class.

The column list is the task layer's (:data:`thyroid_bench.tasks.BASE_COLUMNS`, then the
task's ``extra_columns``); this module says how each is stored and hashed. A task's extra
column of kind ``image`` is stored like ``image`` (a 16-bit grayscale PNG of the counts);
one of kind ``float`` is a ``float64`` value, null when missing.

A dataset may also carry an *optional* column (:data:`OPTIONAL_COLUMNS`, e.g. the study
pseudonym ``study_id`` of a DICOM-built dataset) when every row has it: it follows the task's
columns, the manifest lists it (``optional_columns``) and the fingerprint hashes it. A dataset
without it keeps exactly its task's columns and fingerprint.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import BASE_COLUMNS, ExtraColumn, Task

__all__ = [
    "COLUMNS", "META_COLUMNS", "VALUE_DTYPES", "FLOAT_COLUMNS", "INT_COLUMNS", "EXTRA_DTYPES",
    "task_columns", "image_columns", "extra_image_columns", "extra_float_columns",
    "meta_columns", "value_dtype", "PERCENT_SUFFIX", "extra_float_rule", "extra_float_ok",
    "value_text", "parse_value",
    "OPTIONAL_COLUMNS", "with_optional", "optional_columns_in",
]

#: Column order of every shard of a task without extra columns (format v1's base columns).
COLUMNS: tuple[str, ...] = BASE_COLUMNS
#: Every base column but the image, in shard order: what the fingerprint hashes as metadata.
META_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "image")
#: The Hugging Face ``Value`` dtype of each plain column (``image`` and ``label`` have their own).
VALUE_DTYPES: dict[str, str] = {
    "case_id": "string", "patient_id": "string", "center": "string", "fold": "int8",
    "matrix": "int32", "pixel_spacing_mm": "float64", "total_counts": "int64",
    "acquisition_s": "float64", "sex": "string", "age": "int32",
}
FLOAT_COLUMNS: tuple[str, ...] = tuple(c for c, t in VALUE_DTYPES.items() if t.startswith("float"))
INT_COLUMNS: tuple[str, ...] = ("label", *(c for c, t in VALUE_DTYPES.items() if t.startswith("int")))
#: The Hugging Face ``Value`` dtype of a task's extra column of each non-image kind.
EXTRA_DTYPES: dict[str, str] = {"float": "float64", "string": "string"}
#: Columns a dataset may add after its task's when every row has them (see the module docstring).
OPTIONAL_COLUMNS: dict[str, ExtraColumn] = {
    "study_id": ExtraColumn(name="study_id", kind="string", description="pseudonymous study "
                            "(keyed HMAC of the Study Instance UID), for grouping: no study is "
                            "in two splits"),
}
#: A float extra column named ``..._pct`` is a percentage (e.g. ``uptake_pct``, % of the
#: administered activity): its values lie in [0, 100].
PERCENT_SUFFIX = "_pct"


def task_columns(task: Task) -> tuple[str, ...]:
    """Every column of ``task``'s datasets, in shard order (base columns, then extras)."""
    return task.columns


def extra_image_columns(task: Task) -> tuple[str, ...]:
    """The task's extra columns of kind ``image`` (e.g. ``image_posterior``), in order."""
    return tuple(c.name for c in task.extra_columns if c.kind == "image")


def extra_float_columns(task: Task) -> tuple[str, ...]:
    """The task's extra columns of kind ``float`` (e.g. ``uptake_pct``), in order."""
    return tuple(c.name for c in task.extra_columns if c.kind == "float")


def image_columns(task: Task) -> tuple[str, ...]:
    """Every column stored as a 16-bit PNG: ``image``, then the task's extra image columns."""
    return ("image", *extra_image_columns(task))


def meta_columns(task: Task) -> tuple[str, ...]:
    """Every column but the images, in shard order: what the fingerprint hashes as metadata."""
    images = set(image_columns(task))
    return tuple(c for c in task.columns if c not in images)


def value_dtype(task: Task, column: str) -> str:
    """The Hugging Face ``Value`` dtype of a plain (non-image, non-label) column of ``task``."""
    if column in VALUE_DTYPES:
        return VALUE_DTYPES[column]
    kinds = {c.name: c.kind for c in task.extra_columns}
    if column not in kinds or kinds[column] not in EXTRA_DTYPES:
        raise KeyError(f"{column!r} is not a plain column of task {task.name}")
    return EXTRA_DTYPES[kinds[column]]


def _float_bounds(column: str) -> tuple[float, float]:
    """The closed range of a float extra column's values: [0, 100] for a percentage, else
    [0, inf) (the extra floats of format v1 are measured amounts)."""
    return (0.0, 100.0) if column.endswith(PERCENT_SUFFIX) else (0.0, float("inf"))


def extra_float_rule(column: str) -> str:
    """What a value of float extra column ``column`` must be, for error messages."""
    low, high = _float_bounds(column)
    if high == float("inf"):
        return f"a finite number >= {low:g}"
    return f"a finite number from {low:g} to {high:g} (a percentage)"


def extra_float_ok(column: str, value: float) -> bool:
    """Whether ``value`` (not missing) is a valid value of float extra column ``column``: one
    rule for the writer, ``verify`` and the DICOM labels CSV."""
    low, high = _float_bounds(column)
    return math.isfinite(value) and low <= value <= high


def value_text(value: Any) -> str:
    """How a labels file spells a value of a float extra column (``uptake_pct``): empty when not
    measured (``None`` or NaN), else ``repr`` (reads back to the same float64)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return repr(float(value))


def parse_value(column: str, text: str) -> float:
    """The inverse of :func:`value_text`: NaN for an empty cell (not measured), else a value the
    column may hold (``ValueError`` otherwise, naming the rule)."""
    if not text.strip():
        return math.nan
    value = float(text)
    if not extra_float_ok(column, value):
        raise ValueError(f"{column} = {text.strip()!r} is not {extra_float_rule(column)}, nor empty "
                         "(not measured)")
    return value


def with_optional(task: Task, names: Iterable[str]) -> Task:
    """``task`` with the optional columns ``names`` appended to its columns (``task`` itself when
    there are none): what the writer, the shards, the fingerprint and ``verify`` work with."""
    names = tuple(names)
    unknown = [n for n in names if n not in OPTIONAL_COLUMNS]
    if unknown:
        raise DatasetError(f"unknown optional column(s) {unknown}; format v1 knows "
                           f"{sorted(OPTIONAL_COLUMNS)}")
    if not names:
        return task
    return task.model_copy(update={"extra_columns": (*task.extra_columns,
                                                     *(OPTIONAL_COLUMNS[n] for n in names))})


def optional_columns_in(splits: Mapping[str, list[Mapping[str, Any]]]) -> tuple[str, ...]:
    """The optional columns every row of ``splits`` has (in :data:`OPTIONAL_COLUMNS` order);
    :class:`DatasetError` if some rows have one and others do not."""
    rows = [r for split_rows in splits.values() for r in split_rows]
    present = []
    for name in OPTIONAL_COLUMNS:
        having = sum(name in r for r in rows)
        if having and having != len(rows):
            raise DatasetError(f"{having} of {len(rows)} rows have the optional column {name!r}: "
                               "give it for every row or for none")
        if having:
            present.append(name)
    return tuple(present)
