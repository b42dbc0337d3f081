"""What a leaderboard folder stores, and how it is read back.

A leaderboard is a folder (``leaderboard/`` in the repository)::

    leaderboard/
      README.md  index.html          rendered pages (never edited by hand)
      schema/entry-v1.json           the published JSON Schema of an entry
      entries/<task>/<dataset>@<version>/
        dataset.json                 name, version, fingerprint, synthetic flag, task, and per
                                     evaluation split its rows and the SHA-256 of its labels file
        labels/<split>.csv           case_id,label[,<regression target>] per evaluation split
                                     of the task: the truth the entries are scored on (none
                                     for a split whose labels are withheld: dataset.json marks
                                     it private, :mod:`~thyroid_bench.leaderboard.withheld`)
        <entry id>/entry.json        the entry exactly as submitted (bytes unchanged)
        <entry id>/predictions/<split>.csv
        <entry id>/scores.json       the figures of the withheld splits, checked at submission

The labels are stored beside the entries so the page can be re-rendered, significance
included, and every entry re-scored, without the dataset at hand. Labels files hold class
names of the section's task (written by ``Task.label_text``, read back with ``Task.label_from_text``), the task's
``Detection.present_label`` for a case known present but of unknown class (label
``UNKNOWN_GRADE``), and, for a task with a regression target (``uptake_pct``), that column
too (empty when not measured; anything but a value the dataset could hold is refused).
:func:`load_entries` re-checks every stored entry (schema, known task, its own SHA-256
against its folder name, its section, predictions hashes) as it reads it; the labels files
are read only if they still have the SHA-256 that ``dataset.json`` pins
(:func:`read_section_record`). Their scores are recomputed on every load by
:mod:`thyroid_bench.leaderboard.recheck`.
"""

from __future__ import annotations

import csv
import json
import math
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_serializer, model_validator

from thyroid_bench.bounds import loads_strict
from thyroid_bench.data.columns import parse_value, value_text
from thyroid_bench.data.manifest import DatasetRef
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.evaluation.entry import Entry, EntryError, read_entry
from thyroid_bench.errors import validation_problems
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.errors import LeaderboardError
from thyroid_bench.leaderboard.names import ENTRIES, entry_id, section_rel
from thyroid_bench.leaderboard.rules import DEFAULT_LEADERBOARD
from thyroid_bench.tasks import Task, TaskError, get_task

__all__ = ["Truth", "StoredEntry", "SectionSplit", "SectionRecord", "value_columns",
           "read_section_record", "private_splits", "read_labels", "read_label_values",
           "section_truth", "write_section_files", "copy_entry", "entry_files", "load_entry",
           "load_entries"]


@dataclass(frozen=True)
class Truth:
    """The labels of one dataset version's evaluation splits, and what the version is."""

    ref: DatasetRef
    task: Task
    labels: dict[str, dict[str, int]]  # split -> case_id -> class index (or UNKNOWN_GRADE)
    # split -> regression column -> case_id -> value (NaN: not measured); empty without one
    values: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    # split -> SHA-256 of the organisers' labels file, for each split whose labels are withheld
    # (:mod:`thyroid_bench.leaderboard.withheld`); ``labels`` has such a split only when the
    # organisers' labels file was given
    withheld: dict[str, str] = field(default_factory=dict)


@dataclass
class StoredEntry:
    """An entry on the leaderboard: the validated entry and where its files are."""

    entry: Entry
    entry_id: str
    folder: Path           # the folder holding entry.json (may be a staging folder)
    rel: PurePosixPath     # its path relative to the leaderboard folder

    @property
    def task(self) -> Task:
        """The entry's task."""
        return get_task(self.entry.task)

    def predictions_path(self, split: str) -> Path:
        """The stored predictions CSV of ``split``."""
        return self.folder.joinpath(*PurePosixPath(self.entry.predictions[split].path).parts)


