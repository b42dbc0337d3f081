"""The ranking table's columns, declared once per task for the Markdown, text and HTML tables.

:func:`table_figures` says which figures a section of a task shows: its *scores* (mean ± sd
over seeds, then the median seed's interval, on each evaluation split; the main score in
bold in Markdown, starred in HTML) and the figures *beside* them (mean ± sd, no interval).
A task without a detection reading shows accuracy and its main score, with its
``shown_beside`` figures (macro AUC when it declares none) beside them; a task with one
(``Task.detection``, e.g. ``residual-tissue``) shows its main score, with its
``shown_beside`` figures and detection sensitivity, specificity and AUC beside it.
:func:`ranking_columns` builds the columns from that: identity columns, the scores, the
figures beside them, the gap and the comparison with the row above, the parameters and the
date. Each :class:`Column` says its header per output (``None``: not in that output), how
its cell reads in each, and how the page sorts it. The text table puts the main score's
split and metric first among the scores (``text_order``) and shows the task's
``shown_beside`` figures on the main split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import thyroid_bench.leaderboard.display as d
from thyroid_bench.leaderboard.ranking import Group, Stat
from thyroid_bench.leaderboard.rules import CI_LEVEL
from thyroid_bench.tasks import MainScore, Task

__all__ = ["Column", "TableFigures", "table_figures", "ranking_columns", "td"]

#: The figure shown beside the scores of a task without detection that declares none.
BESIDE = "macro_auc"
#: Figures shown beside the main score of a task with a detection reading.
DETECTION_BESIDE = ("detection_sensitivity", "detection_specificity", "detection_auc")
_NO_STAT = Stat(None, None, 0)


@dataclass(frozen=True)
class TableFigures:
    """Which figures a section's ranking table shows: the declaration of one task's columns."""

    scores: tuple[str, ...]   # mean ± sd and the median seed's interval, on every evaluation split
    beside: tuple[str, ...]   # mean ± sd without intervals, on every evaluation split
    in_text: tuple[str, ...]  # figures beside that the text table shows too (main split)

    @property
    def chart(self) -> str:
        """The figure the page's chart draws per row."""
        return self.scores[0]

    @property
    def shown(self) -> tuple[str, ...]:
        """Every figure with a column."""
        return (*self.scores, *self.beside)


def table_figures(task: Task) -> TableFigures:
    """The figures of a section of ``task`` (see the module doc)."""
    main = task.main_score.metric
    if task.detection is None:
        scores = tuple(dict.fromkeys(("accuracy", main)))
        beside = task.shown_beside or (BESIDE,)
    else:
        scores = (main,)
        beside = (*task.shown_beside, *DETECTION_BESIDE)
    beside = tuple(f for f in dict.fromkeys(beside) if f not in scores)
    return TableFigures(scores, beside, tuple(f for f in task.shown_beside if f in beside))


@dataclass(frozen=True)
class Column:
    """One column of the ranking table, for every output at once."""

    key: str                                  # HTML data-key
    md: str | None                            # Markdown header (None: not in the Markdown table)
    html: str | None                          # HTML header
    text: str | None                          # plain-text header
    md_cell: Callable[[Group], str]           # the Markdown cell
    text_cell: Callable[[Group], str]         # the plain-text cell
    html_cell: Callable[[Group, str], str]    # the HTML <td>, given the row's detail id
    kind: str = "num"                         # HTML data-type: how the page sorts it
    first: str = "descending"                 # the first sort direction on the page
    th_class: str = ""                        # CSS class of the HTML header
    text_order: int = 0                       # order in the text table (stable)


def td(inner: str, *, sort: object = None, cls: str = "") -> str:
    """An HTML cell: ``inner`` (already escaped), an optional class and ``data-sort`` value."""
    c = f' class="{cls}"' if cls else ""
    s = "" if sort is None else f' data-sort="{sort}"'
    return f"<td{c}{s}>{inner}</td>"


def ranking_columns(task: Task) -> tuple[Column, ...]:
    """The columns of a section of ``task``, in Markdown and HTML order."""
    main, figures = task.main_score, table_figures(task)
    splits = task.eval_splits
    return (
        Column("rank", "Rank", "Rank", "rank", d.rank_text, d.rank_text, _rank_td, first="ascending"),
        Column("model", "Model", "Model", "model", lambda g: f"`{g.model}`", lambda g: g.model,
               lambda g, _: td(f"<code>{d.e(g.model)}</code>", cls="text"),
               kind="text", first="ascending", th_class="text"),
        _label_column("protocol", "Protocol", lambda g: g.protocol, in_text=True),
        _label_column("pretrained", "Pretrained", lambda g: g.pretrained, in_text=False),
        Column("seeds", "Seeds", "Seeds", "seeds", d.seeds, lambda g: str(len(g.entries)),
               lambda g, _: td(d.e(d.seeds(g)), sort=len(g.entries))),
        *(_score_column(split, figure, main) for split in splits for figure in figures.scores),
        *(_beside_markdown_column(figure, splits) for figure in figures.beside),
        *(_beside_html_column(split, figure) for figure in figures.beside for split in splits),
        *(_beside_text_column(main.split, figure) for figure in figures.in_text),
        _gap_column(main.metric),
        Column("vs_above", "vs. row above", "vs. row above", "vs above", d.vs_above, d.vs_above,
               _vs_above_td, first="ascending", text_order=30),
        Column("params", "Params", "Params", None, _params, _params,
               lambda g, _: td(d.e(_params(g)), sort=g.representative.entry.model.parameters),
               first="ascending"),
        Column("date", "Date", "Date", None, d.date, d.date,
               lambda g, _: td(d.e(d.date(g)), cls="text"), kind="text"),
    )


