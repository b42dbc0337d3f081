"""What ``prepare --source dicom`` checks before it reads the archive (:func:`check_paths`).

A run that would fail at its end (home not writable, labels CSV or key unreadable, a folder
given where a file goes or the reverse) fails first, in one line naming the path and what to
do, instead of after reading every file of the archive. The checks ask the operating system
what this account may do (:func:`os.access` with the effective ids, so they hold for a user
whose file modes apply; root passes them, as its writes would succeed).
"""

from __future__ import annotations

import os
from pathlib import Path

from thyroid_bench.atomic import check_output_folder
from thyroid_bench.errors import DatasetError, os_error_line, printable

__all__ = ["check_paths"]

_EFFECTIVE = os.access in os.supports_effective_ids


def _may(path: Path, mode: int) -> bool:
    return os.access(path, mode, effective_ids=_EFFECTIVE)


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return Path(".")


def _check_readable_file(path: Path, option: str, what: str) -> None:
    """``path`` is an existing file this account can open for reading."""
    if path.is_dir():
        raise DatasetError(f"{option} {printable(path)} is a folder; give the path of {what}")
    try:
        with open(path, "rb"):
            pass
    except FileNotFoundError:
        raise DatasetError(f"{option} {printable(path)} not found; give the path of {what}") from None
    except OSError as exc:
        raise DatasetError(os_error_line(exc, f"{option}: cannot read {what}",
                                         "give your account read permission on it (chmod u+r) "
                                         "or run as its owner")) from None


def _check_writable(folder: Path, option: str, what: str) -> None:
    """New entries can be created under ``folder`` (or under its nearest existing parent)."""
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise DatasetError(f"{option} {printable(folder)}: {printable(existing)} is a file, not a "
                           "folder; give another path")
    if not _may(existing, os.W_OK | os.X_OK):
        raise DatasetError(f"{option}: {what} would be written in {printable(existing)}, which "
                           "your account may not write; make it writable (chmod u+w) or give "
                           "another path")


def check_paths(*, dicom_dir: Path, labels: Path, key_file: Path, home: Path | None, name: str,
                version: str) -> None:
    """Refuse, in one line, paths that would fail later: the archive folder not readable,
    ``labels`` not a readable file, ``key_file`` not a readable file (when it exists) or its
    folder not writable (when the key is to be created), ``home`` (default: the dataset home)
    a file or not writable where version ``name``/``version`` goes."""
    from thyroid_bench.data.format import default_home

    home = Path(home or default_home())
    target = home / name / version
    check_output_folder(home, "--home")
    _check_writable(target.parent, "--home", f"the dataset {target.name}")
    if target.exists() and not _may(target.parent, os.W_OK | os.X_OK):
        raise DatasetError(f"--home: {printable(target)} cannot be replaced: your account may not "
                           f"write {printable(target.parent)}; make it writable or give another "
                           "--home")
    if dicom_dir.is_dir() and not _may(dicom_dir, os.R_OK | os.X_OK):
        raise DatasetError(f"--dicom-dir {printable(dicom_dir)} cannot be listed and entered by "
                           "your account; give it read and search permission (chmod u+rX) or run "
                           "as the archive's owner")
    _check_readable_file(labels, "--labels", "the labels CSV")
    if key_file.exists() or key_file.is_symlink():
        _check_readable_file(key_file, "--key-file", "the pseudonym key")
    else:
        _check_writable(key_file.parent, "--key-file", "a new pseudonym key")
