"""The leaderboard's ``index.html``: one self-contained page (inline CSS, JavaScript and SVG).

It loads nothing from the network, so it works offline and from ``file://``. The page
skeleton, its CSS and its JavaScript are package data (``templates/page.html``,
``page.css``, ``page.js``); the ranking table's columns, the chart's figure and the seed
table's figures come from the task's declaration
(:mod:`thyroid_bench.leaderboard.columns`), per-class tables and confusion matrices list
the section's task's classes (and its detection reading, if it has one), each row's note
lists the suite's other figures, and the task's published results are reference lines
under the table, never ranked.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from string import Template
from urllib.parse import quote

import thyroid_bench.leaderboard.display as d
import thyroid_bench.leaderboard.marks as marks
from thyroid_bench.leaderboard.columns import Column, ranking_columns, table_figures
from thyroid_bench.leaderboard.ranking import Board, Group, Section, overall_figures
from thyroid_bench.leaderboard.ranking_csv import render_ranking_csv
from thyroid_bench.leaderboard.rules import CI_LEVEL
from thyroid_bench.tasks import Task

__all__ = ["render_html"]

_PER_CLASS = (("sensitivity", "Sensitivity"), ("specificity", "Specificity"), ("ppv", "PPV"),
              ("npv", "NPV"), ("f1", "F1"), ("auc", "AUC"))


def render_html(board: Board) -> str:
    """``leaderboard/index.html``: one self-contained page (inline CSS, JS, SVG; no network)."""
    tasks = d.page_tasks(board)
    by_task: dict[str, list[Section]] = {}
    for sec in board.sections:
        by_task.setdefault(sec.task.name, []).append(sec)
    downloads = {name: _csv_link(secs) for name, secs in by_task.items()}
    sections = "".join(_html_section(s, i, downloads[s.task.name]) for i, s in enumerate(board.sections)) or (
        "<p><em>No entries yet.</em> See How to submit below.</p>")
    rules = "\n\n".join(d.ranking_rules(m, names) for m, names in d.main_scores(board))
    return Template(d.template("page.html")).substitute(
        css=d.template("page.css"), js=d.template("page.js"), generated=d.e(d.GENERATED),
        lead=d.md_inline(d.lead(tasks)), rules=d.md_inline(rules),
        main=sections + _how_to_submit_html(d.how_to_submit(tasks)))


def _csv_link(sections: Sequence[Section]) -> str:
    """A link that downloads the task's ranking CSV (the text of ``ranking-<task>.csv``), held
    in the page itself as a data URL, so it works offline, from ``file://`` and from a copy of
    the page alone (``--html OUT``)."""
    name = marks.csv_name(sections[0].task)
    url = "data:text/csv;charset=utf-8," + quote(render_ranking_csv(sections), safe="")
    return (f'<a class="csv-download" download="{d.e(name)}" href="{url}">Download the ranking '
            f"as CSV</a> (<code>{d.e(name)}</code>)")


def _html_section(sec: Section, index: int, download: str) -> str:
    columns = ranking_columns(sec.task)
    shown = [c for c in columns if c.html is not None]
    head = "".join(_th(c) for c in shown)
    bodies = []
    for i, g in enumerate(sec.groups):
        detail_id = f"detail-{index}-{i}"
        main_row = '<tr class="main">' + "".join(c.html_cell(g, detail_id) for c in shown) + "</tr>"
        mark = f' data-mark="{d.e(marks.origin_mark(g))}"' if marks.origin_mark(g) else ""
        bodies.append(f'<tbody class="group" data-model="{d.e(g.model)}" '
                      f'data-protocol="{d.e(g.protocol)}"{mark}>'
                      + main_row + _detail_row(g, sec.task, detail_id, len(shown)) + "</tbody>")
    protocols = "".join(f"<li><code>{d.e(n)}</code>: {d.e(t)}</li>" for n, t in d.protocols(sec))
    hardware = "".join(f"<li>{d.e(env)}: {d.e(', '.join(rows))}</li>" for env, rows in d.hardware(sec))
    return (f'<section class="board" id="section-{index}"><h2>{d.e(sec.title)}</h2>'
            f'<p class="note">{d.md_inline(d.section_note(sec))}</p>'
            f'<div class="table-wrap"><table class="ranking" data-section="{d.e(sec.rel)}"><thead><tr>'
            + head + "</tr></thead>" + "".join(bodies) + "</table></div>"
            + f'<p class="note legend">{d.md_inline(marks.legend())} {download}</p>'
            + _published(sec.task) + _chart(sec, index)
            + f"<h3>Protocols</h3><ul>{protocols}</ul><h3>Hardware and software</h3><ul>{hardware}</ul>"
            + "</section>")


def _th(c: Column) -> str:
    cls = f' class="{c.th_class}"' if c.th_class else ""
    title = f' title="{d.e(c.html_title)}"' if c.html_title else ""
    return (f'<th scope="col"{cls}{title} data-key="{c.key}" data-type="{c.kind}" data-first="{c.first}">'
            f"{d.e(c.html)}</th>")


def _published(task: Task) -> str:
    """The task's published results: reference lines, marked, never ranked."""
    if not task.published:
        return ""
    items = "".join(f"<li>{d.md_inline(d.published_line(ref))}</li>" for ref in task.published)
    return (f'<div class="published"><h3>Published results</h3><p class="note">Reference lines, '
            f"not ranked: other data, other protocols.</p><ul>{items}</ul></div>")


