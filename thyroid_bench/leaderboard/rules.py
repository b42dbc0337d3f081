"""The leaderboard's fixed rules: where it lives, the intervals it shows, how it ranks.

What ranks a section is its task's main score (``Task.main_score``); these are the
settings every task shares.
"""

from __future__ import annotations

from pathlib import Path

__all__ = [
    "DEFAULT_LEADERBOARD",
    "MIN_BOOTSTRAP_RESAMPLES",
    "CI_LEVEL",
    "RANK_RESAMPLES",
    "RANK_SEED",
    "SIGNIFICANCE",
    "METRIC_TOLERANCE",
]

#: Default leaderboard folder, relative to the working directory.
DEFAULT_LEADERBOARD = Path("leaderboard")
#: Entries must carry bootstrap intervals of at least this many resamples, at this level.
MIN_BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
#: Paired bootstrap of adjacent rows: resamples, seed, significance level.
RANK_RESAMPLES = 1000
RANK_SEED = 0
SIGNIFICANCE = 0.05
#: A claimed figure equals its recomputed value within this (absolute and relative) tolerance.
METRIC_TOLERANCE = 1e-9
