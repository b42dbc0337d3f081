"""Grouping seeds into rows and ranking the rows (:func:`build_board`).

The entries of one task and dataset version with the same model, protocol (name and
overrides) and pretrained weights form one row, with mean and sample standard deviation
(ddof = 1) over the seeds. Rows are ranked by the mean of the task's main score
(``Task.main_score``: for ``four-pattern``, external macro F1; the external centre is never
trained on, so it is the generalisation test). Each row's confidence intervals are those of
its *median seed* (the seed whose main score is the median, the lower one for an even
count); the same entry represents the row in the paired bootstrap (the task's metric
suite's ``compare`` through :func:`thyroid_bench.evaluation.suites.compare_task`, on the
main score's split, 1000 resamples, seed 0) against the row above it. A row not significantly different
(p >= 0.05) from the row above shares its rank and is marked ``≈``; where the main split's
labels are withheld (:mod:`thyroid_bench.leaderboard.withheld`) the comparison needs labels the
leaderboard does not hold, so it is not computed. The figures averaged
over seeds are the suite's overall figures (``get_suite(task.metric_suite).figures``), the
task's main score and ``shown_beside`` figures, and the suite's per-class figure paths.
"""

from __future__ import annotations

import math
import numbers
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.evaluation.suites import compare_task, get_suite
from thyroid_bench.leaderboard.errors import LeaderboardError
from thyroid_bench.leaderboard.names import protocol_label, section_rel
from thyroid_bench.leaderboard.recheck import InvalidEntry
from thyroid_bench.leaderboard.rules import RANK_RESAMPLES, RANK_SEED, SIGNIFICANCE
from thyroid_bench.leaderboard.store import StoredEntry, private_splits, read_labels
from thyroid_bench.leaderboard.withheld import WITHHELD_TIE
from thyroid_bench.tasks import MainScore, Task, get_task

__all__ = ["Stat", "Group", "Section", "Board", "build_board", "overall_figures"]



def _is_number(x: object) -> bool:
    return isinstance(x, numbers.Real) and not isinstance(x, bool)


@dataclass
class Stat:
    """Mean and sample standard deviation (ddof = 1) of one figure over a row's seeds."""

    mean: float | None
    sd: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        """Mean and sd over the defined values (``None`` and non-numbers skipped); sd needs two."""
        v = np.array([x for x in values if _is_number(x)], dtype=np.float64)
        if v.size == 0:
            return cls(None, None, 0)
        return cls(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else None, int(v.size))


@dataclass
class Group:
    """One row: the seeds of one model, protocol and pretrained weights on one dataset version."""

    model: str
    protocol: str
    pretrained: str
    entries: list[StoredEntry]                 # sorted by seed
    representative: StoredEntry                # the median seed (main score)
    stats: dict[str, dict[str, Stat]]          # split -> figure path -> Stat
    gap: dict[str, Stat]                       # figure -> Stat of internal - external
    main_score: MainScore                      # what the row is ranked by
    rank: int = 0
    tied_with_above: bool = False
    vs_above: dict | None = None               # paired bootstrap result against the row above

    @property
    def seeds(self) -> list[int]:
        return [s.entry.seed for s in self.entries]

    @property
    def primary(self) -> float | None:
        """The mean main score over the seeds."""
        return self.stats[self.main_score.split][self.main_score.metric].mean

    def ci(self, split: str, figure: str) -> list[float] | None:
        """The representative (median-seed) entry's bootstrap CI of a figure."""
        return self.representative.entry.metrics[split].get("ci", {}).get(figure)


@dataclass
class Section:
    """The ranked rows of one task and dataset version."""

    task: Task
    dataset: str
    version: str
    fingerprint: str
    synthetic: bool
    n_cases: dict[str, int]                    # evaluation split -> cases
    groups: list[Group]
    rel: PurePosixPath
    # evaluation split -> SHA-256 of the organisers' labels file, where the labels are withheld
    withheld: dict[str, str] = field(default_factory=dict)

    @property
    def title(self) -> str:
        return f"{self.task.name} · {self.dataset} {self.version}"


@dataclass
class Board:
    """The whole leaderboard: one section per task and dataset version, and the stored
    entries left out because they failed their checks (``--skip-invalid``)."""

    sections: list[Section] = field(default_factory=list)
    invalid: list[InvalidEntry] = field(default_factory=list)


def build_board(entries: Sequence[StoredEntry], leaderboard: str | os.PathLike | None = None) -> Board:
    """Group entries into rows, rank them per task and dataset version (see module doc).

    Labels for the paired bootstrap come from ``<leaderboard>/entries/.../labels/``;
    a section without them is ranked by the mean alone (no significance marks).
    """
    by_section: dict[tuple, list[StoredEntry]] = {}
    for s in entries:
        e = s.entry
        by_section.setdefault((e.task, e.dataset.name, e.dataset.version, e.dataset.fingerprint),
                              []).append(s)
    board = Board()
    for _, members in sorted(by_section.items(),
                               key=lambda kv: (kv[0][0], kv[0][1], _version_key(kv[0][2]))):
        board.sections.append(_section(members, leaderboard))
    return board


