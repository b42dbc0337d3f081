"""The leaderboard's errors: a refused run folder, an inconsistent leaderboard folder, the Hub."""

from __future__ import annotations

import os
from pathlib import Path

from thyroid_bench.errors import ThyroidBenchError

__all__ = ["SubmissionError", "LeaderboardError", "HubError", "ReproductionError"]


class SubmissionError(ThyroidBenchError):
    """A run folder refused by the leaderboard; ``check`` names the check that failed."""

    def __init__(self, run_dir: str | os.PathLike, check: str, reason: str) -> None:
        self.run_dir = Path(run_dir)
        self.check = check
        self.reason = reason
        super().__init__(f"{run_dir}: rejected by check '{check}': {reason}")


class LeaderboardError(ThyroidBenchError):
    """A leaderboard folder whose stored entries are unreadable or inconsistent."""


class HubError(ThyroidBenchError):
    """Opening the pull request on the Hugging Face Hub failed (no token, unreachable, refused)."""


class ReproductionError(ThyroidBenchError):
    """An entry that could not be reproduced from its run folder; the message says why (no
    checkpoint, another checkpoint, predictions that differ: the split, case and figures)."""
