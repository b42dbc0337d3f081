"""Listing a DICOM archive so that nothing is lost without a word (:func:`walk_archive`).

Every entry under the archive folder that is not a folder is listed (regular files, links to
files or folders, broken links, link loops, FIFOs and other special files): the reader turns
what it cannot ingest into a rejection with its reason. Links to folders are listed, never
followed, so a link loop cannot make the walk run forever.

What the walk itself cannot see is a *problem*, never a silent skip:

* a folder that cannot be listed (no read permission, or an I/O error),
* a folder that can be listed but not entered (read permission without search permission:
  its names are visible, its files cannot be opened),
* an entry that vanished between listing its folder and looking at it,
* a file (or a link to a file) that cannot be read (no read permission).

By default the problems stop the run with one line naming them
(:meth:`ArchiveListing.refuse_problems`); with ``--skip-unreadable`` each becomes one rejected
entry saying what went wrong (:meth:`ArchiveListing.rejected`), so that ``files seen =
ingested + rejected`` holds for every archive (a folder that cannot be read counts as one
entry: the files inside it cannot be counted).

Names are kept as the operating system gives them (undecodable bytes as surrogates, so the
files can still be opened); :func:`thyroid_bench.errors.printable` escapes them for
anything written or printed.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from thyroid_bench.errors import DatasetError, printable

__all__ = ["SKIP_UNREADABLE_OPTION", "WalkProblem", "ArchiveListing", "walk_archive",
           "list_archive"]

#: The command-line option that turns walk problems into rejected entries.
SKIP_UNREADABLE_OPTION = "--skip-unreadable"
_SHOWN = 5  # problems named in the one-line refusal


@dataclass(frozen=True)
class WalkProblem:
    """An entry the walk could not look into: its path relative to the archive (POSIX, as the
    system spells it; ``.`` for the archive itself) and why, in words."""

    path: str
    reason: str
    folder: bool

    def line(self) -> str:
        """``path: reason`` with the path escaped (:func:`~thyroid_bench.errors.printable`)."""
        return f"{printable(self.path)}{'/' if self.folder else ''}: {self.reason}"


@dataclass
class ArchiveListing:
    """The archive's readable entries (``files``, sorted relative POSIX paths) and its
    ``problems``; ``seen`` = both together, what the summary counts."""

    root: Path
    files: list[str] = field(default_factory=list)
    problems: list[WalkProblem] = field(default_factory=list)

    @property
    def seen(self) -> int:
        """Entries seen: files to read plus problem entries."""
        return len(self.files) + len(self.problems)

    def refuse_problems(self) -> None:
        """:class:`DatasetError` (one line naming the entries, what to do) if there are problems."""
        if not self.problems:
            return
        shown = "; ".join(p.line() for p in self.problems[:_SHOWN])
        more = f" and {len(self.problems) - _SHOWN} more" if len(self.problems) > _SHOWN else ""
        raise DatasetError(
            f"--dicom-dir {printable(str(self.root))}: {len(self.problems)} entr"
            f"{'y' if len(self.problems) == 1 else 'ies'} could not be read ({shown}{more}); "
            f"give your account read and search permission (e.g. chmod -R u+rX, or run as the "
            f"archive's owner), or pass {SKIP_UNREADABLE_OPTION} to ingest the rest and list "
            "these as rejected")

    def covers(self, relative: str | None) -> bool:
        """Whether ``relative`` is a problem entry or lies inside a problem folder."""
        if not relative:
            return False
        return any(relative == p.path or (p.folder and relative.startswith(p.path.rstrip("/") + "/"))
                   for p in self.problems)

    def rejected(self, labels_lines: Mapping[str, int] | None = None) -> list[dict[str, Any]]:
        """The problems as rejected entries (``file``, ``reason``, ``labels_line``: the line
        of ``labels_lines`` (path -> labels CSV line) naming the entry, else None)."""
        lines = labels_lines or {}
        return [{"file": p.path + ("/" if p.folder else ""), "reason": p.reason,
                 "labels_line": lines.get(p.path)} for p in self.problems]


def _why(exc: OSError) -> str:
    if exc.errno in (errno.EACCES, errno.EPERM):
        return "permission denied"
    return os.strerror(exc.errno) if exc.errno else type(exc).__name__


def _scan(folder: Path) -> list[str]:
    with os.scandir(folder) as it:
        return sorted(entry.name for entry in it)


def _look(root: Path, rel: str, listing: ArchiveListing, folders: list[str]) -> None:
    """Classify one entry (already known to exist by its folder's listing)."""
    path = root / rel
    st = os.lstat(path)  # PermissionError here: the parent folder cannot be entered
    if stat.S_ISDIR(st.st_mode):
        folders.append(rel)
        return
    if stat.S_ISREG(st.st_mode) or stat.S_ISLNK(st.st_mode):
        try:
            target = os.stat(path) if stat.S_ISLNK(st.st_mode) else st
        except OSError:
            target = None  # a broken link or a loop: listed, the reader rejects it
        if target is not None and stat.S_ISREG(target.st_mode) and not os.access(path, os.R_OK):
            listing.problems.append(WalkProblem(rel, "file cannot be read (permission denied)", False))
            return
    listing.files.append(rel)


def _walk_folder(root: Path, rel: str, listing: ArchiveListing, folders: list[str]) -> None:
    """List one folder into ``listing``; a folder that cannot be listed or entered is a problem
    (none of its entries are then listed)."""
    where = rel if rel else "."
    try:
        names = _scan(root / rel)
    except OSError as exc:
        listing.problems.append(WalkProblem(where, f"folder cannot be listed ({_why(exc)})", True))
        return
    sub: list[str] = []
    part = ArchiveListing(root)
    for name in names:
        child = f"{rel}/{name}" if rel else name
        try:
            _look(root, child, part, sub)
        except FileNotFoundError:
            part.problems.append(WalkProblem(child, "vanished while the archive was listed", False))
        except OSError as exc:
            n = len(names)
            reason = (f"folder can be listed but not entered ({_why(exc)}): its {n} "
                      f"entr{'y' if n == 1 else 'ies'} not read")
            listing.problems.append(WalkProblem(where, reason, True))
            return
    listing.files += part.files
    listing.problems += part.problems
    folders += sub


def walk_archive(dicom_dir: str | os.PathLike, *, skip_unreadable: bool = False) -> ArchiveListing:
    """Every entry under ``dicom_dir`` that is not a folder, and every problem (module
    docstring); without ``skip_unreadable`` any problem is a :class:`DatasetError` (one line).

    Links to folders are listed, not followed. The archive folder itself must be readable.
    """
    root = Path(dicom_dir)
    if not root.is_dir():
        raise DatasetError(f"--dicom-dir {printable(str(root))} is not a folder; point it at the "
                           "DICOM archive")
    listing = ArchiveListing(root)
    pending = [""]
    while pending:
        folders: list[str] = []
        _walk_folder(root, pending.pop(), listing, folders)
        pending += reversed(folders)
    if not skip_unreadable or any(p.path == "." for p in listing.problems):
        listing.refuse_problems()
    listing.files.sort()
    listing.problems.sort(key=lambda p: p.path)
    return listing


def list_archive(dicom_dir: str | os.PathLike) -> list[str]:
    """The files of :func:`walk_archive` (sorted POSIX paths relative to ``dicom_dir``);
    :class:`DatasetError` if any entry cannot be read."""
    return walk_archive(dicom_dir).files
