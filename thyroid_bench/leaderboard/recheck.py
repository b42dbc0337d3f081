"""Stored entries re-checked on every load (:func:`load_checked`).

A leaderboard folder travels through pull requests, so what it stores is checked again each
time it is read by ``leaderboard``, ``leaderboard --render`` and ``submit``, never trusted:

- each entry as :func:`~thyroid_bench.leaderboard.store.load_entry` reads it (schema, known
  task, its SHA-256 against its folder name, its section, its predictions files' SHA-256),
  and what it claims (:func:`~thyroid_bench.leaderboard.checks.check_stored_claims`: its
  protocol, splits, predictions paths, an official dataset version's pinned fingerprint);
- its section's ``dataset.json`` is a valid record of the entry's dataset version
  (name, version, fingerprint, synthetic flag, task), and the labels files have the SHA-256
  it pins (:func:`~thyroid_bench.leaderboard.store.section_truth`);
- its scores: every figure recomputed from the stored predictions and the stored labels
  (:func:`~thyroid_bench.leaderboard.checks.check_scores`, the checks ``submit`` ran); for a
  split whose labels are withheld, the figures stored at submission (``scores.json``,
  :mod:`~thyroid_bench.leaderboard.withheld`), recomputed only with the organisers' labels;
- no two stored entries are the same experiment (model, protocol, seed), and none is a
  copy of another (:mod:`~thyroid_bench.leaderboard.copies`: the later of the two is refused);
- its ``reproduced.json``, if any, is a valid record attesting this entry file
  (:func:`~thyroid_bench.leaderboard.reproduce.check_record`).

Recomputing every figure takes about a quarter of a second per entry, so a passed
recomputation is remembered by content: the SHA-256 of the entry file, of the section's
``dataset.json`` (which pins the labels files) and of the code that computes the figures.
It is remembered in the process, and as an empty marker file under
``<dataset home>/.leaderboard-checks/`` (outside the leaderboard folder, so a pull request
cannot bring one along); anything edited gives another key and is recomputed.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from thyroid_bench.data.format import default_home
from thyroid_bench.hashing import sha256_file
import thyroid_bench.leaderboard.withheld as withheld
from thyroid_bench.leaderboard.checks import check_scores, check_stored_claims
from thyroid_bench.leaderboard.copies import stored_copies
from thyroid_bench.leaderboard.errors import LeaderboardError, SubmissionError
from thyroid_bench.leaderboard.names import describe_key, duplicate_key
from thyroid_bench.leaderboard.reproduce import check_record
from thyroid_bench.leaderboard.store import StoredEntry, Truth, entry_files, load_entry, section_truth
from thyroid_bench.version import __version__

__all__ = ["InvalidEntry", "CheckedEntries", "load_checked", "CACHE_FOLDER"]

#: The on-disk cache of passed recomputations, under the dataset home.
CACHE_FOLDER = ".leaderboard-checks"
_PASSED: set[str] = set()        # keys of recomputations passed in this process
_CODE_KEY: list[str] = []        # the code's key, computed once


@dataclass(frozen=True)
class InvalidEntry:
    """A stored entry that failed a check: its folder, and what failed in one line naming the file."""

    folder: Path
    message: str

    def __str__(self) -> str:
        return self.message


@dataclass
class CheckedEntries:
    """The stored entries that passed every check, and those left out (``skip_invalid``)."""

    entries: list[StoredEntry]
    invalid: list[InvalidEntry] = field(default_factory=list)
    rescored: list[Path] = field(default_factory=list)  # sections whose withheld labels were given


def load_checked(leaderboard: str | os.PathLike, *, skip_invalid: bool = False,
                 private_labels: Path | None = None) -> CheckedEntries:
    """Every stored entry of the leaderboard, each re-checked (see the module doc).

    A failing entry raises :class:`LeaderboardError` (one line naming the first failing
    entry, what failed, and how many others fail); with ``skip_invalid`` it is left out and
    listed in :attr:`CheckedEntries.invalid` instead. The withheld splits of a section
    (:mod:`~thyroid_bench.leaderboard.withheld`) show the figures stored at submission; with
    the organisers' labels file ``private_labels`` the sections it belongs to (listed in
    :attr:`CheckedEntries.rescored`) are recomputed from it as well.
    """
    root = Path(leaderboard)
    truths: dict[Path, Truth | LeaderboardError] = {}
    out = CheckedEntries([])
    seen: dict[tuple, StoredEntry] = {}
    for path in entry_files(root):
        try:
            stored = _checked_entry(path, root, truths, private_labels)
            _check_not_duplicate(stored, seen)
        except LeaderboardError as exc:
            out.invalid.append(InvalidEntry(path.parent, str(exc)))
            continue
        seen[duplicate_key(stored.entry)] = stored
        out.entries.append(stored)
    out.rescored = [s for s, t in truths.items() if isinstance(t, Truth) and t.withheld
                    and set(t.withheld) <= set(t.labels)]
    _refuse_copies(out)
    if out.invalid and not skip_invalid:
        more = len(out.invalid) - 1
        others = f"; {more} more stored entr{'y fails' if more == 1 else 'ies fail'}" if more else ""
        raise LeaderboardError(f"{out.invalid[0]}{others} (`thyroid-bench leaderboard "
                               "--skip-invalid` lists them and renders without them)")
    return out


def _checked_entry(path: Path, root: Path, truths: dict[Path, Truth | LeaderboardError],
                   private_labels: Path | None = None) -> StoredEntry:
    """One stored entry, read, matched to its section and re-scored (:class:`LeaderboardError`);
    its withheld splits' figures are its stored scores (:func:`~thyroid_bench.leaderboard.
    withheld.with_scores`)."""
    stored = load_entry(path, root)
    check_record(stored)  # its reproduced.json, if any, attests this entry file
    try:
        check_stored_claims(stored.folder, stored.entry)
    except SubmissionError as exc:
        raise LeaderboardError(f"{stored.folder}: fails check '{exc.check}': {exc.reason}; restore "
                               "it from git") from None
    section = stored.folder.parent
    if section not in truths:
        try:
            truths[section] = withheld.section_truth_with(section_truth(section, stored.task),
                                                          private_labels, section)
        except LeaderboardError as exc:
            truths[section] = exc
    truth = truths[section]
    if isinstance(truth, LeaderboardError):
        raise LeaderboardError(f"{stored.folder}: its section is unreadable: {truth}")
    _check_same_dataset(stored, truth, section / "dataset.json")
    scores = withheld.read_scores(stored, truth) if truth.withheld else {}
    key = _key(path, section, *withheld.cache_parts(stored, truth))
    if key not in _PASSED and not _cached(key):
        files = {split: stored.predictions_path(split) for split in stored.task.eval_splits}
        try:
            check_scores(stored.folder, stored.entry, truth, files, stored_scores=scores)
        except SubmissionError as exc:
            raise LeaderboardError(f"{stored.folder}: fails check '{exc.check}' when recomputed "
                                   f"from its stored predictions and labels: {exc.reason}; restore it "
                                   "from git") from None
        _remember(key)
    return withheld.with_scores(stored, scores)


def _check_same_dataset(stored: StoredEntry, truth: Truth, record: Path) -> None:
    """The entry's dataset version is its section's, field by field."""
    for name in type(truth.ref).model_fields:
        mine, theirs = getattr(stored.entry.dataset, name), getattr(truth.ref, name)
        if mine != theirs:
            raise LeaderboardError(f"{stored.folder / 'entry.json'}: dataset.{name} is {mine!r}, "
                                   f"its section's {record} says {theirs!r}; restore both from git")


def _check_not_duplicate(stored: StoredEntry, seen: dict[tuple, StoredEntry]) -> None:
    key = duplicate_key(stored.entry)
    if key in seen:
        raise LeaderboardError(f"{stored.folder}: fails check 'duplicate': the leaderboard already "
                               f"has {seen[key].folder.name} for {describe_key(key)}")


def _refuse_copies(out: CheckedEntries) -> None:
    """Move the entries that copy another (``copy``) from ``out.entries`` to ``out.invalid``;
    a board found free of copies is remembered like a recomputation (by its entry files)."""
    files = sorted(sha256_file(s.folder / "entry.json") for s in out.entries)
    key = hashlib.sha256(" ".join(["copies", _code_key(), *files]).encode()).hexdigest()
    if key in _PASSED or _cached(key):
        return
    found = stored_copies(out.entries)
    if not found:
        _remember(key)
    out.invalid += [InvalidEntry(s.folder, f"{s.folder}: fails check 'copy': {found[s.folder]}; "
                                 "remove this folder") for s in out.entries if s.folder in found]
    out.entries = [s for s in out.entries if s.folder not in found]


# --------------------------------------------------------------------------- the cache
def _code_key() -> str:
    """The SHA-256 of the code that computes and checks the figures (evaluation, tasks,
    leaderboard), and of the versions of this package and numpy: new code, new key."""
    if not _CODE_KEY:
        package = Path(__file__).resolve().parents[1]  # thyroid_bench/
        h = hashlib.sha256(f"{__version__} numpy {np.__version__}".encode())
        for stage in ("evaluation", "tasks", "leaderboard"):
            for source in sorted((package / stage).rglob("*.py")):
                h.update(source.relative_to(package).as_posix().encode() + b"\0" + source.read_bytes())
        _CODE_KEY.append(h.hexdigest())
    return _CODE_KEY[0]


def _key(entry_path: Path, section: Path, *more: str) -> str:
    """What a passed recomputation is remembered by: the entry file (which pins its predictions
    files), the section record (which pins the labels files), the code, and ``more`` (a
    withheld split's stored scores and whether its labels were given)."""
    parts = (_code_key(), sha256_file(entry_path), sha256_file(section / "dataset.json"), *more)
    return hashlib.sha256(" ".join(parts).encode()).hexdigest()


def _cache_dir() -> Path:
    return default_home() / CACHE_FOLDER


def _cached(key: str) -> bool:
    if (_cache_dir() / key).is_file():
        _PASSED.add(key)
        return True
    return False


def _remember(key: str) -> None:
    """Remember a passed recomputation in the process and, where the home is writable, on disk."""
    _PASSED.add(key)
    try:
        _cache_dir().mkdir(parents=True, exist_ok=True)
        (_cache_dir() / key).touch()
    except OSError:
        pass  # a read-only home: recomputed again next time
