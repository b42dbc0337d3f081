"""``thyroid-bench leaderboard check``: reproduce the stored entries from their run folders.

Every stored entry is re-checked as every load does (an entry that fails is listed, not
reproduced), then looked up among the run folders under ``--runs`` (a local folder, or a Hub
location ``hf://...``, :mod:`~thyroid_bench.leaderboard.run_location`). A run folder is any
folder holding ``config.json`` (the harness writes one into every run folder), searched
recursively, and it is matched **by content, not by name**:

1. a folder whose ``entry.json`` is the stored entry file byte for byte (same SHA-256): the
   run that was submitted;
2. else a folder whose ``predictions/<split>.csv`` all have the SHA-256 the entry records
   (the same run, its entry.json rewritten).

Folder names are not trusted: run folders are renamed and moved (the committed
residual-tissue densenet169 seed 0 has run_id ``res-densenet169`` and lives in
``densenet169-quick-seed0/``), and a folder named after an entry's run_id may hold another
run. Each entry found is reproduced (:func:`~thyroid_bench.leaderboard.reproduce.reproduce_run`,
by evaluation, or by retraining); the checkpoint must be the entry's when it records one. With
``write``, the records of the entries that passed are stored, under the leaderboard's writer
lock, each file atomically, and the pages re-rendered; a record of reproduction by retraining
is kept over a new one by evaluation of the same checkpoint (any other record is replaced: a
hand-made one cannot block a real check).
"""

from __future__ import annotations

import fnmatch
import os
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.errors import LeaderboardError, ReproductionError
from thyroid_bench.leaderboard.lock import writer_lock
from thyroid_bench.leaderboard.ranking import build_board
from thyroid_bench.leaderboard.recheck import InvalidEntry, load_checked
from thyroid_bench.leaderboard.render import check_leaderboard_folder, render_pages
from thyroid_bench.leaderboard.reproduce import (
    RECORD_FILE,
    ReproductionRecord,
    read_record,
    reproduce_run,
    write_record,
)
from thyroid_bench.leaderboard.run_location import RUN_FILES, download, is_hub_location, parse_hub_location
from thyroid_bench.leaderboard.store import StoredEntry

__all__ = ["RunIndex", "EntryCheck", "BoardCheck", "check_leaderboard"]


@dataclass
class RunIndex:
    """The run folders under ``--runs``, by the SHA-256 of their entry.json and predictions files."""

    where: str
    locations: list[str] = field(default_factory=list)      # what reproduce_run is given
    by_entry: dict[str, int] = field(default_factory=dict)   # entry.json SHA-256 -> folder
    by_file: dict[str, set[int]] = field(default_factory=dict)  # "<split>:<SHA-256>" -> folders

    @classmethod
    def build(cls, runs: str | os.PathLike, scratch: Path) -> RunIndex:
        """Index a local folder, or a Hub location's small files downloaded into ``scratch``."""
        index = cls(str(runs))
        hub = parse_hub_location(str(runs)) if is_hub_location(runs) else None
        if hub is not None:
            root = download(hub, scratch, [f"*{p}" for p in RUN_FILES])
        else:
            root = Path(runs)
            if not root.is_dir():
                raise LeaderboardError(f"--runs {runs}: no such folder (give the folder that holds "
                                       "the run folders, or hf://ORG/REPO/path)")
        for folder in _run_folders(root):
            rel = "" if folder == root else folder.relative_to(root).as_posix()
            index._add(folder, str(hub.child(rel)) if hub is not None else str(folder))
        return index

    def _add(self, folder: Path, location: str) -> None:
        i = len(self.locations)
        self.locations.append(location)
        if (folder / "entry.json").is_file():
            self.by_entry.setdefault(sha256_file(folder / "entry.json"), i)
        for csv in sorted((folder / "predictions").glob("*.csv")):
            self.by_file.setdefault(f"{csv.stem}:{sha256_file(csv)}", set()).add(i)

    def match(self, stored: StoredEntry) -> str | None:
        """The run folder of a stored entry (see the module doc), or ``None``."""
        i = self.by_entry.get(sha256_file(stored.folder / "entry.json"))
        if i is None:
            found = [self.by_file.get(f"{split}:{stored.entry.predictions[split].sha256}", set())
                     for split in stored.task.eval_splits]
            common = set.intersection(*found) if found else set()
            i = min(common) if common else None
        return None if i is None else self.locations[i]


def _run_folders(root: Path) -> list[Path]:
    """Folders under ``root`` (itself included) holding config.json; hidden ones skipped, and
    nothing below a run folder."""
    found = []
    for folder, dirs, files in os.walk(root):
        if "config.json" in files:
            found.append(Path(folder))
            dirs.clear()
        else:
            dirs[:] = sorted(d for d in dirs if not d.startswith("."))
    return sorted(found)


@dataclass
class EntryCheck:
    """One stored entry checked: the run folder found, and the record or why not."""

    stored: StoredEntry
    run_folder: str | None = None
    record: ReproductionRecord | None = None
    problem: str | None = None
    seconds: float = 0.0
    kept: str | None = None  # set when writing kept a stronger earlier record

    @property
    def failed(self) -> bool:
        """Given a run folder, not reproduced."""
        return self.run_folder is not None and self.record is None

    def line(self) -> str:
        """One line: reproduced how, with the largest differences, or why not."""
        name = self.stored.entry_id
        if self.record is not None:
            r = self.record
            diffs = ", ".join(f"{s} {d:.2g}" for s, d in sorted(r.max_abs_diff.items()))
            how = ("byte-identical predictions" if r.by == "retraining"
                   else f"max |diff| {diffs}; tolerance {r.tolerance:g}")
            kept = f"; {self.kept}" if self.kept else ""
            return (f"{name}: reproduced by {r.by} ({how}) from {self.run_folder} in "
                    f"{self.seconds:.0f} s{kept}")
        if self.run_folder is None:
            return f"{name}: not checked: {self.problem}"
        return f"{name}: NOT REPRODUCED from {self.run_folder}: {self.problem}"


