"""Refusing copies: an entry whose predictions are another entry's (check ``copy``).

Re-scoring proves that an entry's figures follow from its predictions, not that the
predictions came from the model and seed it names: a stored entry's folder, copied with
only ``seed`` or ``model.name`` changed, re-scores perfectly, and one run could pose as
three seeds (shrinking the standard deviation the page shows) or as another model. Two
trainings never give the same probabilities to a millionth on every case, so an entry is
a copy of another (:func:`copy_reason`) when

- a predictions file of any split is byte-identical (the same SHA-256) to one of the
  other entry's, or
- on every case of every evaluation split, its predictions agree with the other's: the
  same most probable class and every probability within :data:`COPY_TOLERANCE` (the same
  predictions re-written: other number formatting, another row order).

``submit`` compares a run with the stored entries and the other runs of the same call
(:func:`~thyroid_bench.leaderboard.checks.check_run`); every load compares the stored
entries with each other (:func:`stored_copies`, called by
:func:`~thyroid_bench.leaderboard.recheck.load_checked`), so a copy added to a leaderboard
folder by hand is found too. Cheap first: hashes compare without reading a file;
predictions are read only for entries of the same task whose splits have the same number
of rows, each file once per process (remembered by its SHA-256), and probabilities
are compared only where the case ids and most probable classes of every split are the
same (compared as one digest).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

import numpy as np

from thyroid_bench.errors import PredictionsError
from thyroid_bench.evaluation.entry import Entry
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.leaderboard.store import StoredEntry
from thyroid_bench.tasks import TaskError, get_task

__all__ = ["COPY_TOLERANCE", "Candidate", "copy_reason", "stored_copies"]

#: Two predictions files agree when every probability is within this of the other's.
COPY_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Candidate:
    """An entry another is compared with: the entry, its id, and the folder holding its
    predictions files (``None``: compared by the hashes its entry records only)."""

    entry: Entry
    name: str
    folder: Path | None = None

    @classmethod
    def of(cls, item: Entry | StoredEntry) -> Candidate:
        """A stored entry (or a run staged as one) with its files, or a bare entry."""
        if isinstance(item, StoredEntry):
            return cls(item.entry, item.entry_id, item.folder)
        return cls(item, item.run_id)

    def describe(self) -> str:
        """How a message names it: its id, model and seed, and where it is."""
        where = f" at {self.folder}" if self.folder is not None else ""
        return f"entry {self.name} (model {self.entry.model.name}, seed {self.entry.seed}){where}"


def copy_reason(entry: Entry, folder: Path, others: Iterable[Candidate]) -> str | None:
    """Why the entry whose files are in ``folder`` is a copy of one of ``others`` (naming
    it), or ``None``. Its predictions files must already have the SHA-256 it records."""
    others = list(others)
    reason = _same_file(entry, others)
    if reason is None:
        reason = _same_predictions(Candidate(entry, entry.run_id, folder), others)
    return reason


def stored_copies(entries: Sequence[StoredEntry]) -> dict[Path, str]:
    """The stored entries that copy an earlier one (by date, then path), each with the
    reason naming the entry it copies; the first of two copies is kept."""
    kept: list[Candidate] = []
    found: dict[Path, str] = {}
    for stored in sorted(entries, key=lambda s: (s.entry.date, str(s.folder))):
        reason = copy_reason(stored.entry, stored.folder, kept)
        if reason is None:
            kept.append(Candidate.of(stored))
        else:
            found[stored.folder] = reason
    return found


# --------------------------------------------------------------------------- byte-identical files
def _same_file(entry: Entry, others: Sequence[Candidate]) -> str | None:
    """``entry`` has a predictions file with the SHA-256 of one of the others'."""
    by_hash = {pf.sha256: (other, split) for other in reversed(others)
               for split, pf in other.entry.predictions.items()}
    for split, pf in entry.predictions.items():
        if pf.sha256 in by_hash:
            other, their_split = by_hash[pf.sha256]
            return (f"its {split} predictions ({pf.path}) are byte-identical (SHA-256 "
                    f"{pf.sha256[:12]}...) to the {their_split} predictions of "
                    f"{other.describe()}: {_ADVICE}")
    return None


_ADVICE = ("an entry must hold the predictions of its own run (a copy with another seed or "
           "model name would pose as a second run); submit each run once, as the model and "
           "seed that made it")


# --------------------------------------------------------------------------- agreeing predictions
@dataclass(frozen=True)
class _Split:
    """One predictions file in case-id order: the ids, the probabilities, the top class."""

    ids: tuple[str, ...]
    probs: np.ndarray
    top: np.ndarray


def _same_predictions(mine: Candidate, others: Sequence[Candidate]) -> str | None:
    """``mine`` agrees with one of the others on every case of every split."""
    shape = _shape(mine.entry)
    comparable = [o for o in others if o.folder is not None and _shape(o.entry) == shape]
    if not comparable:
        return None
    signature = _signature(mine)
    if signature is None:
        return None
    for other in comparable:
        theirs = _signature(other)
        if theirs is not None and theirs[0] == signature[0] and _agree(signature[1], theirs[1]):
            splits = ", ".join(signature[1])
            return (f"its predictions agree with those of {other.describe()} on every case of "
                    f"every split ({splits}: the same most probable class, every probability "
                    f"within {COPY_TOLERANCE:g}): they are that run's predictions; {_ADVICE}")
    return None


def _shape(entry: Entry) -> tuple:
    """What two entries must share to be compared: task, splits and rows per split."""
    return (entry.task, tuple(sorted((s, pf.rows) for s, pf in entry.predictions.items())))


def _agree(a: dict[str, _Split], b: dict[str, _Split]) -> bool:
    return all(np.abs(a[s].probs - b[s].probs).max(initial=0.0) <= COPY_TOLERANCE for s in a)


def _signature(c: Candidate) -> tuple[str, dict[str, _Split]] | None:
    """A digest of the case ids and top classes of every split, and the splits; ``None`` if
    a file cannot be read (the entry's own checks report that)."""
    assert c.folder is not None
    splits = {}
    for split in sorted(c.entry.predictions):
        pf = c.entry.predictions[split]
        read = _read(c.folder.joinpath(*PurePosixPath(pf.path).parts), pf.sha256, c.entry.task)
        if read is None:
            return None
        splits[split] = read
    h = hashlib.sha256()
    for split, s in splits.items():
        h.update(split.encode() + b"\0" + "\0".join(s.ids).encode() + b"\0" + s.top.tobytes())
    return h.hexdigest(), splits


#: Predictions files read in this process, by (SHA-256, task): the same bytes read the same.
_READ: dict[tuple[str, str], _Split | None] = {}
_READ_MAX = 4096


def _read(path: Path, sha256: str, task: str) -> _Split | None:
    """A predictions file, which has been checked to have ``sha256`` (remembered by it)."""
    key = (sha256, task)
    if key not in _READ:
        if len(_READ) >= _READ_MAX:
            _READ.clear()
        try:
            preds = read_predictions(path, get_task(task))
        except (PredictionsError, TaskError):
            _READ[key] = None
        else:
            order = sorted(range(len(preds.case_ids)), key=preds.case_ids.__getitem__)
            probs = preds.probs[order]
            _READ[key] = _Split(tuple(preds.case_ids[i] for i in order), probs, probs.argmax(axis=1))
    return _READ[key]
