"""The leaderboard's index.html in headless Chromium: renders, sorts, expands, works offline.

Driven by Playwright's Python client against Debian's ``chromium`` (no browser download:
``executable_path``); ``scripts/install-browser.sh`` installs it. Skipped only when no
Chromium is installed.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from test_leaderboard import make_dataset, make_run
from thyroid_bench.leaderboard import render_leaderboard, submit

CHROMIUM = os.environ.get("THYROID_BENCH_CHROMIUM") or shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None)
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="Chromium is not installed "
                                "(scripts/install-browser.sh installs Debian's chromium)")

# Offline, quiet, no profile side effects (Playwright adds --headless and the profile folder).
FLAGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"]

# (model, skill, parameters): ranked zeta > alpha > mid; alphabetical and by-size orders differ.
MODELS = (("zeta", 0.35, 3_000_000), ("alpha", 0.15, 9_000_000), ("mid", 0.0, 1_000_000))


@pytest.fixture(scope="module")
def page_file(tmp_path_factory) -> tuple[Path, object]:
    base = tmp_path_factory.mktemp("lb-html")
    dataset = make_dataset(base / "home")
    runs = [make_run(base / f"{m}-{s}", dataset, model=m, seed=s, skill=max(0.0, skill - 0.01 * s),
                     parameters=params)
            for m, skill, params in MODELS for s in range(2)]
    submit(runs, leaderboard=base / "lb", home=base / "home")
    board = render_leaderboard(base / "lb", write=False)
    return base / "lb" / "index.html", board


@pytest.fixture(scope="module")
def browser_page(page_file, tmp_path_factory):
    from playwright.sync_api import sync_playwright  # test extra: playwright (no browser download)

    path, _ = page_file
    events = {"console": [], "errors": [], "requests": []}
    with sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")), executable_path=CHROMIUM,
            headless=True, args=FLAGS)
        try:
            page = context.new_page()
            page.on("console", lambda m: events["console"].append((m.type, m.text)))
            page.on("pageerror", lambda e: events["errors"].append(str(e)))
            page.on("request", lambda r: events["requests"].append(r.url))
            page.goto(path.as_uri())
            page.wait_for_load_state("load")
            yield page, events
        finally:
            context.close()


def _models(page) -> list[str]:
    return page.eval_on_selector_all("table.ranking tbody.group", "els => els.map(e => e.dataset.model)")


def test_table_renders_in_rank_order(browser_page, page_file):
    page, _ = browser_page
    _, board = page_file
    assert _models(page) == [g.model for g in board.sections[0].groups] == ["zeta", "alpha", "mid"]
    assert page.locator("table.ranking tr.main").count() == 3
    assert all(page.locator("table.ranking tr.main").nth(i).is_visible() for i in range(3))
    assert page.locator("tr.detail").first.is_hidden()
    first = page.locator("tr.main").first.inner_text()
    assert "zeta" in first and "2 (0, 1)" in first


def test_sorting_by_a_column_reorders_rows(browser_page):
    page, _ = browser_page
    page.click('th[data-key="model"]')
    assert _models(page) == ["alpha", "mid", "zeta"]
    assert page.get_attribute('th[data-key="model"]', "aria-sort") == "ascending"
    page.click('th[data-key="params"]')
    assert _models(page) == ["mid", "zeta", "alpha"]
    page.click('th[data-key="params"]')
    assert _models(page) == ["alpha", "zeta", "mid"]
    assert page.get_attribute('th[data-key="params"]', "aria-sort") == "descending"
    assert page.get_attribute('th[data-key="model"]', "aria-sort") is None
    page.click('th[data-key="external.macro_f1"]')  # metrics sort best first
    assert _models(page) == ["zeta", "alpha", "mid"]


def test_per_class_figures_on_demand(browser_page):
    page, _ = browser_page
    body = page.locator('tbody.group[data-model="alpha"]')
    detail = body.locator("tr.detail")
    assert detail.is_hidden()
    body.locator("button.expand").click()
    assert detail.is_visible()
    text = detail.inner_text()
    for needle in ("focal_increased (type III)", "Sensitivity", "External confusion matrix", "Seeds"):
        assert needle in text
    body.locator("button.expand").click()
    assert detail.is_hidden()


def test_chart_draws_internal_and_external_bars(browser_page, page_file):
    page, _ = browser_page
    _, board = page_file
    assert page.locator("figure.chart svg rect.bar.internal").count() == 3
    assert page.locator("figure.chart svg rect.bar.external").count() == 3
    # bar length is the mean accuracy on a 460-px scale
    zeta = board.sections[0].groups[0]
    width = float(page.locator("figure.chart svg rect.bar.external").first.get_attribute("width"))
    assert width == pytest.approx(460 * zeta.stats["external"]["accuracy"].mean, abs=0.06)


def test_no_console_errors_and_no_network(browser_page):
    page, events = browser_page
    page.reload()
    page.wait_for_load_state("load")
    assert events["errors"] == []
    assert [m for m in events["console"] if m[0] in ("error", "warning")] == []
    assert events["requests"] and all(u.startswith(("file:", "data:")) for u in events["requests"])


def _section_models(page, index: int) -> list[str]:
    return page.eval_on_selector_all(f"#section-{index} table.ranking tbody.group",
                                     "els => els.map(e => e.dataset.model)")


def test_two_task_page_sections_sort_and_reference_lines(browser_page, tmp_path_factory):
    """A page with a four-pattern and a residual-tissue section: two ranking tables, each in
    its own order and sortable on its own; the published reference lines sit outside them."""
    from test_leaderboard import make_residual_run, residual_rows
    from thyroid_bench.data.format import write_dataset
    from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

    base = tmp_path_factory.mktemp("lb-html-two")
    four = make_dataset(base / "home")
    residual = write_dataset("tiny-residual", "1.0.0", {
        "train": residual_rows("train", 8), "internal": residual_rows("internal", 24),
        "external": residual_rows("external", 24, unknown=3, matrix=16)}, task=RESIDUAL_TISSUE,
        home=base / "home")
    runs = [make_run(base / "fp", four, model="fp", skill=0.3),
            make_residual_run(base / "r-hi", residual, model="r-hi", skill=0.5),
            make_residual_run(base / "r-lo", residual, model="r-lo", skill=0.0)]
    submit(runs, leaderboard=base / "lb", home=base / "home")
    board = render_leaderboard(base / "lb", write=False)
    errors = []
    page = browser_page[0].context.new_page()  # the module's browser: one Playwright at a time
    try:
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto((base / "lb" / "index.html").as_uri())
        page.wait_for_load_state("load")
        assert page.locator("table.ranking").count() == 2
        models = [_section_models(page, i) for i in range(2)]
        assert models == [[g.model for g in s.groups] for s in board.sections] == [["fp"], ["r-hi", "r-lo"]]
        header = page.locator('#section-1 th[data-key="model"]')
        header.click()
        assert _section_models(page, 1) == ["r-hi", "r-lo"]
        header.click()
        assert _section_models(page, 1) == ["r-lo", "r-hi"] and _section_models(page, 0) == ["fp"]
        refs = page.locator("#section-1 .published li")
        assert refs.count() == 2 and all(refs.nth(i).is_visible() for i in range(2))
        assert "published, private data, not comparable" in refs.nth(0).inner_text()
        assert page.locator("#section-0 .published").count() == 0
        assert page.locator("table.ranking .published").count() == 0
    finally:
        page.close()
    assert errors == []
