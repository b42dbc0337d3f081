"""A writer lock on a folder, held in a file beside it (:func:`folder_lock`).

One definition for both writers that must be alone: ``prepare`` on a dataset version
(:mod:`thyroid_bench.data.lock`) and ``submit`` / ``leaderboard --render`` on a leaderboard
folder (:mod:`thyroid_bench.leaderboard.lock`). The lock is an operating-system file lock
(:mod:`filelock`), released by the system when its holder exits or is killed, in the file
``.<name>.lock`` beside the folder, never inside it (nothing is added to what is published or
committed, and a folder that does not exist yet can be locked). It is created with the umask's
mode, so a group sharing the parent folder can take it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

__all__ = ["lock_path", "folder_lock"]


def lock_path(target: str | os.PathLike) -> Path:
    """The lock file of folder ``target``: ``.<name>.lock`` beside it (symbolic links resolved,
    so two spellings of one folder share one lock)."""
    root = Path(target).resolve()
    return root.parent / f".{root.name}.lock"


@contextmanager
def folder_lock(target: str | os.PathLike, *, timeout: float | None,
                refuse: Callable[[Path], Exception], announce: str | None = None) -> Iterator[Path]:
    """Hold the writer lock of folder ``target`` for the block.

    When another process holds it, ``announce`` (if given) is printed on stderr and the wait
    begins: for ever (``timeout`` None: the lock dies with its holder) or ``timeout`` seconds,
    after which ``refuse(lock file)`` is raised.
    """
    path = lock_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path)  # no explicit mode: created with the umask's
    try:
        lock.acquire(timeout=0)
    except Timeout:
        if announce:
            print(announce.format(lock=path), file=sys.stderr, flush=True)
        try:
            lock.acquire(timeout=-1 if timeout is None else timeout)
        except Timeout:
            raise refuse(path) from None
    try:
        yield path
    finally:
        lock.release()
