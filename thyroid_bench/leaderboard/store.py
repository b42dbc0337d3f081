"""What a leaderboard folder stores, and how it is read back.

A leaderboard is a folder (``leaderboard/`` in the repository)::

    leaderboard/
      README.md  index.html          rendered pages (never edited by hand)
      schema/entry-v1.json           the published JSON Schema of an entry
      entries/<task>/<dataset>@<version>/
        dataset.json                 name, version, fingerprint, synthetic flag, task, rows
        labels/<split>.csv           case_id,label per evaluation split of the task: the truth
                                     the entries are scored on
        <entry id>/entry.json        the entry exactly as submitted (bytes unchanged)
        <entry id>/predictions/<split>.csv

The labels are stored beside the entries so the page can be re-rendered, significance
included, without the dataset at hand. Labels files hold class names of the section's
task and are read back with ``Task.parse_label``. :func:`load_entries` re-checks every
stored entry (schema, known task, predictions hashes) as it reads it.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from thyroid_bench.data.manifest import DatasetRef
from thyroid_bench.evaluation.entry import Entry, EntryError, read_entry
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.errors import LeaderboardError
from thyroid_bench.leaderboard.names import ENTRIES
from thyroid_bench.leaderboard.rules import DEFAULT_LEADERBOARD
from thyroid_bench.tasks import Task, TaskError, get_task

__all__ = ["Truth", "StoredEntry", "read_labels", "write_section_files", "copy_entry", "load_entries"]


@dataclass(frozen=True)
class Truth:
    """The labels of one dataset version's evaluation splits, and what the version is."""

    ref: DatasetRef
    task: Task
    labels: dict[str, dict[str, int]]  # split -> case_id -> class index


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


def read_labels(section_dir: Path, task: Task) -> dict[str, dict[str, int]] | None:
    """``labels/<split>.csv`` of a section, per evaluation split; ``None`` if one is missing."""
    out = {}
    for split in task.eval_splits:
        path = section_dir / "labels" / f"{split}.csv"
        if not path.is_file():
            return None
        try:
            with open(path, newline="", encoding="utf-8") as f:
                rows = list(csv.DictReader(f))
            out[split] = {r["case_id"]: task.parse_label(r["label"]) for r in rows}
        except (KeyError, ValueError, csv.Error) as exc:  # UnicodeDecodeError is a ValueError
            raise LeaderboardError(f"{path}: not a UTF-8 case_id,label file of task {task.name} "
                                   f"({exc}); restore it from git") from None
    return out


def write_section_files(target: Path, truth: Truth) -> None:
    """``dataset.json`` and ``labels/<split>.csv`` (class names, by case id) of a new section."""
    task = truth.task
    (target / "labels").mkdir(parents=True, exist_ok=True)
    info = {**truth.ref.model_dump(), "task": task.name,
            "splits": {s: {"rows": len(truth.labels[s])} for s in task.eval_splits}}
    (target / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for split in task.eval_splits:
        with open(target / "labels" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["case_id", "label"])
            for cid in sorted(truth.labels[split]):
                w.writerow([cid, task.class_names[truth.labels[split][cid]]])


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
    ``check_hashes``, each stored predictions file must still have the SHA-256 its entry
    records (:class:`LeaderboardError` otherwise: the folder was edited by hand).
    """
    root = Path(leaderboard)
    out = []
    for path in sorted((root / ENTRIES).glob("*/*/*/entry.json")):
        try:
            entry = read_entry(path)
            get_task(entry.task)
        except EntryError as exc:
            raise LeaderboardError(f"stored entry unreadable: {exc}") from None
        except TaskError as exc:
            raise LeaderboardError(f"stored entry unreadable: {path}: {exc}") from None
        folder = path.parent
        stored = StoredEntry(entry, folder.name, folder,
                             PurePosixPath(folder.relative_to(root).as_posix()))
        if check_hashes:
            _check_hashes(stored)
        out.append(stored)
    return out


def _check_hashes(stored: StoredEntry) -> None:
    for split, pf in stored.entry.predictions.items():
        p = stored.predictions_path(split)
        if not p.is_file() or sha256_file(p) != pf.sha256:
            raise LeaderboardError(f"{p}: missing or changed since it was submitted (its "
                                   "SHA-256 is not the entry's); restore it from git")
