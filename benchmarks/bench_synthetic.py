"""Speed of the synthetic cohort: one split generated, beside a bare physics baseline.

The baseline does the least any phantom generator must do per image: a Gaussian blur of
a 256 x 256 activity map and a Poisson draw at 100k counts. The ratio says how much the
anatomy, depth layers and simulated readers cost on top. The split is also rendered on
one process per core (the scaling with cores), and ``prepare`` is timed end to end
(images/s, generation plus PNG encoding and writing). Run::

    .venv/bin/pytest benchmarks/bench_synthetic.py --benchmark-columns=min,mean,rounds -s
"""

from __future__ import annotations

import os

import numpy as np
import pytest
from scipy.ndimage import gaussian_filter

from thyroid_bench.data.synthetic.generator import TABLE1_COUNTS, generate_split

from _clock import Clock  # benchmarks/_clock.py, beside this file

N = sum(TABLE1_COUNTS["internal"])  # 619 images, centre 1 (256 x 256)
_TIMES: dict[str, float] = {}


def _baseline(n: int) -> list[np.ndarray]:
    rng = np.random.default_rng(0)
    out = []
    for _ in range(n):
        activity = gaussian_filter(rng.random((256, 256)), sigma=3.0)
        out.append(rng.poisson(activity * (100_000 / activity.sum())).astype(np.uint16))
    return out


@pytest.mark.benchmark(group="synthetic")
def test_baseline_blur_and_poisson(benchmark):
    clock = Clock(_baseline)
    images = benchmark.pedantic(clock, args=(N,), rounds=3, iterations=1)
    assert len(images) == N
    _TIMES["baseline"] = clock.best(benchmark)


@pytest.mark.benchmark(group="synthetic")
def test_generate_internal_split(benchmark):
    clock = Clock(generate_split)
    rows = benchmark.pedantic(clock, args=("internal",), kwargs={"progress": False},
                              rounds=3, iterations=1)
    assert len(rows) == N
    _TIMES["generate"] = clock.best(benchmark)
    if "baseline" in _TIMES:
        ratio = _TIMES["generate"] / _TIMES["baseline"]
        benchmark.extra_info["time_ratio_vs_baseline"] = ratio
        print(f"\n[bench_synthetic] generate_split('internal'): {_TIMES['generate']:.2f} s, "
              f"baseline {_TIMES['baseline']:.2f} s, ratio {ratio:.2f}x")


@pytest.mark.benchmark(group="synthetic")
def test_generate_internal_split_all_cores(benchmark):
    """The same split rendered by one process per core: identical pixels, shorter wall time."""
    workers = os.cpu_count() or 1
    clock = Clock(generate_split)
    rows = benchmark.pedantic(clock, args=("internal",),
                              kwargs={"progress": False, "workers": workers}, rounds=3, iterations=1)
    assert len(rows) == N
    _TIMES["parallel"] = clock.best(benchmark)
    benchmark.extra_info.update(workers=workers, images_per_s=N / _TIMES["parallel"])
    if "generate" in _TIMES:
        scaling = _TIMES["generate"] / _TIMES["parallel"]
        benchmark.extra_info["scaling_vs_one_process"] = scaling
        print(f"\n[bench_synthetic] internal split on {workers} process(es): {_TIMES['parallel']:.2f} s "
              f"({N / _TIMES['parallel']:.0f} img/s), one process {_TIMES['generate']:.2f} s "
              f"({N / _TIMES['generate']:.0f} img/s): {scaling:.2f}x with {workers} cores")


@pytest.mark.benchmark(group="prepare")
def test_prepare_whole_cohort(benchmark, tmp_path):
    """``thyroid-bench prepare`` end to end: 3389 images generated on every core, encoded, written."""
    from thyroid_bench.data.synthetic.prepare import prepare_synthetic
    from thyroid_bench.data.synthetic.generator import TABLE1_COUNTS as COUNTS

    total = sum(sum(c) for c in COUNTS.values())
    home = iter(range(100))
    clock = Clock(lambda: prepare_synthetic(tmp_path / f"h{next(home)}", progress=False))
    benchmark.pedantic(clock, rounds=1, iterations=1)
    best = clock.best(benchmark)
    benchmark.extra_info["images_per_s"] = total / best
    print(f"\n[bench_synthetic] prepare: {total} images in {best:.1f} s ({total / best:.0f} img/s)")
