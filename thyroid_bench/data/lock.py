"""One writer per dataset version (:func:`version_lock`).

``prepare`` (synthetic, DICOM and Hub sources alike, through
:func:`thyroid_bench.data.format.write_dataset`) holds a lock on ``<home>/<name>/<version>``
from before it clears old temporary folders until the finished version is renamed into
place. A second writer of the same version waits for the first, saying so on stderr and
naming the lock file; once it holds the lock it finds the version written and stops (unless
``--force``). The lock is an operating-system file lock (:mod:`filelock`): the system releases
it when its holder exits or is killed, so a lock that can be taken proves that no live run owns
the temporary folders of that version, and only then are they removed.

The lock file ``.<version>.lock`` lies beside the version folder, never inside it (nothing is
added to what is published); it is created with the umask's mode so that a group sharing a
dataset home can take it.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from thyroid_bench.errors import DatasetError
from thyroid_bench.locking import folder_lock, lock_path

__all__ = ["lock_path", "version_lock"]


@contextmanager
def version_lock(target: str | Path, *, timeout: float | None = None) -> Iterator[Path]:
    """Hold the writer lock of version folder ``target`` for the block.

    If another process holds it, a line on stderr names the lock and the wait begins: for
    ever (``timeout`` None; the lock dies with its holder) or ``timeout`` seconds, then a
    :class:`DatasetError`.
    """
    def refuse(path: Path) -> DatasetError:
        return DatasetError(f"{target}: another thyroid-bench process has been writing it for "
                            f"over {timeout:.0f} s (lock {path}); run again when it has finished")

    announce = (f"another thyroid-bench process is writing {target} (it holds the lock {{lock}}); "
                "waiting for it to finish")
    with folder_lock(target, timeout=timeout, refuse=refuse, announce=announce) as path:
        yield path
