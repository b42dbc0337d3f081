"""The columns of dataset format v1, declared once: order, Hugging Face dtype, hashing class.

The column list is the task layer's (:data:`thyroid_bench.tasks.BASE_COLUMNS`, then the
task's ``extra_columns``); this module says how each is stored and hashed. A task's extra
column of kind ``image`` is stored like ``image`` (a 16-bit grayscale PNG of the counts);
one of kind ``float`` is a ``float64`` value, null when missing.
"""

from __future__ import annotations

import math

from thyroid_bench.tasks import BASE_COLUMNS, Task

__all__ = [
    "COLUMNS", "META_COLUMNS", "VALUE_DTYPES", "FLOAT_COLUMNS", "INT_COLUMNS", "EXTRA_DTYPES",
    "task_columns", "image_columns", "extra_image_columns", "extra_float_columns",
    "meta_columns", "value_dtype", "PERCENT_SUFFIX", "extra_float_rule", "extra_float_ok",
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
EXTRA_DTYPES: dict[str, str] = {"float": "float64"}
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
