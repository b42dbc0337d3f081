"""Private evaluation labels: evaluation splits whose labels stay with the organisers.

``thyroid-bench prepare ... --private-labels external`` (or ``internal,external``) writes the
publishable version folder without the labels of the named evaluation splits, and the
organisers' labels file outside it (grand-challenge style: participants predict, the organisers
score):

- A withheld split keeps format v1's columns, so every reader and plain
  ``datasets.load_dataset(folder)`` work unchanged: its ``label`` is -1 on every row (Hugging
  Face's "no label", as in GLUE's test splits; :data:`WITHHELD_LABEL`) and its regression target
  (``uptake_pct``) is null. The manifest's ``private_labels.splits`` names the split, so -1 there
  never means "present, grade unknown". Nothing else derived from its labels is published: its
  class counts (manifest, card) are empty, the per-split class counts in a synthetic cohort's
  provenance read ``"withheld"``, a DICOM source's ``grades_known`` counts the public splits
  only, and the preview leaves the split out. The fingerprint hashes what the folder holds.
- The organisers' labels file (:data:`LABELS_FILE`, by default
  ``<home>/private/<name>@<version>/labels.csv``; never inside the version folder; readable by
  its owner only) is a CSV ``split,case_id,label[,<regression target>]`` in split and case-id
  order: labels as class names (the task's present label for "present, grade unknown"), a
  regression value empty when not measured. The manifest records its SHA-256
  (``private_labels.sha256``); ``submit --private-labels FILE`` and ``leaderboard
  --private-labels FILE`` accept only that file (:func:`read_labels_file`).

A synthetic cohort built this way is an unofficial variant named ``<cohort>-private`` (e.g.
``tsb-synthetic-private``; :func:`private_name`), since the official fingerprint covers the
labels. Its labels are no secret (the generator and its seed are public): it shows the
mechanism, it is not a blind test.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from thyroid_bench.atomic import atomic_write_private, check_output_file
from thyroid_bench.data.columns import parse_value, value_text
from thyroid_bench.data.manifest import Manifest, PrivateLabels, read_manifest
from thyroid_bench.errors import DatasetError, ThyroidBenchError, os_error_line
from thyroid_bench.tasks import SPLITS, TRAIN_SPLIT, UNKNOWN_GRADE, Task

__all__ = ["WITHHELD_LABEL", "PRIVATE_SUFFIX", "PRIVATE_FOLDER", "LABELS_FILE", "WithheldLabels",
           "PrivateTruth", "private_splits", "private_name", "default_labels_path",
           "check_labels_path", "public_rows", "withheld_labels", "redact_provenance", "labels_message",
           "write_labels_file", "read_labels_file", "withheld_splits", "split_problems",
           "card_section"]

#: The label of every row of a withheld split: Hugging Face's "no label".
WITHHELD_LABEL = -1
#: What a synthetic cohort's name gets when its evaluation labels are withheld.
PRIVATE_SUFFIX = "-private"
#: The folder of the dataset home that holds the organisers' labels files.
PRIVATE_FOLDER = "private"
#: The organisers' labels file's name there.
LABELS_FILE = "labels.csv"
#: Provenance keys that hold class counts per split (the synthetic cohorts').
_COUNT_KEYS = ("table1_counts", "counts", "counts_override")
#: A labels file larger than this is refused unread (a million cases is about 50 MB).
_MAX_LABELS_BYTES = 256 * 1024 * 1024


def private_splits(spec: str | Iterable[str] | None, task: Task) -> tuple[str, ...]:
    """The splits ``spec`` withholds (``"external"``, ``"internal,external"`` or a list), in the
    task's order; :class:`DatasetError` for ``train`` (its labels are what users train on), an
    unknown split or one the task does not evaluate."""
    if spec is None:
        return ()
    names = [s.strip() for s in (spec.split(",") if isinstance(spec, str) else spec)]
    names = [s for s in names if s]
    evaluated = list(task.eval_splits)
    if TRAIN_SPLIT in names:
        raise DatasetError(f"--private-labels {','.join(names)}: the {TRAIN_SPLIT} split's labels are "
                           f"what users train on and cannot be withheld; name evaluation splits "
                           f"({', '.join(evaluated)})")
    bad = [s for s in names if s not in evaluated]
    if bad or not names or len(set(names)) != len(names):
        raise DatasetError(f"--private-labels {','.join(names) or spec!r}: expected distinct evaluation "
                           f"splits of task {task.name}, comma-separated ({', '.join(evaluated)})")
    return tuple(s for s in evaluated if s in names)


def private_name(name: str) -> str:
    """The name of a variant of dataset ``name`` with withheld labels: ``<name>-private``."""
    return name if name.endswith(PRIVATE_SUFFIX) else name + PRIVATE_SUFFIX


def default_labels_path(home: Path, name: str, version: str) -> Path:
    """Where the organisers' labels file goes by default: ``<home>/private/<name>@<version>/labels.csv``."""
    return Path(home) / PRIVATE_FOLDER / f"{name}@{version}" / LABELS_FILE


