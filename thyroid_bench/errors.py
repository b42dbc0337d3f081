"""Errors a person can act on.

Every exception raised for bad input derives from :class:`ThyroidBenchError`;
its message names the file, row or tag, what was expected and what to do. The
CLI prints the message alone (no traceback) and exits with status 2.
"""

from __future__ import annotations

import difflib
import errno
import os
import tempfile
from collections.abc import Iterable

__all__ = ["ThyroidBenchError", "DatasetError", "VerificationError", "SpillError", "PredictionsError",
           "validation_problems", "did_you_mean", "printable", "os_error_line", "size_text",
           "spill_error"]


class ThyroidBenchError(Exception):
    """Base class of every user-facing error of thyroid-bench."""


class DatasetError(ThyroidBenchError):
    """A dataset folder is missing, malformed, or cannot be written."""


class VerificationError(DatasetError):
    """A dataset failed verification (fingerprint, counts, leakage, decoding)."""


class SpillError(DatasetError):
    """Temporary work on disk failed (a full disk, no permission): not a fault of the data."""


class PredictionsError(ThyroidBenchError):
    """A predictions file does not match the format or the split it claims to cover."""


def validation_problems(exc: Exception, limit: int = 20) -> str:
    """A pydantic ``ValidationError`` as one line: ``field.path: message; ...`` (first ``limit``)."""
    errors = exc.errors()[:limit]  # type: ignore[attr-defined]
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in errors)


def did_you_mean(name: str, known: Iterable[str], *, n: int = 2, cutoff: float = 0.5) -> str:
    """``"did you mean a, b? "`` for the known names close to ``name``, or ``""``."""
    close = difflib.get_close_matches(name, list(known), n=n, cutoff=cutoff)
    return f"did you mean {', '.join(close)}? " if close else ""


def printable(name: str | os.PathLike) -> str:
    """A file name safe to write as UTF-8 and to print: bytes of a name that are not UTF-8
    (which Python keeps as surrogates, so the file can still be opened) become ``\\xNN``
    escapes; any other text is unchanged."""
    return os.fsdecode(name).encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")


_OS_ADVICE = {
    errno.ENOSPC: "the disk is full: free space there or choose another place",
    errno.EDQUOT: "your disk quota is used up: free space or choose another place",
    errno.EACCES: "your account may not do this there: change its permissions or choose another place",
    errno.EPERM: "your account may not do this there: change its permissions or choose another place",
    errno.EROFS: "that file system is read-only: choose another place",
    errno.ENOENT: "it vanished while in use: make sure nothing else removes it and run again",
    errno.EIO: "the disk reported an input/output error: check the disk and run again",
}


def os_error_line(exc: OSError, doing: str, advice: str | None = None) -> str:
    """An operating-system error as one line: what was being done, the path, the system's
    reason and what to do (``advice``, else a standard hint for the error number)."""
    where = f"{printable(exc.filename)}: " if exc.filename is not None else ""
    reason = _os_reason(exc)
    hint = advice or _OS_ADVICE.get(exc.errno or 0, "fix the cause and run again")
    return f"{doing}: {where}{reason}; {hint}"


def _os_reason(exc: OSError) -> str:
    """The system's reason for an OS error, in its words."""
    return exc.strerror or (os.strerror(exc.errno) if exc.errno else type(exc).__name__)


def size_text(n: int | float) -> str:
    """A byte count for a person: ``"3.2 GB"``, ``"41 MB"``, ``"512 kB"`` (decimal units)."""
    for unit, scale in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}" if n < 10 * scale else f"{n / scale:.0f} {unit}"
    return f"{max(1, round(n / 1e3))} kB"


def spill_error(exc: OSError, what: str, folder: str | os.PathLike | None, *, written: int,
                count: int, expected: int | None, advice: str) -> SpillError:
    """An OS error while putting ``what`` aside on disk in ``folder`` (None: the system's
    temporary folder) as one line: the folder, the system's reason, about how much room the
    work needs there and ``advice`` (e.g. "set TMPDIR to a disk with room"). The room is
    estimated from the ``written`` bytes of the first ``count`` items (the failing one
    included), scaled to the ``expected`` number of items when that is known and larger."""
    place = printable(folder if folder is not None else tempfile.gettempdir())
    reason = _os_reason(exc)
    need = written / count * max(count, expected or 0)
    return SpillError(f"could not put {what} aside in {place} ({reason}): about {size_text(need)} "
                        f"of free space is needed there; {advice}")