def _section(members: Sequence[StoredEntry], leaderboard: str | os.PathLike | None) -> Section:
    """The ranked rows of one section's entries."""
    first = members[0].entry
    task = get_task(first.task)
    rel = section_rel(first)
    section_dir = None if leaderboard is None else Path(leaderboard).joinpath(*rel.parts)
    labels = None if section_dir is None else read_labels(section_dir, task)
    withheld = {} if section_dir is None else private_splits(section_dir)
    rows: dict[tuple, list[StoredEntry]] = {}
    for s in members:
        rows.setdefault((s.entry.model.name, protocol_label(s.entry), s.entry.pretrained), []).append(s)
    groups = [_group(v, task) for v in rows.values()]
    _rank(groups, labels, task, withheld)
    n_cases = {split: first.predictions[split].rows for split in task.eval_splits}
    return Section(task, first.dataset.name, first.dataset.version, first.dataset.fingerprint,
                   first.dataset.synthetic, n_cases, groups, rel, withheld)


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(-int(x) for x in v.split("."))  # newest version first


# --------------------------------------------------------------------------- rows
def overall_figures(task: Task) -> tuple[str, ...]:
    """The overall figures a section of ``task`` aggregates over seeds, in display order: its
    metric suite's figures, then its main score and ``shown_beside`` figures if not among them."""
    suite = get_suite(task.metric_suite)
    return tuple(dict.fromkeys((*suite.figures, task.main_score.metric, *task.shown_beside)))


def _figure_paths(task: Task) -> list[str]:
    """Per-split figure paths aggregated over seeds: the overall ones, then the suite's other
    figure paths (per class)."""
    suite = get_suite(task.metric_suite)
    return list(dict.fromkeys((*overall_figures(task), *suite.figure_names(task.class_names))))


def _get(metrics: Mapping, path: str) -> Any:
    cur: Any = metrics
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _median_entry(entries: Sequence[StoredEntry], main: MainScore) -> StoredEntry:
    """The entry whose main score is the median (the lower middle for an even count)."""
    def key(s: StoredEntry) -> tuple:
        v = s.entry.metrics[main.split].get(main.metric)
        return (-math.inf if v is None else v, s.entry.seed)

    ordered = sorted(entries, key=key)
    return ordered[(len(ordered) - 1) // 2]


def _gap_stats(entries: Sequence[StoredEntry], task: Task) -> dict[str, Stat]:
    """Mean and sd over seeds of the first evaluation split minus the second (internal minus
    external: what is lost on the unseen centre), per overall figure."""
    figures = overall_figures(task)
    if len(task.eval_splits) != 2:
        return {fig: Stat(None, None, 0) for fig in figures}
    a, b = task.eval_splits

    def diff(s: StoredEntry, fig: str) -> float | None:
        x, y = s.entry.metrics[a].get(fig), s.entry.metrics[b].get(fig)
        return float(x) - float(y) if _is_number(x) and _is_number(y) else None

    return {fig: Stat.of(diff(s, fig) for s in entries) for fig in figures}


def _group(entries: Sequence[StoredEntry], task: Task) -> Group:
    first = entries[0].entry
    entries = sorted(entries, key=lambda s: (s.entry.seed, s.entry_id))
    stats = {split: {path: Stat.of(_get(s.entry.metrics[split], path) for s in entries)
                     for path in _figure_paths(task)} for split in task.eval_splits}
    return Group(first.model.name, protocol_label(first), first.pretrained, list(entries),
                 _median_entry(entries, task.main_score), stats, _gap_stats(entries, task),
                 task.main_score)


# --------------------------------------------------------------------------- ranking
def _aligned_probs(stored: StoredEntry, task: Task, split: str, labels: Mapping[str, int]) -> np.ndarray:
    """The entry's probabilities in case-id order; its file's own label column (if any), which
    its entry's hash vouches for, must agree with the section's stored labels."""
    path = stored.predictions_path(split)
    preds, y, mismatch = read_predictions(path, task, expected_case_ids=sorted(labels)).against(labels)
    if mismatch.size:
        i = int(mismatch[0])
        raise LeaderboardError(
            f"{stored.folder.parent / 'labels' / f'{split}.csv'}: case {preds.case_ids[i]!r} is "
            f"{task.label_text(int(y[i]))} there but {task.label_text(int(preds.labels[i]))} in "
            f"{path} ({mismatch.size} case(s) disagree); restore the labels file from git")
    return preds.probs


def _rank(groups: list[Group], labels: Mapping[str, dict[str, int]] | None, task: Task,
          withheld: Mapping[str, str] | None = None) -> None:
    """Order by mean main score; compare adjacent rows by the paired bootstrap (not computed
    where the main split's labels are withheld: ``vs_above`` is then :data:`~thyroid_bench.
    leaderboard.withheld.WITHHELD_TIE`, never a guess)."""
    main = task.main_score
    groups.sort(key=lambda g: (-(g.primary if g.primary is not None else -math.inf),
                               g.model, g.protocol, g.pretrained))
    y = probs = None
    if main.split in (withheld or {}):
        for i, g in enumerate(groups):
            g.rank, g.tied_with_above, g.vs_above = i + 1, False, None if i == 0 else dict(WITHHELD_TIE)
        return
    if labels is not None:
        truth = labels[main.split]
        y = np.array([truth[c] for c in sorted(truth)], dtype=np.int64)
        probs = [_aligned_probs(g.representative, task, main.split, truth) for g in groups]
    for i, g in enumerate(groups):
        g.rank, g.tied_with_above, g.vs_above = i + 1, False, None
        if i == 0 or y is None:
            continue
        above = groups[i - 1]
        result = compare_task(task, y, probs[i], probs[i - 1], metrics=[main.metric],
                              resamples=RANK_RESAMPLES, seed=RANK_SEED, alpha=SIGNIFICANCE)[main.metric]
        g.vs_above = result
        if result["significant"] is False:
            g.rank, g.tied_with_above = above.rank, True
