"""Rendering of the leaderboard: ``README.md`` (Markdown), the text table, and the files.

:func:`render_leaderboard` builds the board from the stored entries, each re-checked
(:func:`thyroid_bench.leaderboard.recheck.load_checked`), and writes ``README.md``,
``index.html`` (:mod:`thyroid_bench.leaderboard.page`) and ``schema/entry-v1.json``
(:func:`render_pages`: every page is rendered before the first is written). Tables take their columns from
:func:`thyroid_bench.leaderboard.columns.ranking_columns`, so Markdown, text and HTML
show the same figures; the stated rules name each section's main score, and each section
lists its task's published results as reference lines, never ranked.
"""

from __future__ import annotations

import json
import os
from contextlib import nullcontext
from pathlib import Path

import thyroid_bench.leaderboard.display as d
import thyroid_bench.leaderboard.marks as marks
from thyroid_bench.atomic import atomic_write_text, check_output_file
from thyroid_bench.evaluation.entry import Entry
from thyroid_bench.leaderboard.columns import ranking_columns
from thyroid_bench.leaderboard.errors import LeaderboardError
from thyroid_bench.leaderboard.lock import writer_lock
from thyroid_bench.leaderboard.page import render_html
from thyroid_bench.leaderboard.ranking import Board, Section, build_board
from thyroid_bench.leaderboard.ranking_csv import render_ranking_csv
from thyroid_bench.leaderboard.rules import DEFAULT_LEADERBOARD, SIGNIFICANCE
from thyroid_bench.leaderboard.recheck import load_checked

__all__ = ["render_markdown", "render_text", "render_html", "markdown_table", "entry_json_schema",
           "PAGES", "render_pages", "check_leaderboard_folder", "render_leaderboard"]

#: The files of a leaderboard folder that are rendered from its entries, never edited by hand;
#: besides them, one ``ranking-<task>.csv`` per task with entries (:func:`render_pages`).
PAGES = ("schema/entry-v1.json", "README.md", "index.html")


def markdown_table(sec: Section) -> str:
    """The ranking table of one section, as a GitHub markdown table."""
    shown = [c for c in ranking_columns(sec.task) if c.md is not None]
    lines = ["| " + " | ".join(c.md for c in shown) + " |", "|" + "|".join(" --- " for _ in shown) + "|"]
    for g in sec.groups:
        lines.append("| " + " | ".join(c.md_cell(g) if c.md_raw else d.md_escape(c.md_cell(g))
                                       for c in shown) + " |")
    return "\n".join(lines)


def render_markdown(board: Board) -> str:
    """``leaderboard/README.md``: ranking rules, one table per task and dataset version, how to submit."""
    tasks = d.page_tasks(board)
    out = ["# thyroid-bench leaderboard", "", f"<!-- {d.GENERATED} -->", "",
           f"{d.lead(tasks)} An interactive version of this page, with per-class "
           "figures and a chart, is [`index.html`](index.html).", ""]
    for main, names in d.main_scores(board):
        out += [d.ranking_rules(main, names), ""]
    if not board.sections:
        out += ["*No entries yet.* See *How to submit* below.", ""]
    for sec in board.sections:
        csv_file = marks.csv_name(sec.task)
        out += [f"## {sec.title}", "", d.section_note(sec), "", markdown_table(sec), "",
                f"{marks.legend()} Download the ranking as CSV: [`{csv_file}`]({csv_file}).", ""]
        out += _published_markdown(sec)
        out += ["**Protocols.**", ""]
        out += [f"- `{name}`: {d.md_escape(text)}" for name, text in d.protocols(sec)] + [""]
        out += ["**Hardware and software** (from the entries' environment records).", ""]
        out += [f"- {d.md_escape(env)}: {d.md_escape(', '.join(rows))}" for env, rows in d.hardware(sec)] + [""]
    out += [d.how_to_submit(tasks)]
    return "\n".join(out)


def _published_markdown(sec: Section) -> list[str]:
    """The section's task's published results: reference lines under the table, not ranked."""
    if not sec.task.published:
        return []
    return (["**Published results** (reference lines, not ranked: other data, other protocols).", ""]
            + [f"- {d.md_escape(d.published_line(ref))}" for ref in sec.task.published] + [""])


