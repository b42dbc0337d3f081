"""Adding runs to a leaderboard (:func:`submit`): a transaction under a lock on the folder.

Every run is checked (:func:`thyroid_bench.leaderboard.checks.check_run`, against the
stored entries and the other runs of the call) before anything is written: one refusal
and nothing changes. Accepted entries (and the files of a new section) are staged in a
temporary folder inside the leaderboard, the Hub pull request is opened if asked, then
the staged folders are renamed into place and the pages re-rendered.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.leaderboard.checks import CheckedRun, check_run
from thyroid_bench.leaderboard.errors import SubmissionError
from thyroid_bench.leaderboard.hub import push_to_hub
from thyroid_bench.leaderboard.names import ENTRIES
from thyroid_bench.leaderboard.render import render_leaderboard
from thyroid_bench.leaderboard.rules import DEFAULT_LEADERBOARD
from thyroid_bench.leaderboard.store import StoredEntry, Truth, copy_entry, load_entries, write_section_files

__all__ = ["SubmitResult", "submit"]


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
) -> SubmitResult:
    """Check run folders and add them to the leaderboard, then re-render it.

    Every run is checked (:func:`~thyroid_bench.leaderboard.checks.check_run`, against the
    stored entries and the other runs of the call) before anything is written: one refusal
    and nothing changes. Accepted entries are staged in a temporary folder inside the
    leaderboard and renamed into ``entries/<task>/<dataset>@<version>/<entry id>/``;
    README.md, index.html and schema/entry-v1.json are then rewritten atomically. With
    ``hub`` (a Hub dataset repository id), a pull request with the new entries is opened
    first (``hub_api``: a stand-in for ``huggingface_hub.HfApi``, for tests).
    """
    runs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not runs:
        raise ThyroidBenchError("submit needs at least one run folder")
    root = Path(leaderboard)
    checked = _check_all(runs, root, home)
    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        moves = _stage(checked, staging, root)
        staged = [StoredEntry(c.entry, c.entry_id, staging / ENTRIES / c.entry_id,
                              c.section / c.entry_id) for c in checked]
        pr_url = push_to_hub(staged, hub, api=hub_api) if hub else None
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        if render:
            render_leaderboard(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SubmitResult([c.entry_id for c in checked],
                        [root.joinpath(*c.section.parts, c.entry_id) for c in checked], pr_url)


def _check_all(runs: Sequence[str | os.PathLike], root: Path, home: Path | None) -> list[CheckedRun]:
    """Check every run against the stored entries, the earlier runs and the stored sections."""
    existing = load_entries(root) if (root / ENTRIES).is_dir() else []
    seen = [s.entry for s in existing]
    cache: dict[tuple[str, str], Truth] = {}
    checked: list[CheckedRun] = []
    for run in runs:
        c = check_run(run, home=home, existing=seen, _truth_cache=cache)
        _check_stored_section(run, root, c)
        checked.append(c)
        seen.append(c.entry)
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


def _stage(checked: Sequence[CheckedRun], staging: Path, root: Path) -> list[tuple[Path, Path]]:
    """Copy entries (and new dataset sections) under ``staging``; return (staged, final) moves."""
    moves: list[tuple[Path, Path]] = []
    new_sections: set[PurePosixPath] = set()
    for c in checked:
        final_section = root.joinpath(*c.section.parts)
        if not (final_section / "dataset.json").is_file() and c.section not in new_sections:
            staged_section = staging / "sections" / f"{len(new_sections)}"
            write_section_files(staged_section, c.truth)
            new_sections.add(c.section)
            for item in sorted(staged_section.iterdir()):
                moves.append((item, final_section / item.name))
        dest = staging / ENTRIES / c.entry_id
        copy_entry(c.run_dir, c.entry, dest)
        moves.append((dest, final_section / c.entry_id))
    return moves
