"""Errors a person can act on.

Every exception raised for bad input derives from :class:`ThyroidBenchError`;
its message names the file, row or tag, what was expected and what to do. The
CLI prints the message alone (no traceback) and exits with status 2.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable

__all__ = ["ThyroidBenchError", "DatasetError", "VerificationError", "PredictionsError",
           "validation_problems", "did_you_mean"]


class ThyroidBenchError(Exception):
    """Base class of every user-facing error of thyroid-bench."""


class DatasetError(ThyroidBenchError):
    """A dataset folder is missing, malformed, or cannot be written."""


class VerificationError(DatasetError):
    """A dataset failed verification (fingerprint, counts, leakage, decoding)."""


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
