"""Speed of DICOM ingestion on the generated 3389-study archive, beside a bare pydicom loop.

The archive is the synthetic reference cohort (``generate_cohort()``: 3087 studies of
256 x 256 at centre 1, 302 of 128 x 128 at centre 2) saved by
:mod:`thyroid_bench.testing.dicom_writer` as NM Image Storage files with planted
identifiers. Three timings, best of their rounds, in one run:

* ``bare loop``: ``pydicom.dcmread(f).pixel_array`` for every file, one process;
* ``read_archive``: the ingestion's reading stage (all checks, frame choice, rescale,
  identifiers, technical fields) on all cores;
* ``prepare_dicom``: the whole command, reading plus labels, pseudonyms, split and
  :func:`thyroid_bench.data.format.write_dataset` (PNG encoding, parquet, fingerprints).

The target (issue 6) is ingestion at no less than half the bare loop's speed: a ratio
``bare / ingestion >= 0.5``; both ratios are printed and stored in ``extra_info``.
Run (from the repository root)::

    .venv/bin/pytest benchmarks/bench_dicom.py --benchmark-columns=min,mean,max,rounds -s

``BENCH_DICOM_STUDIES=N`` uses an even sample of N studies instead of all 3389.
"""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from thyroid_bench.data.dicom.ingest import list_archive, prepare_dicom, read_archive
from thyroid_bench.testing.dicom_writer import write_archive

from _clock import Clock  # benchmarks/_clock.py, beside this file

_TIMES: dict[str, float] = {}
_LIMIT = int(os.environ.get("BENCH_DICOM_STUDIES", "0") or 0)


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """The synthetic cohort written as a DICOM archive with a labels CSV (built once)."""
    from thyroid_bench.data.synthetic.generator import TASK, generate_cohort

    tmp = tmp_path_factory.mktemp("bench-dicom")
    t0 = time.perf_counter()
    cohort = generate_cohort(progress=False)
    rows = [row for split in TASK.splits for row in cohort[split]]
    if _LIMIT:  # an even sample of both centres
        rows = [rows[i] for i in np.linspace(0, len(rows) - 1, min(_LIMIT, len(rows))).astype(int)]
    written = write_archive(tmp / "archive", rows, seed=1, task=TASK)
    files = list_archive(written.root)
    for f in files:  # warm the page cache so neither contender pays for the first read
        (written.root / f).read_bytes()
    print(f"\n[bench_dicom] archive of {len(files)} files built in {time.perf_counter() - t0:.0f} s")
    return {"root": written.root, "labels": written.labels_csv, "files": files, "tmp": tmp,
            "task": TASK.name}


def _bare_loop(root, files) -> int:
    import pydicom

    total = 0
    for f in files:
        ds = pydicom.dcmread(root / f)
        total += int(ds.pixel_array.shape[-1])
    return total




@pytest.mark.benchmark(group="dicom ingestion")
def test_bare_dcmread_pixel_array_loop(benchmark, archive):
    clock = Clock(_bare_loop)
    n = benchmark.pedantic(clock, args=(archive["root"], archive["files"]), rounds=3, iterations=1)
    assert n > 0
    _TIMES["bare"] = clock.best(benchmark)


@pytest.mark.benchmark(group="dicom ingestion")
def test_read_archive_all_cores(benchmark, archive):
    clock = Clock(read_archive)
    results = benchmark.pedantic(clock, args=(archive["root"], archive["files"]),
                                 kwargs={"progress": False}, rounds=3, iterations=1)
    assert all(r["ok"] for r in results), [r["reason"] for r in results if not r["ok"]][:3]
    _TIMES["read"] = clock.best(benchmark)
    benchmark.extra_info["workers"] = os.cpu_count()
    if "bare" in _TIMES:
        ratio = _TIMES["bare"] / _TIMES["read"]
        benchmark.extra_info.update(ratio_vs_baseline=ratio, goal=0.5)
        assert ratio >= 0.5, f"reading runs at {ratio:.2f} x the bare loop's speed"


@pytest.mark.benchmark(group="dicom ingestion")
def test_prepare_dicom_end_to_end(benchmark, archive):
    def run():
        return prepare_dicom(dicom_dir=archive["root"], labels=archive["labels"], name="bench-dicom",
                             version="1.0.0", key_file=archive["tmp"] / "bench.key",
                             external_centers=["center2"], home=archive["tmp"] / "home", force=True,
                             task=archive["task"])

    clock = Clock(run)
    path = benchmark.pedantic(clock, rounds=2, iterations=1)
    assert (path / "manifest.json").is_file()
    _TIMES["prepare"] = clock.best(benchmark)
    if "bare" in _TIMES:
        benchmark.extra_info["ratio_vs_baseline"] = _TIMES["bare"] / _TIMES["prepare"]


def test_report_ratios(archive, capsys):
    if not {"bare", "read", "prepare"} <= set(_TIMES):
        pytest.skip("run the whole file to compare")
    n = len(archive["files"])
    read_ratio = _TIMES["bare"] / _TIMES["read"]
    prepare_ratio = _TIMES["bare"] / _TIMES["prepare"]
    with capsys.disabled():
        print(f"\n[bench_dicom] {n} files, {os.cpu_count()} cores (best of rounds):\n"
              f"  bare dcmread + pixel_array loop: {_TIMES['bare']:.2f} s ({n / _TIMES['bare']:.0f} files/s)\n"
              f"  read_archive (all cores):        {_TIMES['read']:.2f} s -> speed ratio {read_ratio:.2f}\n"
              f"  prepare_dicom (read + write):    {_TIMES['prepare']:.2f} s -> speed ratio {prepare_ratio:.2f}\n"
              f"  target: ratio >= 0.5")
    assert read_ratio >= 0.5, f"reading runs at {read_ratio:.2f} x the bare loop's speed"
