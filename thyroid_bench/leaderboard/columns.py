"""The ranking table's columns, declared once for the Markdown, text and HTML tables.

:func:`ranking_columns` builds them from a section's task: identity columns, then accuracy
and the main score on each evaluation split (the main score in bold in Markdown, starred
in HTML), macro AUC beside them, the gap and the comparison with the row above, the
parameters and the date. Each :class:`Column` says its header per output (``None``: not in
that output), how its cell reads in each, and how the page sorts it. The text table puts
the main score's split and metric first among the scores (``text_order``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import thyroid_bench.leaderboard.display as d
from thyroid_bench.leaderboard.ranking import Group, Stat
from thyroid_bench.leaderboard.rules import CI_LEVEL
from thyroid_bench.tasks import MainScore, Task

__all__ = ["Column", "ranking_columns", "td"]

#: A figure shown beside the scores, without intervals.
BESIDE = "macro_auc"
_NO_STAT = Stat(None, None, 0)


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
    main = task.main_score
    figures = tuple(dict.fromkeys(("accuracy", main.metric)))
    return (
        Column("rank", "Rank", "Rank", "rank", d.rank_text, d.rank_text, _rank_td, first="ascending"),
        Column("model", "Model", "Model", "model", lambda g: f"`{g.model}`", lambda g: g.model,
               lambda g, _: td(f"<code>{d.e(g.model)}</code>", cls="text"),
               kind="text", first="ascending", th_class="text"),
        _label_column("protocol", "Protocol", lambda g: g.protocol, in_text=True),
        _label_column("pretrained", "Pretrained", lambda g: g.pretrained, in_text=False),
        Column("seeds", "Seeds", "Seeds", "seeds", d.seeds, lambda g: str(len(g.entries)),
               lambda g, _: td(d.e(d.seeds(g)), sort=len(g.entries))),
        *(_score_column(split, figure, main) for split in task.eval_splits for figure in figures),
        _beside_markdown_column(task.eval_splits),
        *(_beside_html_column(split) for split in task.eval_splits),
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
                  lambda g: d.mean_sd(_stat(g, split, figure)),
                  lambda g, _: _metric_td(g, split, figure, ci=True, primary=is_main),
                  text_order=10 + 2 * (split != main.split) + (figure != main.metric))


def _beside_markdown_column(splits: tuple[str, ...]) -> Column:
    """Markdown shows the figure beside the scores on every split in one column."""
    name = d.figure_name(BESIDE).name
    header = f"{name[:1].upper()}{name[1:]} " + " / ".join(d.split_name(s).abbrev.lower() for s in splits)

    def cell(g: Group) -> str:
        return " / ".join(d.mean_sd(_stat(g, s, BESIDE)) for s in splits)

    return Column(BESIDE, header, None, None, cell, cell, lambda g, _: "")


def _beside_html_column(split: str) -> Column:
    """HTML shows the figure beside the scores one split per column, sortable."""
    header = f"{d.split_name(split).abbrev} {d.figure_name(BESIDE).name}"
    return Column(f"{split}.{BESIDE}", None, header, None, lambda g: "", lambda g: "",
                  lambda g, _: _metric_td(g, split, BESIDE, ci=False, primary=False))


def _gap_column(metric: str) -> Column:
    """Internal minus external of the main metric, in percentage points."""
    name = d.figure_name(metric)

    def cell(g: Group) -> str:
        return d.signed_pp(g.gap.get(metric, _NO_STAT))

    return Column(f"gap.{metric}", f"Gap ({name.name}, pp)", f"Gap {name.name} (pp)", f"gap {name.stem}",
                  cell, cell, lambda g, _: td(d.e(cell(g)), sort=d.num_attr(g.gap.get(metric, _NO_STAT).mean)),
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
    interval = d.ci_text(g.ci(split, figure)) if ci else ""
    sub = (f'<span class="ci" title="{CI_LEVEL:.0%} CI of the median seed">{d.e(interval)}</span>'
           if interval else "")
    return td(f"{d.e(d.mean_sd(s))}{sub}", sort=d.num_attr(s.mean), cls="primary" if primary else "")
