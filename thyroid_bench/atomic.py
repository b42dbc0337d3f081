"""Atomic file writes, and the checks an output path passes before any work is done.

A write goes to a temporary file beside the target, renamed into place when complete: a
reader never sees half a file, and an interrupted write leaves the old file (or none). The
file gets the mode a plain ``open`` would give it (``0o666`` less the umask), not the
``0o600`` of :func:`tempfile.mkstemp`. :func:`check_output_file` and
:func:`check_output_folder` refuse an output path of the wrong kind (a folder where a file
goes, a file where a folder goes) with one line, before a command spends time on its work.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from thyroid_bench.errors import ThyroidBenchError

__all__ = ["atomic_open", "atomic_write_text", "make_temp_dir", "umask_mode",
           "check_output_file", "check_output_folder"]


def _umask() -> int:
    """The process's umask, read without changing it where the system says it (Linux
    ``/proc/self/status``), else by setting and restoring it."""
    try:
        status = Path("/proc/self/status").read_text(encoding="ascii")
        m = re.search(r"^Umask:\s*([0-7]+)$", status, re.M)
        if m:
            return int(m.group(1), 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def umask_mode(*, folder: bool = False) -> int:
    """The mode ``open`` (``0o666``) or ``mkdir`` (``0o777``) would create with, less the umask."""
    return (0o777 if folder else 0o666) & ~_umask()


def make_temp_dir(prefix: str, parent: str | os.PathLike) -> Path:
    """A new temporary folder in ``parent`` with the mode ``mkdir`` would give it (not the
    ``0o700`` of :func:`tempfile.mkdtemp`): for a folder that is renamed into place when complete."""
    tmp = Path(tempfile.mkdtemp(prefix=prefix, dir=parent))
    os.chmod(tmp, umask_mode(folder=True))
    return tmp


@contextmanager
def atomic_open(path: str | os.PathLike, *, newline: str | None = None) -> Iterator[TextIO]:
    """Open ``path`` for writing text (UTF-8); it appears only if the block completes."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, umask_mode())
        with os.fdopen(fd, "w", encoding="utf-8", newline=newline) as f:
            yield f
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    """Write ``text`` to ``path`` atomically, with ``\\n`` line ends; return the path."""
    with atomic_open(path, newline="\n") as f:
        f.write(text)
    return Path(path)


def atomic_write_private(path: str | os.PathLike, content: bytes) -> Path:
    """Write ``content`` to ``path`` atomically (a temporary file renamed over any earlier one,
    flushed to disk), readable and writable by its owner only whatever the umask: for files that
    must never be published (the organiser's report, the organisers' labels, the identifier
    index). An :class:`OSError` leaves no temporary file; the caller names what it was writing."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _first_existing_non_folder_parent(path: Path) -> Path | None:
    """The nearest existing ancestor of ``path`` that is not a folder (a file in the way), if any."""
    for parent in path.parents:
        if parent.exists():
            return None if parent.is_dir() else parent
    return None


def check_output_file(path: str | os.PathLike, what: str) -> Path:
    """``path`` can be written as a file: it is not a folder and no file stands where one of
    its folders would be; :class:`ThyroidBenchError` (one line naming ``what``) otherwise."""
    path = Path(path)
    if path.is_dir():
        raise ThyroidBenchError(f"{what} {path} is a folder; give the path of a file to write")
    blocker = _first_existing_non_folder_parent(path)
    if blocker is not None:
        raise ThyroidBenchError(f"{what} {path}: {blocker} is a file, not a folder; give another path")
    return path


def check_output_folder(path: str | os.PathLike, what: str) -> Path:
    """``path`` can be a folder to write into: it is a folder or does not exist yet (nor does a
    file stand where one of its parents would be); :class:`ThyroidBenchError` otherwise."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ThyroidBenchError(f"{what} {path} is a file; give the path of a folder (it is "
                                "created if missing)")
    blocker = _first_existing_non_folder_parent(path)
    if blocker is not None:
        raise ThyroidBenchError(f"{what} {path}: {blocker} is a file, not a folder; give another path")
    return path