class SectionSplit(BaseModel):
    """One evaluation split of a section: its cases, and the SHA-256 of ``labels/<split>.csv``
    (of a ``private`` split, whose labels are withheld and not stored: of the organisers' labels
    file)."""

    model_config = ConfigDict(extra="forbid")

    rows: int = Field(ge=0)
    sha256: str = Field(pattern=r"^[0-9a-f]{64}$", description="SHA-256 of labels/<split>.csv, "
                        "or of the organisers' labels file for a private split")
    private: bool = Field(default=False, description="labels withheld: no labels/<split>.csv")

    @model_serializer(mode="wrap")
    def _omit_public(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not data.get("private"):
            data.pop("private", None)  # records of public splits stay as they were
        return data


class SectionRecord(DatasetRef):
    """A section's ``dataset.json``: the dataset version, its task, and its pinned labels files."""

    task: str
    splits: dict[str, SectionSplit]

    @model_validator(mode="after")
    def _private_splits(self) -> "SectionRecord":
        """Withheld labels are one organisers' file, and never an official version's: its labels
        are published, so a section of it marked private is a hand edit hiding them (and the
        figures stored for such a split could then not be re-scored)."""
        private = {s.sha256 for s in self.splits.values() if s.private}
        if private and pinned_fingerprint(self.name, self.version) is not None:
            raise ValueError(f"{self.name} {self.version} is an official version, whose labels are "
                             "public: none of its splits can be private")
        if len(private) > 1:
            raise ValueError("private splits name different organisers' labels files (one file "
                             "holds every withheld split)")
        return self

    @property
    def ref(self) -> DatasetRef:
        """The dataset version alone."""
        return DatasetRef(name=self.name, version=self.version, fingerprint=self.fingerprint,
                          synthetic=self.synthetic)


def read_section_record(section_dir: Path) -> SectionRecord:
    """A section's ``dataset.json``, validated (:class:`LeaderboardError` otherwise: a section
    written before labels were pinned, or one edited by hand)."""
    path = section_dir / "dataset.json"
    try:
        data = loads_strict(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:  # strict JSON and Unicode errors are ValueErrors
        raise LeaderboardError(f"{path}: missing or not strict JSON ({exc}); restore it from "
                               "git") from None
    try:
        return SectionRecord.model_validate(data)
    except ValidationError as exc:
        hint = ""
        if isinstance(data, dict) and isinstance(data.get("splits"), dict) and any(
                isinstance(s, dict) and "sha256" not in s for s in data["splits"].values()):
            hint = (" (a section written before labels files were pinned: add "
                    "splits.<split>.sha256, the SHA-256 of labels/<split>.csv, once the labels "
                    "are checked against the dataset)")
        raise LeaderboardError(f"{path}: not a valid section record: "
                               f"{validation_problems(exc, 5)}{hint}") from None



def value_columns(task: Task) -> tuple[str, ...]:
    """The float columns stored beside the labels: the task's regression target, if any."""
    return () if task.regression_target is None else (task.regression_target,)


def _read_labels_file(path: Path, task: Task) -> tuple[dict[str, int], dict[str, dict[str, float]]]:
    """One ``labels/<split>.csv``: case_id -> label, and column -> case_id -> value."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        labels = {r["case_id"]: task.label_from_text(r["label"]) for r in rows}
        values = {col: {r["case_id"]: parse_value(col, r[col]) for r in rows}
                  for col in value_columns(task)}
    except (KeyError, ValueError, AttributeError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
        columns = ",".join(("case_id", "label", *value_columns(task)))
        raise LeaderboardError(f"{path}: not a UTF-8 {columns} file of task {task.name} "
                               f"({exc}); restore it from git") from None
    return labels, values



def private_splits(section_dir: Path) -> dict[str, str]:
    """The section's splits whose labels are withheld (not stored), each with the SHA-256 of the
    organisers' labels file; empty without any (or without ``dataset.json``)."""
    if not (section_dir / "dataset.json").is_file():
        return {}
    return {s: m.sha256 for s, m in read_section_record(section_dir).splits.items() if m.private}


def _read_section_labels(section_dir: Path, task: Task) -> dict[str, tuple] | None:
    """Per evaluation split whose labels are stored (not withheld), the labels file read back,
    once its SHA-256 and rows are the ones ``dataset.json`` pins (:class:`LeaderboardError`
    otherwise); ``None`` if a file is missing."""
    withheld = private_splits(section_dir)
    paths = {split: section_dir / "labels" / f"{split}.csv" for split in task.eval_splits
             if split not in withheld}
    if not all(p.is_file() for p in paths.values()):
        return None
    record = read_section_record(section_dir)
    out = {}
    for split, path in paths.items():
        pinned = record.splits.get(split)
        sha = sha256_file(path)
        if pinned is None:
            raise LeaderboardError(f"{section_dir / 'dataset.json'} pins no labels file for split "
                                   f"{split}; restore it from git")
        if sha != pinned.sha256:
            raise LeaderboardError(
                f"{path}: changed since it was stored (its SHA-256 {sha[:12]}... is not the one "
                f"{section_dir / 'dataset.json'} pins for split {split}); restore it from git")
        out[split] = _read_labels_file(path, task)
        if len(out[split][0]) != pinned.rows:
            raise LeaderboardError(f"{path}: {len(out[split][0])} distinct cases, "
                                   f"{section_dir / 'dataset.json'} records {pinned.rows}; restore "
                                   "both from git")
    return out


def read_labels(section_dir: Path, task: Task) -> dict[str, dict[str, int]] | None:
    """``labels/<split>.csv`` of a section, per evaluation split; ``None`` if one is missing."""
    files = _read_section_labels(section_dir, task)
    return None if files is None else {split: labels for split, (labels, _) in files.items()}


def read_label_values(section_dir: Path, task: Task) -> dict[str, dict[str, dict[str, float]]] | None:
    """The regression columns of a section's labels files: split -> column -> case_id -> value
    (NaN where not measured); ``None`` if a file is missing."""
    files = _read_section_labels(section_dir, task)
    return None if files is None else {split: values for split, (_, values) in files.items()}


def section_truth(section_dir: Path, task: Task) -> Truth:
    """The truth a stored section's entries are scored on: its dataset version (from
    ``dataset.json``, which must be of ``task``) and its pinned labels files."""
    record = read_section_record(section_dir)
    if record.task != task.name:
        raise LeaderboardError(f"{section_dir / 'dataset.json'}: a section of task {record.task}, "
                               f"not {task.name}; restore it from git")
    files = _read_section_labels(section_dir, task)
    if files is None:
        raise LeaderboardError(f"{section_dir / 'labels'}: a labels file of "
                               f"{list(task.eval_splits)} is missing; restore it from git")
    return Truth(record.ref, task, {s: labels for s, (labels, _) in files.items()},
                 {s: values for s, (_, values) in files.items()}, private_splits(section_dir))



def write_section_files(target: Path, truth: Truth) -> None:
    """``labels/<split>.csv`` (class names and the task's regression target, by case id) of a
    new section, and its ``dataset.json`` pinning each labels file's SHA-256; a split whose
    labels are withheld gets no labels file, only its record (``private``, the SHA-256 of the
    organisers' labels file)."""
    task = truth.task
    (target / "labels").mkdir(parents=True, exist_ok=True)
    columns = value_columns(task)
    for split in task.eval_splits:
        if split in truth.withheld:
            continue
        values = truth.values.get(split, {})
        with open(target / "labels" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["case_id", "label", *columns])
            for cid in sorted(truth.labels[split]):
                w.writerow([cid, task.label_text(truth.labels[split][cid]),
                            *(value_text(values.get(col, {}).get(cid, math.nan)) for col in columns)])
    record = SectionRecord(**truth.ref.model_dump(), task=task.name, splits={
        s: SectionSplit(rows=len(truth.labels[s]), sha256=truth.withheld[s], private=True)
        if s in truth.withheld else
        SectionSplit(rows=len(truth.labels[s]), sha256=sha256_file(target / "labels" / f"{s}.csv"))
        for s in task.eval_splits})
    (target / "dataset.json").write_text(json.dumps(record.model_dump(), indent=2) + "\n",
                                         encoding="utf-8")


def copy_entry(run_dir: Path, entry: Entry, dest: Path) -> None:
    """Copy a run's ``entry.json`` and its evaluation splits' predictions into ``dest``."""
    (dest / "predictions").mkdir(parents=True)
    shutil.copyfile(run_dir / "entry.json", dest / "entry.json")
    for split in get_task(entry.task).eval_splits:
        rel = PurePosixPath(entry.predictions[split].path)
        (dest.joinpath(*rel.parts)).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(run_dir.joinpath(*rel.parts), dest.joinpath(*rel.parts))


def load_entries(leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD, *,
                 check_hashes: bool = True) -> list[StoredEntry]:
    """Every entry stored under ``<leaderboard>/entries``, sorted by path.

    Each must be a valid entry of a known task (:class:`LeaderboardError` otherwise). With
    ``check_hashes``, each ``entry.json`` must still be the file its folder was named after
    (the folder name ends in the first 8 hex of its SHA-256, :func:`~thyroid_bench.leaderboard.
    names.entry_id`) in the section of its own task and dataset version, and each stored
    predictions file must still have the SHA-256 its entry records (:class:`LeaderboardError`
    otherwise: the folder was edited by hand).
    """
    root = Path(leaderboard)
    return [load_entry(path, root, check_hashes=check_hashes) for path in entry_files(root)]


def entry_files(root: Path) -> list[Path]:
    """The ``entry.json`` files stored under ``<root>/entries``, sorted by path."""
    return sorted((root / ENTRIES).glob("*/*/*/entry.json"))


def load_entry(path: Path, root: Path, *, check_hashes: bool = True) -> StoredEntry:
    """One stored ``entry.json`` of the leaderboard ``root``, checked as :func:`load_entries` says."""
    try:
        entry = read_entry(path)
        get_task(entry.task)
    except EntryError as exc:
        raise LeaderboardError(f"stored entry unreadable: {exc}") from None
    except TaskError as exc:
        raise LeaderboardError(f"stored entry unreadable: {path}: {exc}") from None
    folder = path.parent
    stored = StoredEntry(entry, folder.name, folder, PurePosixPath(folder.relative_to(root).as_posix()))
    if check_hashes:
        _check_stored_entry(path, stored, root)
        _check_hashes(stored)
    return stored


def _check_stored_entry(path: Path, stored: StoredEntry, root: Path) -> None:
    """The stored entry.json is the one submitted (its hash names its folder) and sits in the
    section of its own task and dataset version (an entry edited or relabelled by hand is not)."""
    sha = sha256_file(path)
    if not stored.folder.name.endswith(f"-{sha[:8]}"):
        raise LeaderboardError(f"{path}: changed since it was submitted (its SHA-256 {sha[:8]}... "
                               f"is not the one its folder {stored.folder.name} was named after); "
                               "restore it from git")
    if stored.folder.name != entry_id(stored.entry, sha):  # model, protocol and seed name it too
        raise LeaderboardError(f"{path}: stored in folder {stored.folder.name}, but its model, "
                               f"protocol and seed name it {entry_id(stored.entry, sha)}; restore "
                               "it from git")
    section = section_rel(stored.entry)
    if stored.folder.parent != root.joinpath(*section.parts):
        raise LeaderboardError(f"{path}: an entry of task {stored.entry.task} on "
                               f"{stored.entry.dataset.spec} stored outside its section {section}; "
                               "restore it from git")


def _check_hashes(stored: StoredEntry) -> None:
    for split, pf in stored.entry.predictions.items():
        p = stored.predictions_path(split)
        if not p.is_file() or sha256_file(p) != pf.sha256:
            raise LeaderboardError(f"{p}: missing or changed since it was submitted (its "
                                   "SHA-256 is not the entry's); restore it from git")