# --------------------------------------------------------------------------- a row's details
def _detail_row(g: Group, task: Task, detail_id: str, width: int) -> str:
    tables = "".join(_per_class_table(g, task, split) for split in task.eval_splits)
    body = (_model_note(g) + '<div class="detail-grid">' + tables
            + _confusion(g, task, task.main_score.split) + _detection_confusion(g, task, task.main_score.split)
            + _seed_table(g, task) + "</div>")
    return f'<tr class="detail" id="{detail_id}" hidden><td colspan="{width}">{body}</td></tr>'


def _class_label(task: Task, index: int) -> str:
    code = task.class_code(index)
    return f"{task.classes[index].name} ({code})" if code else task.classes[index].name


def _note_figures(task: Task) -> list[tuple[str, str]]:
    """(figure, label) of the suite's overall figures that have no column: a row's note."""
    shown = set(table_figures(task).shown)
    out = []
    for fig in overall_figures(task):
        if fig not in shown:
            name = d.figure_name(fig).name
            out.append((fig, f"{name[:1].upper()}{name[1:]}"))
    return out


def _per_class_table(g: Group, task: Task, split: str) -> str:
    support = g.representative.entry.metrics[split].get("per_class") or {}
    head = "".join(f"<th>{label}</th>" for _, label in _PER_CLASS)
    rows = []
    for c in task.classes:
        n = support.get(c.name, {}).get("support", "")
        cells = "".join(f"<td>{d.e(d.mean_sd(g.stats[split][f'per_class.{c.name}.{f}']))}</td>"
                        for f, _ in _PER_CLASS)
        rows.append(f"<tr><td>{d.e(_class_label(task, c.index))}</td><td>{n}</td>{cells}</tr>")
    extra = "; ".join(f"{label} {d.stat_text(g.stats[split][k], k)}" for k, label in _note_figures(task))
    return (f'<div><h3>{split.capitalize()} (n = {g.representative.entry.metrics[split].get("n", "")}), '
            f"per class, % (mean ± sd over seeds)</h3>"
            f'<table class="small"><thead><tr><th>Class</th><th>n</th>{head}</tr></thead>'
            f"<tbody>{''.join(rows)}</tbody></table><p class=\"note\">{d.e(extra)}</p></div>")


def _seed_table(g: Group, task: Task) -> str:
    main, figures = task.main_score, table_figures(task)
    cells = [(split, fig) for split in task.eval_splits for fig in figures.scores]
    head = "".join(f"<th>{d.split_name(s).abbrev} {d.figure_name(f).short}</th>" for s, f in cells)
    head += "".join(f"<th>{d.split_name(main.split).abbrev} {d.figure_name(f).short}</th>"
                    for f in figures.beside)
    rows = []
    for s in g.entries:
        m = s.entry.metrics
        mark = " (median)" if s is g.representative else ""
        scores = "".join(f"<td>{d.e(_seed_score(m[split], fig))}</td>" for split, fig in cells)
        beside = "".join(f"<td>{d.e(d.value_text(m[main.split].get(f), f))}</td>" for f in figures.beside)
        env = s.entry.environment
        wall = f"{s.entry.wall_time_s:.0f} s" if s.entry.origin == "harness" else d.DASH
        rows.append(
            f"<tr><td>{s.entry.seed}{mark}</td>{scores}{beside}"
            f"<td>{wall}</td><td>{d.e(env.device_name if env else 'not recorded')}</td>"
            f"<td>{d.e(marks.row_mark(s))}</td>"
            f"<td>{d.e(s.entry.submitter)}</td><td>{d.e(s.entry.date.strftime('%Y-%m-%d %H:%M'))}</td>"
            f'<td><a href="{d.e(s.rel)}/entry.json">{d.e(s.entry_id)}</a></td></tr>')
    return (f'<div><h3>Seeds (each with its {CI_LEVEL:.0%} bootstrap CI), %</h3><table class="small">'
            f"<thead><tr><th>Seed</th>{head}<th>Wall time</th><th>Device</th><th>Reproduced</th>"
            f"<th>Submitter</th><th>Date (UTC)</th><th>Entry</th></tr></thead><tbody>{''.join(rows)}"
            "</tbody></table></div>")


