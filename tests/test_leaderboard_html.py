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
    assert "zeta" in first and "2\n(0, 1)" in first  # two seeds, listed below their count


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


# --------------------------------------------------------------------------- fits 1280 px, CSV download
REPO_PAGE = Path(__file__).resolve().parents[1] / "leaderboard" / "index.html"


@pytest.fixture(scope="module")
def wide_board(tmp_path_factory):
    """Both tasks on one page with the widest rows the page has: long model names, an external
    entry with code and weights links, a human reader, several seeds, ties."""
    from test_leaderboard import make_residual_run, residual_rows
    from thyroid_bench.data.format import read_split, write_dataset
    from thyroid_bench.leaderboard.external import ExternalModel, new_entry
    from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

    base = tmp_path_factory.mktemp("lb-wide")
    home = base / "home"
    four = make_dataset(home)
    residual = write_dataset("tiny-residual", "1.0.0", {
        "train": residual_rows("train", 8), "internal": residual_rows("internal", 24),
        "external": residual_rows("external", 24, unknown=3, matrix=16)}, task=RESIDUAL_TISSUE, home=home)
    runs = [make_run(base / f"irv2-{s}", four, model="inception_resnet_v2", seed=s, skill=0.3 - 0.02 * s)
            for s in range(3)]
    runs += [make_residual_run(base / f"r-{m}-{s}", residual, model=m, seed=s, skill=k, uptake=True)
             for m, k in (("inception_resnet_v2", 0.4), ("timm:efficientnet_b0", 0.1)) for s in range(2)]
    for name, folder in (("four", four), ("residual", residual)):
        source = (make_run if name == "four" else
                  lambda d, f, **kw: make_residual_run(d, f, **kw, uptake=True))(
            base / f"src-{name}", folder, model="src", seed=9, skill=0.2)
        out = base / f"ext-{name}"
        new_entry(source / "predictions", dataset=str(folder), home=home, out=out,
                  model=ExternalModel(name="vendor-ai:thyroid-scan-pro/v2.1", parameters=7_000_000,
                                      input_size=512, code_url="https://example.org/vendor/code?x=1&y=2",
                                      weights_url="https://example.org/vendor/weights"))
        calls = base / f"reader-{name}"
        calls.mkdir()
        for split in ("internal", "external"):
            t = read_split(folder, split, columns=["case_id", "label"])
            lines = [f"{c},{max(int(y), 1)}" for c, y in zip(t["case_id"], t["label"])]
            (calls / f"{split}.csv").write_text("case_id,prediction\n" + "\n".join(lines) + "\n")
        new_entry(calls, dataset=str(folder), home=home, out=base / f"read-{name}",
                  model=ExternalModel(name="reader-1", kind="human reader"))
        runs += [out, base / f"read-{name}"]
    submit(runs, leaderboard=base / "lb", home=home)
    return base / "lb"


def _widths(page) -> dict:
    return page.evaluate("""() => ({doc: document.documentElement.scrollWidth, view: window.innerWidth,
        wraps: Array.from(document.querySelectorAll('.table-wrap')).map(w => [w.scrollWidth, w.clientWidth]),
        pres: Array.from(document.querySelectorAll('pre')).map(w => [w.scrollWidth, w.clientWidth])})""")


def _assert_fits(page, rows: int) -> None:
    """No horizontal scrolling: not the document, not a ranking table, not a command block;
    with every row closed, then with every row's details open."""
    for opened in (False, True):
        if opened:  # every row's per-class tables, confusion matrices and seeds shown
            page.evaluate("document.querySelectorAll('button.expand').forEach(b => b.click())")
            assert page.locator("tr.detail:visible").count() == page.locator("tr.detail").count() == rows
        w = _widths(page)
        assert len(w["wraps"]) == 2, w  # both tasks' sections
        assert w["doc"] <= w["view"] == 1280, (opened, w)
        assert all(scroll <= client for scroll, client in w["wraps"] + w["pres"]), (opened, w)


@pytest.mark.parametrize("which", ["test board", "committed"])
def test_page_fits_a_1280_pixel_window_with_every_row_open(browser_page, wide_board, which):
    """The widest rows the tests make (long names, marks, links, several seeds), and the
    committed leaderboard, fit a 1280-pixel-wide window (issue 14: the last column was cut
    at 1400 px)."""
    path = wide_board / "index.html" if which == "test board" else REPO_PAGE
    page = browser_page[0].context.new_page()
    try:
        page.set_viewport_size({"width": 1280, "height": 900})
        page.goto(path.as_uri())
        page.wait_for_load_state("load")
        if which == "test board":
            assert page.locator("tbody.group[data-mark='external']").count() == 2
            assert page.locator("tbody.group[data-mark='human reader'] .badge.reader").count() == 2
            links = page.locator("tbody.group[data-mark='external'] a.link")
            assert links.first.get_attribute("href") == "https://example.org/vendor/code?x=1&y=2"
        _assert_fits(page, page.locator("tbody.group").count())
    finally:
        page.close()


def test_csv_link_downloads_the_rendered_csv(browser_page, wide_board):
    page = browser_page[0].context.new_page()
    try:
        page.goto((wide_board / "index.html").as_uri())
        page.wait_for_load_state("load")
        for index, name in enumerate(("ranking-four-pattern.csv", "ranking-residual-tissue.csv")):
            with page.expect_download() as info:
                page.locator(f"#section-{index} a.csv-download").click()
            download = info.value
            assert download.suggested_filename == name
            got = Path(download.path()).read_text(encoding="utf-8")
            assert got == (wide_board / name).read_text(encoding="utf-8")
            assert got.count("\n") == 1 + (3 if index == 0 else 4)  # header and one line per row
    finally:
        page.close()
