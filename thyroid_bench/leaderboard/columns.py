"""The ranking table's columns, declared once per task for the Markdown, text and HTML tables.

:func:`table_figures` says which figures a section of a task shows: its *scores* (mean ± sd
over seeds, then the median seed's interval, on each evaluation split; the main score in
bold in Markdown, starred in HTML) and the figures *beside* them (mean ± sd, no interval).
A task without a detection reading shows accuracy and its main score, with its
``shown_beside`` figures (macro AUC when it declares none) beside them; a task with one
(``Task.detection``, e.g. ``residual-tissue``) shows its main score, with its
``shown_beside`` figures and detection sensitivity, specificity and AUC beside it.
:func:`ranking_columns` builds the columns from that: identity columns (the model with its
origin mark and links to its code and weights, :mod:`~thyroid_bench.leaderboard.marks`;
protocol, weights, seeds and the row's reproduction), the scores, the figures beside them,
the gap and the comparison with the row above, the parameters and the date. Each
:class:`Column` says its header per output (``None``: not in that output), how its cell reads
in each, and how the page sorts it. The text table puts the main score's split and metric
first among the scores (``text_order``) and shows the task's ``shown_beside`` figures on the
main split. So that the page fits a 1280-pixel window, it shows a figure beside the scores in
one column with a line per split (as Markdown does) and no date column (a row's details date
each seed).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

import thyroid_bench.leaderboard.display as d
import thyroid_bench.leaderboard.marks as marks
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
    md_raw: bool = False                      # md_cell is Markdown already (links), not text
    html_title: str = ""                      # the HTML header's title (its full name)


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
        _model_column(),
        _label_column("protocol", "Protocol", lambda g: g.protocol, in_text=True),
        _label_column("pretrained", "Pretrained", lambda g: g.pretrained, in_text=False,
                      html="Pre\u00adtrained"),
        Column("seeds", "Seeds", "Seeds", "seeds", d.seeds, lambda g: str(len(g.entries)),
               lambda g, _: td(_seeds_html(g), sort=len(g.entries))),
        _label_column("reproduced", "Reproduced", marks.reproduced, in_text=False,
                      html="Repro\u00adduced", cls="mark"),
        *(_score_column(split, figure, main) for split in splits for figure in figures.scores),
        *(_beside_markdown_column(figure, splits) for figure in figures.beside),
        *(_beside_html_column(figure, splits, main.split) for figure in figures.beside),
        *(_beside_text_column(main.split, figure) for figure in figures.in_text),
        _gap_column(main.metric),
        Column("vs_above", "vs. row above", "vs. row above", "vs above", d.vs_above, d.vs_above,
               _vs_above_td, first="ascending", text_order=30),
        Column("params", "Params", "Params", None, _params, _params,
               lambda g, _: td(d.e(_params(g)), sort=g.representative.entry.model.parameters),
               first="ascending"),
        # Not a column of the page (it fits a 1280-pixel window): a row's details date each seed.
        Column("date", "Date", None, None, d.date, d.date, lambda g, _: ""),
    )


def _model_column() -> Column:
    """The model's name, its origin mark (``external``, ``human reader``: :func:`marks.
    origin_mark`) and links to its code and weights where its entries give them."""
    def md(g: Group) -> str:  # Markdown as is (md_raw): a name and an http(s) address need no escape
        mark = marks.origin_mark(g)
        return " · ".join([f"`{g.model}`", *([f"*{mark}*"] if mark else []),
                           *(f"[{label}](<{url}>)" for label, url in marks.links(g))])

    def text(g: Group) -> str:
        mark = marks.origin_mark(g)
        return f"{g.model} [{mark}]" if mark else g.model

    def html(g: Group, _: str) -> str:
        mark = marks.origin_mark(g)
        badge = (f' <span class="badge {"reader" if mark == marks.READER else "external"}">'
                 f"{d.e(mark)}</span>" if mark else "")
        links = "".join(f' <a class="link" href="{d.e(url)}" rel="noopener noreferrer">{d.e(label)}</a>'
                        for label, url in marks.links(g))
        return td(f"<code>{_breakable(g.model)}</code>{badge}{links}", sort=d.e(g.model), cls="text")

    return Column("model", "Model", "Model", "model", md, text, html, kind="text",
                  first="ascending", th_class="text", md_raw=True)


def _breakable(text: str) -> str:
    """``text`` escaped for HTML, with a line-break opportunity after each ``_ . : / @ + = , -``:
    a long name or tag wraps there rather than widening the table."""
    return re.sub(r"([_.:/@+=,-])", r"\1<wbr>", d.e(text))


def _seeds_html(g: Group) -> str:
    """``3`` and, on a line below, the seeds ``(0, 1, 2)``."""
    return f'{len(g.entries)}<span class="ci">({d.e(", ".join(map(str, g.seeds)))})</span>'


def _label_column(key: str, header: str, value: Callable[[Group], str], *, in_text: bool,
                  html: str | None = None, cls: str = "") -> Column:
    """A column of text (protocol, weights, reproduction), sorted alphabetically, wrapped on
    the page where narrow (``html``: its header there, e.g. with a soft hyphen)."""
    return Column(key, header, html or header, key if in_text else None, value, value,
                  lambda g, _: td(_breakable(value(g)), cls=f"text {cls}".strip()), kind="text",
                  first="ascending", th_class="text")


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


def _beside_html_column(figure: str, splits: tuple[str, ...], main_split: str) -> Column:
    """HTML shows a figure beside the scores in one column, a line per split (as Markdown
    does), sorted by its value on the main score's split; its header is the figure's short
    name (the full one in its title), so that the table fits a 1280-pixel window."""
    name, short = d.figure_name(figure).name, d.figure_name(figure).short
    header = f"{short[:1].upper()}{short[1:]} " + " / ".join(d.split_name(s).abbrev.lower() for s in splits)

    def cell(g: Group, _: str) -> str:
        lines = "".join(f'<span class="line">{d.e(d.stat_text(_stat(g, s, figure), figure))}</span>'
                        for s in splits)
        return td(lines, sort=d.num_attr(_stat(g, main_split, figure).mean))

    return Column(figure, None, header, None, lambda g: "", lambda g: "", cell,
                  html_title=f"{name}, " + " / ".join(splits))


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
    """The parameter count; a dash for a human reader (no parameters)."""
    model = g.representative.entry.model
    return d.DASH if model.kind == marks.READER else d.params(model.parameters)


def _rank_td(g: Group, detail_id: str) -> str:
    rank = (f'{g.rank} <span class="tie" title="not significantly different from the row above">≈</span>'
            if g.tied_with_above else str(g.rank))
    return td(f'<button type="button" class="expand" aria-expanded="false" aria-controls="{detail_id}" '
              f'title="per-class figures and seeds">▸</button>{rank}', sort=g.rank)


def _vs_above_td(g: Group, _: str) -> str:
    vs = g.vs_above
    p = "" if vs is None or vs.get("p_value") is None else f"{vs['p_value']:.6g}"
    parts = re.split(r", | (?=\(n\.s\.\))", d.vs_above(g))  # difference / p-value / (n.s.)
    lines = "".join(f'<span class="line">{d.e(part)}</span>' for part in parts)
    return td(lines, sort=p)


def _metric_td(g: Group, split: str, figure: str, *, ci: bool, primary: bool) -> str:
    s = _stat(g, split, figure)
    interval = d.ci_text(g.ci(split, figure), figure) if ci else ""
    sub = (f'<span class="ci" title="{CI_LEVEL:.0%} CI of the median seed">{d.e(interval)}</span>'
           if interval else "")
    return td(f"{d.e(d.stat_text(s, figure))}{sub}", sort=d.num_attr(s.mean), cls="primary" if primary else "")
