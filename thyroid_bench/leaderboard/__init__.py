"""The leaderboard: check a run's entry, store it, group seeds, rank, render, and the Hub.

One module per job: :mod:`~thyroid_bench.leaderboard.checks` (the checks a run passes),
:mod:`~thyroid_bench.leaderboard.store` (the folder's stored entries and labels),
:mod:`~thyroid_bench.leaderboard.transaction` (``submit``),
:mod:`~thyroid_bench.leaderboard.ranking` (rows over seeds, ranking by paired bootstrap),
:mod:`~thyroid_bench.leaderboard.render` and :mod:`~thyroid_bench.leaderboard.page`
(Markdown, text, HTML; columns from :mod:`~thyroid_bench.leaderboard.columns`),
:mod:`~thyroid_bench.leaderboard.hub` (a pull request on the Hugging Face Hub).
A section's task (``get_task(entry.task)``) decides its evaluation splits, classes,
metric suite, the main score it is ranked by, its columns
(:func:`~thyroid_bench.leaderboard.columns.table_figures`) and its published reference lines.
"""

from thyroid_bench.leaderboard.checks import CheckedRun, check_run, first_difference
from thyroid_bench.leaderboard.errors import HubError, LeaderboardError, SubmissionError
from thyroid_bench.leaderboard.hub import push_to_hub
from thyroid_bench.leaderboard.names import entry_id, protocol_label
from thyroid_bench.leaderboard.ranking import Board, Group, Section, Stat, build_board
from thyroid_bench.leaderboard.render import (
    entry_json_schema,
    markdown_table,
    render_html,
    render_leaderboard,
    render_markdown,
    render_text,
)
from thyroid_bench.leaderboard.rules import (
    CI_LEVEL,
    DEFAULT_LEADERBOARD,
    METRIC_TOLERANCE,
    MIN_BOOTSTRAP_RESAMPLES,
    RANK_RESAMPLES,
    RANK_SEED,
    SIGNIFICANCE,
)
from thyroid_bench.leaderboard.store import StoredEntry, load_entries
from thyroid_bench.leaderboard.transaction import SubmitResult, submit

__all__ = [
    "DEFAULT_LEADERBOARD", "MIN_BOOTSTRAP_RESAMPLES", "CI_LEVEL", "RANK_RESAMPLES", "RANK_SEED",
    "SIGNIFICANCE", "METRIC_TOLERANCE",
    "SubmissionError", "LeaderboardError", "HubError",
    "CheckedRun", "StoredEntry", "Stat", "Group", "Section", "Board", "SubmitResult",
    "protocol_label", "entry_id", "first_difference", "check_run", "submit", "load_entries",
    "build_board", "render_leaderboard", "render_markdown", "render_text", "render_html",
    "markdown_table", "entry_json_schema", "push_to_hub",
]