def render_text(board: Board) -> str:
    """The ranking as aligned plain-text tables (what ``thyroid-bench leaderboard`` prints),
    control sequences in entry fields shown as escapes (:func:`~thyroid_bench.leaderboard.
    display.terminal_text`)."""
    if not board.sections:
        return "The leaderboard has no entries yet (thyroid-bench submit RUN_DIR adds one)."
    blocks = [_text_block(sec) for sec in board.sections]
    scores = " / ".join(d.score_name(m) for m, _ in d.main_scores(board))
    marked = any(marks.origin_mark(g) for sec in board.sections for g in sec.groups)
    blocks.append(f"Percent, mean ± sd over seeds; ranked by mean {scores}; ≈: not "
                  f"significantly different from the row above (paired bootstrap, p ≥ {SIGNIFICANCE})."
                  + (f" [{marks.EXTERNAL}]: predictions made outside the harness (`thyroid-bench "
                     f"entry new`); [{marks.READER}]: a person's reads." if marked else ""))
    return d.terminal_text("\n\n".join(blocks))


def _text_block(sec: Section) -> str:
    shown = sorted((c for c in ranking_columns(sec.task) if c.text is not None), key=lambda c: c.text_order)
    header = [c.text for c in shown]
    rows = [[c.text_cell(g) for c in shown] for g in sec.groups]
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    counts = ", ".join(f"{split} n={n}" for split, n in sec.n_cases.items())
    lines = [f"{sec.title}  (fingerprint {sec.fingerprint[:12]}, {counts})",
             "  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip(),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    lines += [f"ref  {d.published_text(ref)}" for ref in sec.task.published]
    return "\n".join(lines)


def entry_json_schema() -> str:
    """The published JSON Schema of entry v1 (``leaderboard/schema/entry-v1.json``), as text."""
    return json.dumps(Entry.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def render_pages(board: Board) -> dict[str, str]:
    """Every rendered file of the leaderboard (:data:`PAGES`, and each task's ranking as CSV,
    :func:`~thyroid_bench.leaderboard.marks.csv_name`; relative path -> text), all rendered
    before any is written, so a renderer that fails writes nothing."""
    by_task: dict[str, list[Section]] = {}
    for sec in board.sections:
        by_task.setdefault(sec.task.name, []).append(sec)
    csvs = {marks.csv_name(secs[0].task): render_ranking_csv(secs) for secs in by_task.values()}
    return {"schema/entry-v1.json": entry_json_schema(), "README.md": render_markdown(board),
            "index.html": render_html(board), **csvs}


def check_leaderboard_folder(leaderboard: str | os.PathLike, *, must_exist: bool = True) -> Path:
    """``leaderboard`` is a leaderboard folder (or, without ``must_exist``, none yet):
    :class:`LeaderboardError` (one line) for a file, or for a missing folder."""
    root = Path(leaderboard)
    if root.exists() and not root.is_dir():
        raise LeaderboardError(f"--leaderboard {root} is a file, not a leaderboard folder (one "
                               "holding entries/, README.md and index.html)")
    if must_exist and not root.is_dir():
        raise LeaderboardError(f"no leaderboard folder {root}: give an existing one with "
                               "--leaderboard DIR (a clone of thyroid-bench has leaderboard/; "
                               "`thyroid-bench submit` creates a new one)")
    return root


def render_leaderboard(
    leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD,
    *,
    html_out: str | os.PathLike | None = None,
    write: bool = True,
    skip_invalid: bool = False,
    private_labels: str | os.PathLike | None = None,
) -> Board:
    """Build the board from the stored entries, each re-checked, and (re)write its pages.

    ``leaderboard`` must be an existing folder. With ``write``: ``<leaderboard>/README.md``,
    ``index.html`` and ``schema/entry-v1.json``, under the folder's writer lock.
    ``html_out`` writes the HTML page there as well. A stored entry that fails its checks
    raises :class:`LeaderboardError`; with ``skip_invalid`` it is left out, and listed in
    the returned :class:`~thyroid_bench.leaderboard.ranking.Board`'s ``invalid``. With the
    organisers' labels file ``private_labels`` the withheld splits of its section are recomputed
    too (:mod:`~thyroid_bench.leaderboard.withheld`); the pages never use those labels.
    """
    root = check_leaderboard_folder(leaderboard)
    if html_out is not None:
        check_output_file(html_out, "--html")
    with writer_lock(root) if write else nullcontext():
        checked = load_checked(root, skip_invalid=skip_invalid,
                               private_labels=None if private_labels is None else Path(private_labels))
        if private_labels is not None and not checked.rescored:
            raise LeaderboardError(f"--private-labels {private_labels}: the labels file of no "
                                   f"section of {root} (none records its SHA-256)")
        board = build_board(checked.entries, root)
        board.invalid = checked.invalid
        pages = render_pages(board) if write or html_out is not None else {}
        if write:
            for rel, text in pages.items():
                atomic_write_text(root / rel, text)
    if html_out is not None:
        atomic_write_text(Path(html_out), pages["index.html"])
    return board