def check_labels_path(path: Path, target: Path) -> Path:
    """``path`` may hold the organisers' labels file of the version folder ``target``: it is not
    inside ``target`` (which is published) and is not a folder; :class:`DatasetError` otherwise."""
    path = Path(path).expanduser()
    try:
        inside = path.resolve().is_relative_to(Path(target).resolve())
    except (OSError, RuntimeError) as exc:  # a link loop, a folder that cannot be searched
        raise DatasetError(f"the organisers' labels file {path}: its folder cannot be resolved "
                           f"({type(exc).__name__}); give another path") from None
    if inside:
        raise DatasetError(f"the organisers' labels file {path} would be inside the dataset folder "
                           f"{target}, which is published; give a path outside it")
    try:
        check_output_file(path, "the organisers' labels file")
    except ThyroidBenchError as exc:
        raise DatasetError(str(exc)) from None
    if path.exists() and not _is_labels_file(path):
        raise DatasetError(f"the organisers' labels file {path} exists and is not an organisers' "
                           "labels file (it does not start with split,case_id,label): it is never "
                           "overwritten; give a new path")
    return path


def _is_labels_file(path: Path) -> bool:
    """Whether ``path`` is an earlier organisers' labels file (replaced when a version is rebuilt)."""
    try:
        with open(path, "rb") as f:
            return f.read(len(b"split,case_id,label")) == b"split,case_id,label"
    except OSError:
        return False


# --------------------------------------------------------------------------- writing
def public_rows(rows: Iterable[Mapping[str, Any]], task: Task) -> list[dict[str, Any]]:
    """The rows of a withheld split as published: label -1, the regression target null."""
    blank = {task.regression_target: None} if task.regression_target else {}
    return [{**row, "label": WITHHELD_LABEL, **blank} for row in rows]


@dataclass(frozen=True)
class WithheldLabels:
    """The organisers' labels file of a dataset version, and what its manifest records of it."""

    splits: tuple[str, ...]
    columns: tuple[str, ...]
    content: bytes

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.content).hexdigest()

    def record(self) -> PrivateLabels:
        """The manifest's ``private_labels``."""
        return PrivateLabels(splits=list(self.splits), sha256=self.sha256, columns=list(self.columns))


def _columns(task: Task) -> tuple[str, ...]:
    return ("split", "case_id", "label", *([task.regression_target] if task.regression_target else []))




def withheld_labels(splits: Mapping[str, Sequence[Mapping[str, Any]]], withheld: Sequence[str],
                    task: Task) -> WithheldLabels:
    """The organisers' labels file of ``withheld`` splits of ``splits`` (rows as the writer
    takes them, already checked), in split then case-id order."""
    columns = _columns(task)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(columns)
    for split in withheld:
        for row in sorted(splits[split], key=lambda r: str(r["case_id"])):
            value = [value_text(row.get(task.regression_target))] if task.regression_target else []
            writer.writerow([split, str(row["case_id"]), task.label_text(int(row["label"])), *value])
    return WithheldLabels(tuple(withheld), columns, buf.getvalue().encode("utf-8"))


def redact_provenance(provenance: Mapping[str, Any], splits: Mapping[str, Sequence[Mapping[str, Any]]],
                      withheld: Sequence[str]) -> dict[str, Any]:
    """``provenance`` without what it says of the withheld splits' labels: per-split class counts
    (:data:`_COUNT_KEYS`) read ``"withheld"``; a DICOM source's ``labels_csv.grades_known`` is
    recomputed over the public splits."""
    out = dict(provenance)
    if not withheld:
        return out
    for key in _COUNT_KEYS:
        if isinstance(out.get(key), Mapping):
            out[key] = {s: ("withheld" if s in withheld else v) for s, v in out[key].items()}
    labels_csv = out.get("labels_csv")
    if isinstance(labels_csv, Mapping) and "grades_known" in labels_csv:
        public = [r for s in SPLITS if s not in withheld for r in splits[s]]
        out["labels_csv"] = {**labels_csv,
                             "grades_known": all(int(r["label"]) != UNKNOWN_GRADE for r in public)}
    return out


def labels_message(path: Path, splits: Sequence[str]) -> str:
    """What ``prepare`` says of the organisers' labels file: where it is, and not to publish it."""
    return (f"labels of {', '.join(splits)} withheld: the organisers' labels file is {path} "
            "(PRIVATE: never publish it, nor put it in the dataset folder; `thyroid-bench submit "
            "RUN_DIR --private-labels` takes it to score runs)")


def write_labels_file(path: Path, content: bytes) -> Path:
    """Write the organisers' labels file atomically, readable by its owner only (a new folder
    for it is the owner's only too); an OS error is one line naming the path."""
    path = Path(path).expanduser()
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        return atomic_write_private(path, content)
    except OSError as exc:
        raise DatasetError(os_error_line(exc, "writing the organisers' labels file (nothing was "
                                         "published)", "give another --private-labels-file")) from None


