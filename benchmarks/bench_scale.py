"""Wall time and peak memory of each stage at 1x and 10x Table 1's counts (issue 13).

The stages of :mod:`scale` (``benchmarks/scale.py``, which also writes the table and the figure
for BENCHMARKS.md), under pytest-benchmark: for each size the synthetic cohort is written as a
DICOM archive (3,389 studies at 1x, 33,890 at 10x), then ``prepare --source dicom``, ``verify``,
one epoch of ``run`` (and of ``run --stream`` where that option exists) and ``score`` each run
as a process under ``/usr/bin/time -v``. The wall time and peak RSS go to ``extra_info``; the
last test prints the table with the 10x / 1x ratios and the goals (peak RSS at most 1.5x for
ingestion and a training epoch). Run (from the repository root; roughly 35 minutes on 2 cores)::

    .venv/bin/pytest benchmarks/bench_scale.py --benchmark-columns=min,rounds -s

``TB_SCALE`` chooses the multiples (``TB_SCALE=1,10,30``; fractions too). Under
``--benchmark-disable`` without ``TB_SCALE`` the stages run once at 0.01x and 0.1x (35 and 339
studies), a check that the suite works rather than a measurement. ``TB_SCALE_OUT=DIR`` keeps
the JSON, table and figure there; ``TB_SCALE_DIR`` is where the temporary archives go, and
``TB_SCALE_CACHE=DIR`` keeps the generated copies of the cohort there for the next run.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest

from scale import (CACHE_ENV, SCALE_ENV, STAGES, WORK_ENV, StageResult, build_size, growth, has_stream_option,
                   markdown_table, parse_scales, parse_time_report, run_stage, skip_reason, studies_at,
                   write_outputs)

#: What ``--benchmark-disable`` runs without ``TB_SCALE``: sizes 10x apart, in seconds.
SMOKE_SCALES = (0.01, 0.1)
_RESULTS: list[StageResult] = []


def _scales(config) -> tuple[float, ...]:
    if not os.environ.get(SCALE_ENV) and config.getoption("benchmark_disable", False):
        return SMOKE_SCALES
    return parse_scales(os.environ.get(SCALE_ENV))


def pytest_generate_tests(metafunc):
    """One size at a time (its archive built once, removed before the next), stages in order."""
    if "scale" in metafunc.fixturenames:
        scales = _scales(metafunc.config)
        metafunc.parametrize("scale", scales, ids=[f"{s:g}x" for s in scales], scope="module")


@pytest.fixture(scope="module")
def stream() -> bool:
    return has_stream_option()


@pytest.fixture(scope="module")
def replicas(tmp_path_factory):
    """Where the copies of the cohort go: ``$TB_SCALE_CACHE`` (kept), else a temporary folder
    (removed after the last size: gigabytes at 10x)."""
    if os.environ.get(CACHE_ENV):
        yield Path(os.environ[CACHE_ENV])
        return
    folder = tmp_path_factory.mktemp("scale-replicas")
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


@pytest.fixture(scope="module")
def size(scale, replicas, tmp_path_factory):
    """The archive at ``scale`` and its work folder (removed after that size's stages)."""
    work = os.environ.get(WORK_ENV)
    if work:
        Path(work).mkdir(parents=True, exist_ok=True)
    base = Path(tempfile.mkdtemp(prefix=f"bench-scale-x{scale:g}-", dir=work)) if work \
        else tmp_path_factory.mktemp(f"scale-x{scale:g}")
    w = build_size(scale, base, cache=replicas)
    yield w
    shutil.rmtree(base, ignore_errors=True)


def _manifest_rows(w) -> dict[str, int]:
    manifest = json.loads((w.root / "home" / w.name / "1.0.0" / "manifest.json").read_text())
    return {split: info["rows"] for split, info in manifest["splits"].items()}


def _csv_rows(path: Path) -> int:
    with open(path, newline="", encoding="utf-8") as fh:
        return sum(1 for _ in csv.reader(fh)) - 1


def _check(stage: str, w) -> None:
    """What each stage must have produced, read back from its files."""
    if stage == "prepare":
        assert sum(_manifest_rows(w).values()) == w.studies  # every study ingested, none rejected
    elif stage in ("run", "run --stream"):
        out = w.root / ("run-stream" if stage == "run --stream" else "run") / "predictions"
        rows = _manifest_rows(w)
        assert {s: _csv_rows(out / f"{s}.csv") for s in ("internal", "external")} == \
            {s: rows[s] for s in ("internal", "external")}
    elif stage == "score":
        metrics = json.loads((w.root / "score.json").read_text())["metrics"]
        assert metrics["n"] == _manifest_rows(w)["internal"] and 0.0 <= metrics["accuracy"] <= 1.0


@pytest.mark.parametrize("stage", STAGES, ids=[s.replace(" --", "-") for s in STAGES])
@pytest.mark.benchmark(group="scale")
def test_stage(benchmark, size, stage, stream):
    reason = skip_reason(stage, size, stream)
    if reason:  # run_stage records the skipped stage, with its reason, and runs nothing
        _RESULTS.append(run_stage(stage, size, stream))
        pytest.skip(reason)
    result = benchmark.pedantic(run_stage, args=(stage, size, stream), rounds=1, iterations=1)
    _RESULTS.append(result)
    assert result.ok, "\n".join([result.command, *result.log_tail])
    assert result.wall_s > 0 and 0 < result.peak_rss_gb <= result.tree_peak_rss_gb
    benchmark.extra_info.update(studies=size.studies, scale=size.scale, wall_s=result.wall_s,
                                peak_rss_gb=result.peak_rss_gb, tree_peak_rss_gb=result.tree_peak_rss_gb)
    _check(stage, size)


@pytest.mark.benchmark(group="scale report")
def test_report_scale(benchmark, tmp_path, capsys):
    """The table and figure of every size measured, written and read back (a benchmark only so
    that ``--benchmark-only`` runs it)."""
    if not _RESULTS or len({r.scale for r in _RESULTS}) < 2:
        pytest.skip("run the whole file (two sizes or more) to compare")
    out = Path(os.environ.get("TB_SCALE_OUT") or tmp_path)
    text = benchmark.pedantic(write_outputs, args=(_RESULTS, out, None), rounds=1, iterations=1)
    stored = json.loads((out / "scale-results.json").read_text())["results"]
    assert [(r["stage"], r["scale"], r["peak_rss_gb"]) for r in stored] == \
        [(r.stage, r.scale, r.peak_rss_gb) for r in _RESULTS]
    assert (out / "scale.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    with capsys.disabled():
        print(f"\n[bench_scale]\n{text}")


# The measuring and reporting parts, on figures worked out by hand (no archive, no process).

def test_sizes_are_table1_multiples():
    assert studies_at(1) == 1040 + 902 + 97 + 429 + 260 + 226 + 25 + 108 + 120 + 49 + 13 + 120 == 3389
    assert studies_at(10) == 33890
    assert studies_at(1.5) == 3389 + studies_at(0.5)
    assert parse_scales("10, 1,0.05") == (0.05, 1.0, 10.0)
    with pytest.raises(SystemExit, match="positive"):
        parse_scales("1,-10")


def test_time_report_parsed():
    report = ("\tCommand being timed: \"thyroid-bench verify\"\n"
              "\tElapsed (wall clock) time (h:mm:ss or m:ss): 1:02:03.50\n"
              "\tMaximum resident set size (kbytes): 2000000\n")
    assert parse_time_report(report) == (3723.5, 2.048)
    assert parse_time_report(report.replace("1:02:03.50", "0:06.12"))[0] == 6.12
    with pytest.raises(ValueError):
        parse_time_report("no report")


def test_growth_and_table():
    def result(stage, scale, wall, rss, tree):
        return StageResult(stage, scale, studies_at(scale), "", 0, wall, rss, tree)

    results = [result("prepare", 1, 6.0, 0.8, 1.0), result("prepare", 10, 60.0, 1.0, 1.6),
               result("run", 1, 20.0, 2.0, 2.0), result("run", 10, 100.0, 4.0, 4.0),
               StageResult("run --stream", 1, 3389, "", note="skipped: no option")]
    g = growth(results)
    assert g["prepare"] == pytest.approx({"wall_s": 10.0, "peak_rss_gb": 1.25, "tree_peak_rss_gb": 1.6,
                                          "goal": 1.5, "met": True})
    assert g["run"]["peak_rss_gb"] == 2.0 and g["run"]["met"] is False
    assert g["run --stream"]["met"] is None
    rows = markdown_table(results).splitlines()
    assert rows[0].startswith("| stage | 3,389 studies (1x) | 33,890 studies (10x) | 10x / 1x: wall")
    assert rows[2] == ("| `prepare --source dicom` | 6.0 s / 0.80 GB / 1.00 GB | 60.0 s / 1.00 GB / 1.60 GB "
                       "| 10.00x | 1.25x (1.60x) | <= 1.5x: met |")
    assert rows[3].endswith("| 5.00x | 2.00x (2.00x) | <= 1.5x: not met |")
    assert rows[4] == "| `run --stream`, one epoch | skipped | - | - | - | <= 1.5x: ? |"