def _label_column(key: str, header: str, value: Callable[[Group], str], *, in_text: bool) -> Column:
    """A column of text (protocol, weights), sorted alphabetically."""
    return Column(key, header, header, key if in_text else None, value, value,
                  lambda g, _: td(d.e(value(g)), cls="text"), kind="text", first="ascending",
                  th_class="text")


def _score_column(split: str, figure: str, main: MainScore) -> Column:
    """A figure on a split: mean ± sd over seeds, then the median seed's interval."""
    header = f"{d.split_name(split).abbrev} {d.figure_name(figure).name}"
    text = f"{d.split_name(split).text} {d.figure_name(figure).short.rstrip('.')}"
    is_main = (split, figure) == (main.split, main.metric)

    def md_cell(g: Group) -> str:
        cell = d.with_ci(g, split, figure)
        return f"**{cell}**" if is_main else cell

    return Column(f"{split}.{figure}", f"**{header}**" if is_main else header,
                  f"{header} ★" if is_main else header, text, md_cell,
                  lambda g: d.stat_text(_stat(g, split, figure), figure),
                  lambda g, _: _metric_td(g, split, figure, ci=True, primary=is_main),
                  text_order=10 + 2 * (split != main.split) + (figure != main.metric))


def _beside_markdown_column(figure: str, splits: tuple[str, ...]) -> Column:
    """Markdown shows a figure beside the scores on every split in one column."""
    name = d.figure_name(figure).name
    header = f"{name[:1].upper()}{name[1:]} " + " / ".join(d.split_name(s).abbrev.lower() for s in splits)

    def cell(g: Group) -> str:
        return " / ".join(d.stat_text(_stat(g, s, figure), figure) for s in splits)

    return Column(figure, header, None, None, cell, cell, lambda g, _: "")


def _beside_html_column(split: str, figure: str) -> Column:
    """HTML shows a figure beside the scores one split per column, sortable."""
    header = f"{d.split_name(split).abbrev} {d.figure_name(figure).name}"
    return Column(f"{split}.{figure}", None, header, None, lambda g: "", lambda g: "",
                  lambda g, _: _metric_td(g, split, figure, ci=False, primary=False))


def _beside_text_column(split: str, figure: str) -> Column:
    """The text table shows a task's ``shown_beside`` figure on the main score's split."""
    text = f"{d.split_name(split).text} {d.figure_name(figure).short.rstrip('.')}"

    def cell(g: Group) -> str:
        return d.stat_text(_stat(g, split, figure), figure)

    return Column(f"text.{split}.{figure}", None, None, text, cell, cell, lambda g, _: "",
                  text_order=20)


def _gap_column(metric: str) -> Column:
    """Internal minus external of the main metric (percentage points for a fraction)."""
    name = d.figure_name(metric)
    unit = ", pp" if name.percent else ""

    def cell(g: Group) -> str:
        s = g.gap.get(metric, _NO_STAT)
        if name.percent or s.mean is None:
            return d.signed_pp(s)
        return f"{s.mean:+.{name.decimals}f}".replace("-", "−") + (
            "" if s.sd is None else f" ± {s.sd:.{name.decimals}f}")

    return Column(f"gap.{metric}", f"Gap ({name.name}{unit})", f"Gap {name.name}{' (pp)' if unit else ''}",
                  f"gap {name.stem}", cell, cell,
                  lambda g, _: td(d.e(cell(g)), sort=d.num_attr(g.gap.get(metric, _NO_STAT).mean)),
                  first="ascending", text_order=30)


# --------------------------------------------------------------------------- cells
def _stat(g: Group, split: str, figure: str) -> Stat:
    return g.stats[split].get(figure, _NO_STAT)


def _params(g: Group) -> str:
    return d.params(g.representative.entry.model.parameters)


def _rank_td(g: Group, detail_id: str) -> str:
    rank = (f'{g.rank} <span class="tie" title="not significantly different from the row above">≈</span>'
            if g.tied_with_above else str(g.rank))
    return td(f'<button type="button" class="expand" aria-expanded="false" aria-controls="{detail_id}" '
              f'title="per-class figures and seeds">▸</button>{rank}', sort=g.rank)


def _vs_above_td(g: Group, _: str) -> str:
    vs = g.vs_above
    p = "" if vs is None or vs.get("p_value") is None else f"{vs['p_value']:.6g}"
    return td(d.e(d.vs_above(g)), sort=p)


def _metric_td(g: Group, split: str, figure: str, *, ci: bool, primary: bool) -> str:
    s = _stat(g, split, figure)
    interval = d.ci_text(g.ci(split, figure), figure) if ci else ""
    sub = (f'<span class="ci" title="{CI_LEVEL:.0%} CI of the median seed">{d.e(interval)}</span>'
           if interval else "")
    return td(f"{d.e(d.stat_text(s, figure))}{sub}", sort=d.num_attr(s.mean), cls="primary" if primary else "")
