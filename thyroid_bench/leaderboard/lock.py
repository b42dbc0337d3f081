"""One writer at a time on a leaderboard folder (:func:`writer_lock`).

``submit`` and ``leaderboard --render`` hold a lock on the folder from the moment they read
its stored entries until their last file is in place, so two ``submit`` calls at once are
serialised: the second one's duplicate check sees the first one's entries. The lock file
lies *beside* the folder (``.<name>.lock`` in its parent, ignored by git), never inside
it: a refused ``submit`` leaves the folder byte-identical, and a folder that does not
exist yet can be locked before it is created.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock, Timeout

from thyroid_bench.leaderboard.errors import LeaderboardError

__all__ = ["LOCK_TIMEOUT_S", "lock_path", "writer_lock"]

#: How long a writer waits for another one to finish before giving up, seconds.
LOCK_TIMEOUT_S = 600.0


def lock_path(leaderboard: str | os.PathLike) -> Path:
    """The lock file of a leaderboard folder: ``.<name>.lock`` beside it (symbolic links
    resolved, so two spellings of one folder share one lock)."""
    root = Path(leaderboard).resolve()
    return root.parent / f".{root.name}.lock"


@contextmanager
def writer_lock(leaderboard: str | os.PathLike, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the leaderboard folder's writer lock for the block (waiting up to ``timeout``
    seconds for another writer); :class:`LeaderboardError` if it stays held."""
    path = lock_path(leaderboard)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(path, timeout=timeout)
    try:
        lock.acquire()
    except Timeout:
        raise LeaderboardError(f"{leaderboard}: another thyroid-bench process has been writing it "
                               f"for over {timeout:.0f} s (lock {path}); try again when it has "
                               "finished") from None
    try:
        yield path
    finally:
        lock.release()
