"""A task's ranking as CSV (``ranking-<task>.csv``, rendered beside the pages and offered as a
download on both): one line per row of every section of the task, in rank order.

Columns: the section (``task``, ``dataset``, ``version``, ``fingerprint``), the row (``rank``,
``tied_with_above``, ``model``, ``kind``, ``origin``, ``reproduced``, ``protocol``,
``pretrained``, ``seeds``, ``seed_list``), then per figure the table shows
(:func:`thyroid_bench.leaderboard.columns.table_figures`) and evaluation split
``<split>_<figure>_mean`` and ``_sd`` over seeds, and for the scores ``_ci_low`` and ``_ci_high``
of the median seed; the gap (``gap_<metric>_mean``, ``_sd``), the paired bootstrap against the
row above (``vs_above_difference``, ``vs_above_p_value``, ``vs_above_significant``),
``parameters`` (empty for a human reader), ``date`` (of the newest seed), ``code_url``,
``weights_url`` and ``submitters``.
Figures are fractions in [0, 1] as in the entries (not percentages), with 6 significant
digits; an undefined figure is an empty cell.

A spreadsheet runs a cell that starts with ``=``, ``+``, ``-`` or ``@`` as a formula, so every
text cell that starts with one of those (or with a tab or carriage return) gets a leading
apostrophe (OWASP's CSV-injection advice); numbers are written as plain decimal numbers, the
only cells that may start with ``-``.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Sequence

import thyroid_bench.leaderboard.marks as marks
from thyroid_bench.leaderboard.columns import table_figures
from thyroid_bench.leaderboard.ranking import Group, Section, Stat

__all__ = ["render_ranking_csv", "safe_cell", "NUMBER"]

#: A cell written as a number: what :func:`safe_cell` leaves as it is even when it starts with ``-``.
NUMBER = re.compile(r"^-?[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$")
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A CSV cell a spreadsheet shows as text: ``None`` is empty, numbers are decimal text, and
    text starting with ``= + - @`` (or a tab or carriage return) gets a leading apostrophe."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value) if isinstance(value, int) else f"{value:.6g}"
    text = str(value)
    if text.startswith(_FORMULA_START) and not NUMBER.match(text):
        return "'" + text
    return text


def _stat(s: Stat | None) -> list[float | None]:
    return [None, None] if s is None else [s.mean, s.sd]


def _header(sec: Section) -> list[str]:
    figures, splits = table_figures(sec.task), sec.task.eval_splits
    cols = ["task", "dataset", "version", "fingerprint", "rank", "tied_with_above", "model", "kind",
            "origin", "reproduced", "protocol", "pretrained", "seeds", "seed_list"]
    for split in splits:
        for fig in figures.scores:
            cols += [f"{split}_{fig}_{x}" for x in ("mean", "sd", "ci_low", "ci_high")]
        cols += [f"{split}_{fig}_{x}" for fig in figures.beside for x in ("mean", "sd")]
    main = sec.task.main_score.metric
    return cols + [f"gap_{main}_mean", f"gap_{main}_sd", "vs_above_difference", "vs_above_p_value",
                   "vs_above_significant", "parameters", "date", "code_url", "weights_url",
                   "submitters"]


def _row(sec: Section, g: Group) -> list[object]:
    figures, splits = table_figures(sec.task), sec.task.eval_splits
    e = g.representative.entry
    row: list[object] = [sec.task.name, sec.dataset, sec.version, sec.fingerprint, g.rank,
                         g.tied_with_above, g.model, e.model.kind, e.origin, marks.reproduced(g),
                         g.protocol, g.pretrained, len(g.entries), " ".join(map(str, g.seeds))]
    for split in splits:
        for fig in figures.scores:
            ci = g.ci(split, fig) or [None, None]
            row += [*_stat(g.stats[split].get(fig)), ci[0], ci[1]]
        for fig in figures.beside:
            row += _stat(g.stats[split].get(fig))
    vs = g.vs_above or {}
    urls = dict.fromkeys(("code", "weights"), "")
    for label, url in marks.links(g):
        what = label.split()[0]
        urls[what] = f"{urls[what]} {url}".strip()
    return row + [*_stat(g.gap.get(sec.task.main_score.metric)), vs.get("difference"),
                  vs.get("p_value"), None if vs.get("significant") is None else bool(vs["significant"]),
                  None if e.model.kind == marks.READER else e.model.parameters,
                  max(s.entry.date for s in g.entries).strftime("%Y-%m-%d"), urls["code"],
                  urls["weights"], "; ".join(dict.fromkeys(s.entry.submitter for s in g.entries))]


def render_ranking_csv(sections: Sequence[Section]) -> str:
    """The ranking of ``sections`` (all of one task) as CSV text (see the module doc)."""
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(_header(sections[0]))
    for sec in sections:
        for g in sec.groups:
            w.writerow([safe_cell(v) for v in _row(sec, g)])
    return out.getvalue()
