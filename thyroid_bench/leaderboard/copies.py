"""Refusing copies: an entry whose predictions are another entry's (check ``copy``).

Re-scoring proves that an entry's figures follow from its predictions, not that the
predictions came from the model and seed it names: a stored entry's folder, copied with
only ``seed`` or ``model.name`` changed, re-scores perfectly, and one run could pose as
three seeds (shrinking the standard deviation the page shows) or as another model. Two
trainings never give the same probabilities to a millionth on every case, so an entry is
a copy of another (:func:`copy_reason`) when

- a predictions file of any split is byte-identical (the same SHA-256) to one of the
  other entry's, or
- its predictions are the other's, re-written or nudged: on the cases where either entry is
  not certain (top probability below :data:`SATURATED`; certain cases look alike for any two
  good runs), the median over cases of the largest probability difference is at most
  :data:`NEAR_COPY_MEDIAN` (distinct runs of the committed baselines differ by a median of at
  least 0.0175: ``scripts/copy-margins.py``); with fewer than :data:`MIN_UNCERTAIN` such
  cases, every probability of every case within :data:`COPY_TOLERANCE`.

Only entries of the same section (task, dataset name, version and fingerprint) are compared,
and hard calls (every row one-hot: a human reader's, say) of two different models are never
copies of each other: two readers may well agree on every case. Noise added to every
probability gets round any such rule at the price of changing the figures; reproduction
(:mod:`~thyroid_bench.leaderboard.reproduce`) is what proves an entry's run.

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

__all__ = ["COPY_TOLERANCE", "SATURATED", "NEAR_COPY_MEDIAN", "MIN_UNCERTAIN", "Candidate",
           "copy_reason", "stored_copies"]

#: Two predictions files agree when every probability is within this of the other's.
COPY_TOLERANCE = 1e-6
#: A case is certain when its top probability is at least this (any two good runs agree there).
SATURATED = 0.999
#: Near copy: the median over uncertain cases of the largest probability difference.
NEAR_COPY_MEDIAN = 1e-3
#: Uncertain cases needed for the median rule (fewer: every case must agree within COPY_TOLERANCE).
MIN_UNCERTAIN = 10


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
    mine = Candidate(entry, entry.run_id, folder)
    others = [o for o in others if _section(o.entry) == _section(entry)
              and not _readers_who_agree(mine, o)]
    reason = _same_file(entry, others)
    if reason is None:
        reason = _same_predictions(mine, others)
    return reason


def stored_copies(entries: Sequence[StoredEntry]) -> dict[Path, str]:
    """The stored entries that are copies, each with the reason naming the entry it copies.
    Both entries of a pair are named: which one is the original cannot be told from what a
    submitter writes (a date is theirs to set), so neither is ranked until one is removed."""
    found: dict[Path, str] = {}
    ordered = sorted(entries, key=lambda s: str(s.folder))
    for i, stored in enumerate(ordered):
        for other in ordered[:i]:
            reason = copy_reason(stored.entry, stored.folder, [Candidate.of(other)])
            if reason is not None:
                found.setdefault(stored.folder, reason)
                found.setdefault(other.folder, copy_reason(other.entry, other.folder,
                                                           [Candidate.of(stored)]) or reason)
    return found


def _section(entry: Entry) -> tuple[str, str, str, str]:
    """Entries are compared within one leaderboard section: task and dataset version."""
    return (entry.task, entry.dataset.name, entry.dataset.version, entry.dataset.fingerprint)


def _readers_who_agree(a: Candidate, b: Candidate) -> bool:
    """Two different models whose predictions are all hard calls (one-hot rows): they may
    agree on every case without either being a copy."""
    if a.entry.model.name == b.entry.model.name or a.folder is None or b.folder is None:
        return False
    return _hard_calls(a) and _hard_calls(b)


def _hard_calls(c: Candidate) -> bool:
    splits = _splits(c)
    return splits is not None and all(
        np.isin(s.probs, (0.0, 1.0)).all() for s in splits.values())


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
    """``mine``'s predictions are one of the others', re-written or nudged (module docstring)."""
    shape = _shape(mine.entry)
    comparable = [o for o in others if o.folder is not None and _shape(o.entry) == shape]
    if not comparable:
        return None
    signature = _signature(mine)
    if signature is None:
        return None
    for other in comparable:
        theirs = _signature(other)
        how = None if theirs is None or theirs[0] != signature[0] else _agree(signature[1], theirs[1])
        if how is not None:
            return (f"its predictions are those of {other.describe()} ({how}): they are that "
                    f"run's predictions; {_ADVICE}")
    return None


def _shape(entry: Entry) -> tuple:
    """What two entries must share to be compared: task, splits and rows per split."""
    return (entry.task, tuple(sorted((s, pf.rows) for s, pf in entry.predictions.items())))


def _agree(a: dict[str, _Split], b: dict[str, _Split]) -> str | None:
    """How ``a`` and ``b`` (same splits and case ids) are the same predictions, or ``None``."""
    x = np.vstack([a[s].probs for s in a])
    y = np.vstack([b[s].probs for s in a])
    diff = np.abs(x - y).max(axis=1)
    uncertain = (x.max(axis=1) < SATURATED) | (y.max(axis=1) < SATURATED)
    if uncertain.sum() >= MIN_UNCERTAIN:
        median = float(np.median(diff[uncertain]))
        if median <= NEAR_COPY_MEDIAN:
            return (f"on the {int(uncertain.sum())} cases where either is below {SATURATED:g} "
                    f"certain, the probabilities differ by a median of {median:.2g}, at most "
                    f"{NEAR_COPY_MEDIAN:g}; distinct runs differ by far more")
        return None
    if diff.max(initial=0.0) <= COPY_TOLERANCE:
        return (f"on every case of every split ({', '.join(a)}) every probability is within "
                f"{COPY_TOLERANCE:g}")
    return None


def _splits(c: Candidate) -> dict[str, _Split] | None:
    """Every split's predictions in case-id order; ``None`` if a file cannot be read (the
    entry's own checks report that)."""
    assert c.folder is not None
    splits = {}
    for split in sorted(c.entry.predictions):
        pf = c.entry.predictions[split]
        read = _read(c.folder.joinpath(*PurePosixPath(pf.path).parts), pf.sha256, c.entry.task)
        if read is None:
            return None
        splits[split] = read
    return splits


def _signature(c: Candidate) -> tuple[str, dict[str, _Split]] | None:
    """A digest of the case ids of every split, and the splits (``None``: unreadable)."""
    splits = _splits(c)
    if splits is None:
        return None
    h = hashlib.sha256()
    for split, s in splits.items():
        h.update(split.encode() + b"\0" + "\0".join(s.ids).encode() + b"\0")
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