def _seed_score(metrics: Mapping, figure: str) -> str:
    """One seed's figure (in percent for a fraction) with its bootstrap interval."""
    value = d.value_text(metrics.get(figure), figure)
    return f"{value} {d.ci_text((metrics.get('ci') or {}).get(figure), figure)}".strip()


def _confusion(g: Group, task: Task, split: str) -> str:
    cm = g.representative.entry.metrics[split].get("confusion_matrix")
    if not cm:
        return ""
    head = "".join(f"<th>{d.e(c.code or c.name)}</th>" for c in task.classes)
    rows = "".join(f"<tr><td>{d.e(f'{c.code} {c.name}' if c.code else c.name)}</td>"
                   + "".join(f"<td>{v}</td>" for v in row) + "</tr>" for c, row in zip(task.classes, cm))
    return (f"<div><h3>{split.capitalize()} confusion matrix, median seed {g.representative.entry.seed} "
            f'(rows true, columns predicted)</h3><table class="small"><thead><tr><th></th>{head}</tr></thead>'
            f"<tbody>{rows}</tbody></table></div>")


def _detection_confusion(g: Group, task: Task, split: str) -> str:
    """The 2 x 2 detection matrix ([[TN, FP], [FN, TP]]) of a task with a detection reading."""
    cm = g.representative.entry.metrics[split].get("detection_confusion_matrix")
    if task.detection is None or not cm:
        return ""
    names = (task.detection.negative, task.detection.present_label)
    head = "".join(f"<th>{d.e(n)}</th>" for n in names)
    rows = "".join(f"<tr><td>{d.e(n)}</td>" + "".join(f"<td>{v}</td>" for v in row) + "</tr>"
                   for n, row in zip(names, cm))
    return (f"<div><h3>{split.capitalize()} detection, median seed {g.representative.entry.seed} "
            f"(rows true, columns called at P(present) ≥ {task.detection.threshold:g})</h3>"
            f'<table class="small"><thead><tr><th></th>{head}</tr></thead><tbody>{rows}</tbody></table></div>')


def _model_note(g: Group) -> str:
    e = g.representative.entry
    m = e.model
    external = e.origin == "external"
    parts = ["predictions made outside the harness" if external else "",
             f"architecture {m.architecture}", f"head {m.head}" if m.head else "",
             "" if m.kind == marks.READER else f"{m.parameters:,} parameters",
             f"input {m.input_size} px, {m.in_chans} channel(s)" + ("" if external else f", {m.channel_policy}"),
             f"pretrained: {g.pretrained}", f"licence {m.licence}" if m.licence else "",
             f"trained on: {e.training_data}" if e.training_data else "",
             f"notes: {e.notes}" if e.notes else ""]
    what = "Human reader" if m.kind == marks.READER else "Model"
    return f'<p class="note">{what} <code>{d.e(m.name)}</code> ({d.e(m.source)}): ' + d.e(
        "; ".join(p for p in parts if p)) + "</p>"