@dataclass
class BoardCheck:
    """Every stored entry checked, the stored entries that failed their own checks, and the
    records written."""

    entries: list[EntryCheck]
    invalid: list[InvalidEntry] = field(default_factory=list)
    written: list[Path] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """No entry given a run folder failed, and no stored entry is invalid."""
        return not self.invalid and not any(e.failed for e in self.entries)

    def summary(self) -> str:
        n = {"reproduced": sum(e.record is not None for e in self.entries),
             "not reproduced": sum(e.failed for e in self.entries),
             "not checked": sum(e.run_folder is None for e in self.entries),
             "invalid": len(self.invalid)}
        return ", ".join(f"{v} {k}" for k, v in n.items()) + (
            f"; {len(self.written)} record(s) written" if self.written else "")


def check_leaderboard(leaderboard: str | os.PathLike, runs: str | os.PathLike, *,
                      retrain: bool = False, write: bool = False, home: Path | None = None,
                      only: Sequence[str] = (), log: Callable[[str], None] | None = None,
                      on_entry: Callable[[EntryCheck], None] | None = None) -> BoardCheck:
    """Reproduce every stored entry of ``leaderboard`` (those whose entry id matches a
    pattern of ``only``, when given) from its run folder under ``runs`` (see the module doc),
    by evaluation or with ``retrain`` by retraining, on the datasets in ``home``. ``log``
    receives progress lines, ``on_entry`` each entry's result as it comes. With ``write``,
    stores the records of the passed ones and re-renders the pages."""
    root = check_leaderboard_folder(leaderboard)
    say = log or (lambda msg: None)
    checked = load_checked(root, skip_invalid=True)
    chosen = [s for s in checked.entries
              if not only or any(fnmatch.fnmatchcase(s.entry_id, p) for p in only)]
    results = []
    with tempfile.TemporaryDirectory(prefix="thyroid-bench-runs-") as scratch:
        say(f"indexing run folders under {runs}")
        index = RunIndex.build(runs, Path(scratch))
        say(f"{len(index.locations)} run folder(s); {len(chosen)} stored entr"
            f"{'y' if len(chosen) == 1 else 'ies'} to check")
        for i, stored in enumerate(chosen, 1):
            say(f"[{i}/{len(chosen)}] {stored.entry_id}")
            results.append(_check_entry(stored, index, retrain=retrain, home=home, log=say))
            if on_entry:
                on_entry(results[-1])
    out = BoardCheck(results, checked.invalid)
    if write:
        out.written = _store_records(root, results)
    return out


def _check_entry(stored: StoredEntry, index: RunIndex, *, retrain: bool, home: Path | None,
                 log: Callable[[str], None]) -> EntryCheck:
    if stored.entry.origin == "external":
        return EntryCheck(stored, problem="external predictions (made outside the harness, "
                          "nothing to re-run)")
    folder = index.match(stored)
    if folder is None:
        return EntryCheck(stored, problem=f"no run folder found under {index.where} (none has its "
                          "entry.json or all its predictions files)")
    t0 = time.perf_counter()
    try:
        record = reproduce_run(stored, folder, retrain=retrain, home=home, log=log)
    except ReproductionError as exc:
        return EntryCheck(stored, folder, problem=str(exc), seconds=time.perf_counter() - t0)
    return EntryCheck(stored, folder, record, seconds=time.perf_counter() - t0)


def _store_records(root: Path, results: Sequence[EntryCheck]) -> list[Path]:
    """Under the writer lock: the passed records into their entry folders, then the pages;
    if anything fails, the records written are taken back and nothing changes."""
    passed = [r for r in results if r.record is not None]
    if not passed:
        return []
    with writer_lock(root):
        load_checked(root)  # a board whose stored entries fail their checks is not written to
        before: dict[Path, bytes | None] = {}
        try:
            for r in passed:
                path = _store_record(root, r, before)
            pages = render_pages(build_board(load_checked(root).entries, root))
        except BaseException:
            for path, data in before.items():
                if data is None:
                    path.unlink(missing_ok=True)
                else:
                    atomic_write_text(path, data.decode("utf-8"))
            raise
        for rel, text in pages.items():
            atomic_write_text(root / rel, text)
    return [p for p in before if p.exists()]


def _store_record(root: Path, r: EntryCheck, before: dict[Path, bytes | None]) -> Path:
    """One record into its entry folder (unless a stronger one is there), remembering the old bytes."""
    assert r.record is not None
    folder = root.joinpath(*r.stored.rel.parts)
    path = folder / RECORD_FILE
    if not (folder / "entry.json").is_file() or sha256_file(folder / "entry.json") != r.record.entry_sha256:
        raise LeaderboardError(f"{folder}: removed or changed while it was reproduced; nothing "
                               "was written, check again")
    earlier = read_record(r.stored)
    if (earlier is not None and earlier.by == "retraining" and r.record.by == "evaluation"
            and earlier.checkpoint_sha256 == r.record.checkpoint_sha256):
        r.kept = f"kept its record of reproduction by retraining of {earlier.date:%Y-%m-%d}"
        return path
    before[path] = path.read_bytes() if path.exists() else None
    write_record(folder, r.record)
    return path
