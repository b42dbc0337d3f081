"""The labels CSV of a DICOM archive: one row per study, read and checked in one place.

Columns (header names are case-insensitive; other columns are ignored and never
enter the dataset):

``path``
    the DICOM file, relative to ``--dicom-dir`` (``/`` or ``\\`` separators);
``sop_instance_uid``
    or the file's SOP Instance UID (0008,0018); each row needs one of the two;
``label``
    a schema name (``diffusely_increased``), the paper's type (``I``-``IV``,
    ``type II``) or the class index (0-3);
``center``
    the centre the study comes from (use a neutral code such as ``center1``:
    it is stored in the dataset as written);
``split`` (optional)
    ``train``, ``internal`` or ``external`` for every row, to use an official
    split instead of the seeded patient-level one.

Problems in the file itself are errors naming the line (line 1 is the header):
an unknown label, an empty label, centre or locator, an unknown split, a path
outside the archive, a study listed twice.
"""

from __future__ import annotations

import csv
import io
import posixpath
from dataclasses import dataclass
from pathlib import Path

from thyroid_bench.errors import DatasetError
from thyroid_bench.schema import parse_label

__all__ = ["LabelRow", "SPLIT_VALUES", "read_labels_csv", "normalise_relpath"]

SPLIT_VALUES: tuple[str, ...] = ("train", "internal", "external")
_MAX_LISTED = 20


@dataclass(frozen=True)
class LabelRow:
    """One study of the labels CSV; ``line`` is its line number in the file."""

    line: int
    label: int
    center: str
    path: str | None = None
    sop_instance_uid: str | None = None
    split: str | None = None


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


def read_labels_csv(csv_path: Path) -> tuple[list[LabelRow], bool]:
    """Read and check a labels CSV; return its rows and whether it has a ``split`` column.

    Raises :class:`DatasetError` listing every faulty line at once.
    """
    csv_path = Path(csv_path)
    try:
        text = csv_path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise DatasetError(f"labels CSV {csv_path} not found; pass --labels the CSV "
                           "(columns path or sop_instance_uid, label, center[, split])") from None
    except UnicodeDecodeError as exc:
        raise DatasetError(f"labels CSV {csv_path} is not UTF-8 text ({exc}); save it as UTF-8 CSV") from None
    reader = csv.reader(io.StringIO(text, newline=""))
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
    missing = [c for c in ("label", "center") if c not in columns]
    if "path" not in columns and "sop_instance_uid" not in columns:
        missing.append("path or sop_instance_uid")
    if missing:
        hint = " (spell it 'center')" if "centre" in columns else ""
        problems.append(f"line 1: missing column(s) {missing}{hint}; header is {header}")
    if problems:
        _fail(csv_path, problems)
    has_split = "split" in columns
    index = {c: columns.index(c) for c in ("path", "sop_instance_uid", "label", "center", "split")
             if c in columns}

    rows: list[LabelRow] = []
    seen_path: dict[str, int] = {}
    seen_uid: dict[str, int] = {}
    for cells in reader:
        line = reader.line_num  # physical line where the record ends (header is line 1)
        if not any(c.strip() for c in cells):
            continue  # blank line
        def cell(name: str) -> str:
            i = index.get(name)
            return cells[i].strip() if i is not None and i < len(cells) else ""
        where = f"line {line}"
        raw_path, uid = cell("path"), cell("sop_instance_uid")
        path = None
        if raw_path:
            path = normalise_relpath(raw_path)
            if path is None:
                problems.append(f"{where}: path {raw_path!r} must be relative to --dicom-dir and stay inside it")
        if not raw_path and not uid:
            problems.append(f"{where}: neither path nor sop_instance_uid given: the study cannot be found")
        raw_label = cell("label")
        label = -1
        if not raw_label:
            problems.append(f"{where}: the label is empty: every study needs one "
                            "(diffusely_increased/I, diffusely_decreased/II, focal_increased/III, "
                            "heterogeneous_uptake/IV)")
        else:
            try:
                label = parse_label(raw_label)
            except ValueError as exc:
                problems.append(f"{where}: {exc}")
        center = cell("center")
        if not center:
            problems.append(f"{where}: the center is empty")
        split = None
        if has_split:
            split = cell("split").lower()
            if split not in SPLIT_VALUES:
                problems.append(f"{where}: split {cell('split')!r} is not one of {SPLIT_VALUES} "
                                "(with a split column every row needs one)")
        if path is not None:
            if path in seen_path:
                problems.append(f"{where}: path {path!r} already listed on line {seen_path[path]}")
            seen_path.setdefault(path, line)
        if uid:
            if uid in seen_uid:
                problems.append(f"{where}: sop_instance_uid already listed on line {seen_uid[uid]}")
            seen_uid.setdefault(uid, line)
        rows.append(LabelRow(line=line, label=label, center=center, path=path,
                             sop_instance_uid=uid or None, split=split))
    if problems:
        _fail(csv_path, problems)
    if not rows:
        raise DatasetError(f"labels CSV {csv_path} has a header but no rows; add one row per study")
    return rows, has_split
