"""What a leaderboard row is marked with: where its predictions came from, whether it was
reproduced, and where its code and weights are.

Shared by the Markdown, HTML and CSV renderings (:mod:`thyroid_bench.leaderboard.columns`,
:mod:`~thyroid_bench.leaderboard.page`, :mod:`~thyroid_bench.leaderboard.ranking_csv`):

- :func:`origin_mark`: ``"human reader"`` for a person's reads, ``"external"`` for predictions
  made outside the harness (origin ``external``, entered with ``thyroid-bench entry new``),
  ``None`` for a run of the harness;
- :func:`reproduced`: the row's reproduction, from each seed's
  :func:`thyroid_bench.leaderboard.reproduce.row_mark` (one mark when every seed has it);
- :func:`links`: the model's code and weights addresses the entries give (``ModelMeta.
  code_url`` / ``weights_url``, http(s) only: :data:`thyroid_bench.bounds.URL`);
- :func:`legend`: the line under each table that says what the marks mean;
- :func:`csv_name`: the rendered file that holds a task's ranking as CSV.
"""

from __future__ import annotations

import re

from thyroid_bench.bounds import URL_PATTERN
from thyroid_bench.leaderboard.ranking import Group
from thyroid_bench.leaderboard.reproduce import row_mark
from thyroid_bench.tasks import Task

__all__ = ["EXTERNAL", "READER", "origin_mark", "reproduced", "links", "csv_name", "legend"]

#: The mark of a row whose predictions were made outside the harness.
EXTERNAL = "external"
#: The mark of a row of a person's reads (also made outside the harness).
READER = "human reader"


def origin_mark(g: Group) -> str | None:
    """``"human reader"``, ``"external"`` or ``None`` (a harness run), from the row's median seed
    (a row's seeds share model name and protocol, and only external entries name protocol
    ``external``)."""
    e = g.representative.entry
    if e.model.kind == READER:
        return READER
    return EXTERNAL if e.origin == "external" else None


def reproduced(g: Group) -> str:
    """The row's reproduction: the one mark all its seeds have, else each mark with its seeds
    (``"reproduced by retraining: seed 0; not reproduced: seeds 1, 2"``)."""
    marks: dict[str, list[int]] = {}
    for s in g.entries:
        marks.setdefault(row_mark(s), []).append(s.entry.seed)
    if len(marks) == 1:
        return next(iter(marks))
    return "; ".join(f"{mark}: seed{'s' if len(seeds) > 1 else ''} {', '.join(map(str, seeds))}"
                     for mark, seeds in marks.items())


def links(g: Group) -> list[tuple[str, str]]:
    """(label, address) of the row's code and weights, as its entries give them, each address
    once, in seed order (``code``, ``weights``; numbered when seeds give several). Only
    addresses of :data:`~thyroid_bench.bounds.URL_PATTERN` (the entry's bound, checked again
    here because they go into links unescaped in Markdown)."""
    out: list[tuple[str, str]] = []
    for what in ("code", "weights"):
        urls = list(dict.fromkeys(u for s in g.entries if (u := getattr(s.entry.model, f"{what}_url"))
                                  is not None and re.fullmatch(URL_PATTERN, u)))
        out += [(what if len(urls) == 1 else f"{what} {i}", u) for i, u in enumerate(urls, start=1)]
    return out


def csv_name(task: Task) -> str:
    """``ranking-<task>.csv``: the rendered ranking of a task's sections, as CSV."""
    return f"ranking-{task.name}.csv"


def legend() -> str:
    """What the marks of the rows mean (Markdown): the line under each ranking table."""
    return (f"*{EXTERNAL}*: predictions made outside the harness (another framework, a product), "
            "entered with `thyroid-bench entry new` and scored from their predictions like every "
            f"row, but not trained, nor reproducible, by the harness; *{READER}*: a person's reads, "
            "entered the same way. *Reproduced*: *reproduced by retraining* (the harness trained "
            "the run again and wrote byte-identical predictions), *reproduced by evaluation* (its "
            "checkpoint predicted every case again, within tolerance), *not reproduced* (no "
            "reproduction recorded), *external predictions* (nothing the harness can re-run).")
