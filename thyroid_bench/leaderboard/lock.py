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

from thyroid_bench.leaderboard.errors import LeaderboardError
from thyroid_bench.locking import folder_lock, lock_path

__all__ = ["LOCK_TIMEOUT_S", "lock_path", "writer_lock"]

#: How long a writer waits for another one to finish before giving up, seconds.
LOCK_TIMEOUT_S = 600.0


@contextmanager
def writer_lock(leaderboard: str | os.PathLike, *, timeout: float = LOCK_TIMEOUT_S) -> Iterator[Path]:
    """Hold the leaderboard folder's writer lock for the block (waiting up to ``timeout``
    seconds for another writer); :class:`LeaderboardError` if it stays held."""
    def refuse(path: Path) -> LeaderboardError:
        return LeaderboardError(f"{leaderboard}: another thyroid-bench process has been writing it "
                                f"for over {timeout:.0f} s (lock {path}); try again when it has "
                                "finished")

    with folder_lock(leaderboard, timeout=timeout, refuse=refuse) as path:
        yield path