# --------------------------------------------------------------------------- reading
@dataclass(frozen=True)
class PrivateTruth:
    """The labels of the withheld splits, as the organisers' labels file holds them."""

    sha256: str
    labels: dict[str, dict[str, int]]                    # split -> case_id -> class index
    values: dict[str, dict[str, dict[str, float]]]       # split -> column -> case_id -> value (NaN)


def _read_bytes(path: Path) -> bytes:
    try:
        if path.stat().st_size > _MAX_LABELS_BYTES:
            raise DatasetError(f"--private-labels {path}: larger than a labels file may be "
                               f"({_MAX_LABELS_BYTES} bytes); give the organisers' labels.csv")
        return path.read_bytes()
    except FileNotFoundError:
        raise DatasetError(f"--private-labels {path}: no such file; give the organisers' labels "
                           "file that `thyroid-bench prepare --private-labels` wrote") from None
    except OSError as exc:
        raise DatasetError(os_error_line(exc, f"--private-labels {path}: cannot be read",
                                         "check the path and its permissions")) from None


def read_labels_file(path: str | os.PathLike, task: Task, *, sha256: str, splits: Sequence[str],
                     what: str) -> PrivateTruth:
    """The organisers' labels file at ``path``, once its SHA-256 is ``sha256`` (what ``what``, a
    dataset's manifest or a leaderboard section, records) and it holds exactly ``splits``;
    :class:`DatasetError` naming the file and what to do otherwise."""
    path = Path(path).expanduser()
    content = _read_bytes(path)
    digest = hashlib.sha256(content).hexdigest()
    if digest != sha256:
        raise DatasetError(f"--private-labels {path}: its SHA-256 {digest[:12]}... is not the "
                           f"{sha256[:12]}... that {what} records: it is not this dataset's "
                           "organisers' labels file (or it was edited); give the labels.csv that "
                           "`thyroid-bench prepare --private-labels` wrote for it")
    try:
        rows = list(csv.reader(io.StringIO(content.decode("utf-8"), newline="")))
        truth = _parse_rows(rows, task, splits)
    except (ValueError, IndexError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        raise DatasetError(f"--private-labels {path}: not a labels file of task {task.name} "
                           f"({exc})") from None
    return PrivateTruth(digest, *truth)


def _parse_rows(rows: list[list[str]], task: Task, splits: Sequence[str]) -> tuple[dict, dict]:
    columns = _columns(task)
    if not rows or tuple(rows[0]) != columns:
        raise ValueError(f"expected the header {','.join(columns)}")
    labels: dict[str, dict[str, int]] = {s: {} for s in splits}
    values: dict[str, dict[str, dict[str, float]]] = {
        s: {c: {} for c in columns[3:]} for s in splits}
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(columns) or row[0] not in labels or not row[1] or row[1] in labels[row[0]]:
            raise ValueError(f"line {n}: expected a row of {len(columns)} cells, a split of "
                             f"{list(splits)} and a case_id not seen before")
        labels[row[0]][row[1]] = task.label_from_text(row[2])
        for column, cell in zip(columns[3:], row[3:]):
            values[row[0]][column][row[1]] = parse_value(column, cell)
    empty = [s for s in splits if not labels[s]]
    if empty:
        raise ValueError(f"no case of split(s) {empty}")
    return labels, values




# --------------------------------------------------------------------------- checking and describing
def withheld_splits(path: str | os.PathLike) -> tuple[str, ...]:
    """The withheld evaluation splits of the dataset folder ``path`` (empty for most)."""
    return read_manifest(path).withheld_splits


def split_problems(split: str, table: pd.DataFrame, task: Task) -> list[str]:
    """What is wrong with a withheld split as ``verify`` reads it: a label other than -1, or a
    regression value, would publish what the organisers withhold."""
    problems = []
    labelled = table.loc[table["label"] != WITHHELD_LABEL, "case_id"].tolist()
    if labelled:
        problems.append(f"split {split}: its labels are withheld (manifest private_labels), but "
                        f"case(s) {labelled[:5]} have a label other than {WITHHELD_LABEL}")
    target = task.regression_target
    if target and target in table and table[target].notna().any():
        cases = table.loc[table[target].notna(), "case_id"].tolist()
        problems.append(f"split {split}: its labels are withheld, but case(s) {cases[:5]} have "
                        f"a {target} value")
    return problems


def card_section(manifest: Manifest) -> str:
    """The card's paragraph on withheld labels (empty when none are)."""
    if manifest.private_labels is None:
        return ""
    splits = ", ".join(f"`{s}`" for s in manifest.withheld_splits)
    target = manifest.get_task().regression_target
    blank = f" and its `{target}` is empty" if target else ""
    return (f"## Private evaluation labels\n\nThe labels of {splits} are withheld by the organisers: "
            f"there every `label` is {WITHHELD_LABEL} (no label){blank}, and the class counts are not "
            "published. Predict on it as on any split; the organisers score the predictions with "
            f"their labels file (SHA-256 `{manifest.private_labels.sha256}`, recorded in the "
            "manifest): `thyroid-bench submit RUN_DIR --private-labels labels.csv`.")
