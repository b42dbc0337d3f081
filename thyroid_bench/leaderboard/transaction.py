"""Adding runs to a leaderboard (:func:`submit`): a transaction under a lock on the folder.

Under the folder's writer lock (:func:`~thyroid_bench.leaderboard.lock.writer_lock`, so two
``submit`` calls at once are serialised and the second one's duplicate check sees the first
one's entries):

1. the stored entries are re-checked (:func:`~thyroid_bench.leaderboard.recheck.load_checked`)
   and every run is checked (:func:`~thyroid_bench.leaderboard.checks.check_run`, against
   the stored entries and the other runs of the call); with ``reproduce`` / ``retrain``, each
   is then reproduced from its own run folder (:mod:`~thyroid_bench.leaderboard.reproduce`);
2. the would-be leaderboard is built in a staging folder: a copy of the stored entries
   (hard links where the file system allows; every file of an entry folder, its
   ``reproduced.json`` too), the new entries (with the record of a passed reproduction) and
   new sections' files; it is loaded back with every check and its pages are rendered there;
3. the Hub pull request is opened if asked;
4. only then are the new sections' files, the new entries and the pages moved into place
   (renames within one file system; a leaderboard folder that did not exist is the staging
   copy itself, renamed into place at once).

Any failure up to step 4 (a refused run, a stored entry that fails its checks, a renderer
that raises, the Hub) leaves the leaderboard folder byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from thyroid_bench.atomic import atomic_write_text, make_temp_dir
from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.leaderboard.checks import CheckedRun, check_run
from thyroid_bench.leaderboard.errors import LeaderboardError, SubmissionError
from thyroid_bench.leaderboard.hub import push_to_hub
from thyroid_bench.leaderboard.lock import writer_lock
from thyroid_bench.leaderboard.names import ENTRIES
from thyroid_bench.leaderboard.ranking import build_board
from thyroid_bench.leaderboard.recheck import load_checked
from thyroid_bench.leaderboard.render import PAGES, check_leaderboard_folder, render_pages
from thyroid_bench.leaderboard.reproduce import ReproductionRecord, reproduce_checked, write_record
from thyroid_bench.leaderboard.rules import DEFAULT_LEADERBOARD
import thyroid_bench.leaderboard.withheld as withheld
from thyroid_bench.leaderboard.store import (StoredEntry, Truth, copy_entry, read_section_record,
                                             write_section_files)

__all__ = ["SubmitResult", "submit"]

_STAGING = ".staging-"


@dataclass
class SubmitResult:
    """What :func:`submit` added: entry ids, their folders, and the Hub pull request if any."""

    entry_ids: list[str]
    paths: list[Path]
    pr_url: str | None = None


def submit(
    run_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD,
    home: Path | None = None,
    hub: str | None = None,
    hub_api: Any = None,
    render: bool = True,
    reproduce: bool = False,
    retrain: bool = False,
    log: Callable[[str], None] | None = None,
    private_labels: Path | None = None,
) -> SubmitResult:
    """Check run folders and add them to the leaderboard with its re-rendered pages.

    A transaction (see the module doc): every run is checked against the re-checked stored
    entries and the other runs of the call, the would-be leaderboard is loaded back and
    rendered in a staging folder, and only then are the entries (under
    ``entries/<task>/<dataset>@<version>/<entry id>/``) and README.md, index.html and
    schema/entry-v1.json moved in; any failure before that changes nothing. Without
    ``render`` the pages are still rendered (a board that cannot render is refused) but
    not moved in. With ``hub`` (a Hub dataset repository id), a pull request with the new
    entries is opened before anything moves (``hub_api``: a stand-in for
    ``huggingface_hub.HfApi``, for tests). With ``reproduce`` (by evaluation) or ``retrain``
    (by retraining), each checked run is also reproduced from its own run folder
    (:func:`~thyroid_bench.leaderboard.reproduce.reproduce_run`, progress lines to ``log``),
    check ``reproduction``, and its record is stored with the entry as ``reproduced.json``.
    ``private_labels`` is the organisers' labels file of a dataset version that withholds labels
    (:mod:`~thyroid_bench.leaderboard.withheld`): it scores the withheld splits, which are
    stored as ``scores.json`` with each entry and never as labels files.
    """
    runs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not runs:
        raise ThyroidBenchError("submit needs at least one run folder")
    root = check_leaderboard_folder(leaderboard, must_exist=False)
    with writer_lock(root):
        _remove_stale_staging(root)
        checked = _check_all(runs, root, home, private_labels)
        records = (reproduce_checked(checked, retrain=retrain, home=home, log=log)
                   if reproduce or retrain else {})
        exists = root.is_dir()
        staging = make_temp_dir(_STAGING if exists else f".{root.name}{_STAGING}",
                                root if exists else root.parent)
        try:
            board, moves = _would_be(checked, root, staging / "board", render=render, records=records)
            staged = [StoredEntry(c.entry, c.entry_id, board.joinpath(*c.section.parts, c.entry_id),
                                  c.section / c.entry_id) for c in checked]
            pr_url = push_to_hub(staged, hub, api=hub_api) if hub else None
            _move_in(board, root, moves, exists)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
    return SubmitResult([c.entry_id for c in checked],
                        [root.joinpath(*c.section.parts, c.entry_id) for c in checked], pr_url)


def _check_all(runs: Sequence[str | os.PathLike], root: Path, home: Path | None,
               private_labels: Path | None = None) -> list[CheckedRun]:
    """Check every run against the re-checked stored entries, the earlier runs and the stored
    sections (:class:`LeaderboardError` if a stored entry fails its own checks)."""
    existing = (load_checked(root, private_labels=private_labels).entries
                if (root / ENTRIES).is_dir() else [])
    seen = list(existing)  # with their files: the ``copy`` check compares predictions
    cache: dict[tuple[str, str], Truth] = {}
    checked: list[CheckedRun] = []
    for run in runs:
        c = check_run(run, home=home, existing=seen, _truth_cache=cache, private_labels=private_labels)
        _check_stored_section(run, root, c)
        checked.append(c)
        seen.append(StoredEntry(c.entry, c.entry_id, c.run_dir, c.section / c.entry_id))
    return checked


def _check_stored_section(run: str | os.PathLike, root: Path, c: CheckedRun) -> None:
    """``dataset fingerprint``: a stored section of the same version holds the same build."""
    stored_info = root.joinpath(*c.section.parts) / "dataset.json"
    if stored_info.is_file():
        fp = json.loads(stored_info.read_text(encoding="utf-8")).get("fingerprint")
        if fp != c.truth.ref.fingerprint:
            raise SubmissionError(run, "dataset fingerprint",
                                  f"the leaderboard's {c.truth.ref.spec} has fingerprint {fp}, this "
                                  f"entry's is {c.truth.ref.fingerprint}: two different builds cannot "
                                  "share a version")
        withheld.check_section(Path(run), read_section_record(stored_info.parent).splits, c.truth)


# --------------------------------------------------------------------------- the would-be board
def _would_be(checked: Sequence[CheckedRun], root: Path, board: Path, *, render: bool,
              records: dict[str, ReproductionRecord] | None = None) -> tuple[Path, list[PurePosixPath]]:
    """Build the would-be leaderboard in ``board``: the stored entries, the new entries and new
    sections' files, loaded back with every check and rendered. Returns ``board`` and the
    paths (relative to it) to move into the leaderboard, in order."""
    if (root / ENTRIES).is_dir():
        shutil.copytree(root / ENTRIES, board / ENTRIES, copy_function=_link_or_copy)
    board.mkdir(parents=True, exist_ok=True)
    moves: list[PurePosixPath] = []
    for c in checked:
        section = board.joinpath(*c.section.parts)
        if not (section / "dataset.json").is_file():
            if (section / "labels").exists():  # never written over: the copy's files are links
                raise LeaderboardError(f"{root.joinpath(*c.section.parts)}: labels/ without "
                                       "dataset.json; restore the section from git or remove it")
            write_section_files(section, c.truth)
            moves += [c.section / "labels", c.section / "dataset.json"]  # labels first
        copy_entry(c.run_dir, c.entry, section / c.entry_id)
        if c.scores:  # the withheld splits' figures, checked: their labels are never stored
            withheld.write_scores(section / c.entry_id, c.entry_sha256, c.truth, c.scores)
        if c.entry_id in (records or {}):  # a passed reproduction, stored with its entry
            write_record(section / c.entry_id, records[c.entry_id])
        moves.append(c.section / c.entry_id)
    pages = render_pages(build_board(load_checked(board).entries, board))
    for rel, text in pages.items():
        atomic_write_text(board / rel, text)
    if render:
        moves += [PurePosixPath(rel) for rel in pages]
    return board, moves


def _link_or_copy(src: str, dst: str) -> None:
    """A hard link to a stored file (nothing in the staging copy is written in place), or a copy."""
    try:
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst)


def _move_in(board: Path, root: Path, moves: Sequence[PurePosixPath], exists: bool) -> None:
    """Rename the staged files into the leaderboard: the whole board if there was none."""
    if not exists:
        for rel in PAGES:
            if PurePosixPath(rel) not in moves:  # not rendered into place (render=False)
                board.joinpath(rel).unlink()
        os.replace(board, root)
        return
    for rel in moves:
        dst = root.joinpath(*rel.parts)
        dst.parent.mkdir(parents=True, exist_ok=True)
        os.replace(board.joinpath(*rel.parts), dst)


def _remove_stale_staging(root: Path) -> None:
    """Staging folders a killed ``submit`` left behind (only writers, under the lock, make them)."""
    if root.is_dir():
        for stale in root.glob(f"{_STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)
    if root.parent.is_dir():
        for stale in root.parent.glob(f".{root.name}{_STAGING}*"):
            shutil.rmtree(stale, ignore_errors=True)