# --------------------------------------------------------------------------- chart
def _chart(sec: Section, index: int) -> str:
    """Inline SVG: the task's chart figure (accuracy for four-pattern) per row on each
    evaluation split (mean, whiskers ± sd)."""
    label_w, bar_w, row_h, top = 260, 460, 34, 34
    splits, figure = sec.task.eval_splits, table_figures(sec.task).chart
    name = d.figure_name(figure).name
    height, width = top + row_h * len(sec.groups) + 28, label_w + bar_w + 70
    parts = [f'<svg xmlns="http://www.w3.org/2000/svg" role="img" width="{width}" height="{height}" '
             f'viewBox="0 0 {width} {height}" aria-labelledby="chart-title-{index}">',
             f'<title id="chart-title-{index}">{" vs ".join(splits).capitalize()} {d.e(name)} per model, '
             f"{d.e(sec.title)}</title>"]
    for j, split in enumerate(splits):
        sn = d.split_name(split)
        parts.append(f'<rect x="{label_w + 150 * j}" y="6" width="12" height="12" fill="{sn.color}"/>'
                     f'<text x="{label_w + 150 * j + 18}" y="16" font-size="12">{d.e(sn.legend)}</text>')
    parts += _chart_axis(label_w, bar_w, top, top + row_h * len(sec.groups))
    for i, g in enumerate(sec.groups):
        parts += _chart_row(g, splits, figure, label_w, bar_w, top + i * row_h, row_h)
    parts.append("</svg>")
    about = " and ".join(f"{s} ({d.split_name(s).about})" for s in splits)
    return ('<figure class="chart">' + "".join(parts) + f"<figcaption>{d.e(name[:1].upper() + name[1:])} "
            f"on the {about} splits; bars are means over seeds, whiskers ± one standard "
            "deviation.</figcaption></figure>")


def _chart_axis(label_w: int, bar_w: int, top: int, bottom: int) -> list[str]:
    out = []
    for t in (0, 0.25, 0.5, 0.75, 1.0):
        x = label_w + bar_w * t
        out.append(f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom}" stroke="#d9dee7"/>'
                   f'<text x="{x:.1f}" y="{bottom + 16}" font-size="11" text-anchor="middle">'
                   f"{int(t * 100)}%</text>")
    return out


def _chart_row(g: Group, splits: tuple[str, ...], figure: str, label_w: int, bar_w: int, y0: int,
               row_h: int) -> list[str]:
    """A row's label, then per split a bar of its mean ``figure`` with a whisker of ± sd."""
    pad = 12

    def x(v: float) -> float:
        return label_w + bar_w * max(0.0, min(1.0, v))

    out = [f'<text x="{label_w - 8}" y="{y0 + row_h / 2 + 4:.1f}" font-size="12" text-anchor="end">'
           f"{d.e(g.rank)}. {d.e(g.model)} · {d.e(g.protocol)}</text>"]
    for j, split in enumerate(splits):
        s = g.stats[split][figure]
        if s.mean is None:
            continue
        yb = y0 + 4 + j * pad
        out.append(f'<rect class="bar {split}" x="{label_w}" y="{yb}" width="{x(s.mean) - label_w:.1f}" '
                   f'height="{pad - 2}" fill="{d.split_name(split).color}"><title>{d.e(g.model)} · '
                   f"{d.e(g.protocol)}, {split} {d.e(d.figure_name(figure).name)} {d.e(d.mean_sd(s))} % "
                   f"over {s.n} seed(s)</title></rect>")
        if s.sd is not None:
            yc = yb + (pad - 2) / 2
            out.append(f'<line x1="{x(s.mean - s.sd):.1f}" y1="{yc:.1f}" x2="{x(s.mean + s.sd):.1f}" '
                       f'y2="{yc:.1f}" stroke="#1d2330" stroke-width="1.2"/>')
        out.append(f'<text x="{x(s.mean) + 6 + (x(s.mean + (s.sd or 0)) - x(s.mean)):.1f}" '
                   f'y="{yb + pad - 3}" font-size="10">{d.pct(s.mean)}</text>')
    return out


# --------------------------------------------------------------------------- how to submit
def _how_to_submit_html(markdown: str) -> str:
    """The "How to submit" Markdown as HTML: headings, paragraphs and code blocks."""
    out: list[str] = []
    para: list[str] = []
    in_code = False

    def flush() -> None:
        if para:
            out.append(f"<p>{d.md_inline(' '.join(para))}</p>")
            para.clear()

    for line in markdown.splitlines():
        stripped = line.strip()
        if stripped.startswith("```"):
            flush()
            out.append("</pre>" if in_code else "<pre>")
            in_code = not in_code
        elif in_code:
            code = line[3:].rstrip() if line.startswith("   ") else stripped  # less the list's indent
            out[-1] = out[-1] + ("" if out[-1].endswith("<pre>") else "\n") + d.e(code)
        elif stripped.startswith("## "):
            flush()
            out.append(f'<h2 id="how-to-submit">{d.e(stripped[3:])}</h2>')
        elif not stripped:
            flush()
        else:
            para.append(stripped)
    flush()
    return "<section>" + "".join(out) + "</section>"
