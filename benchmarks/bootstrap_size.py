"""Wall time and peak memory of ``evaluate()`` with 1,000 bootstrap resamples, by number of cases.

Each size runs in its own process (so each peak RSS is that size's alone), on the cohort of
``bench_metrics.py`` (``_cohort.py``: the paper's internal class mix, informative probabilities), and the
ratios of the largest size to the smallest are printed: time should grow about linearly with
the cases, and memory far less, because resamples are drawn and scored in chunks of a fixed
number of (resample, case) weights.

    .venv/bin/python benchmarks/bootstrap_size.py                       # 100,000 and 1,000,000 cases
    .venv/bin/python benchmarks/bootstrap_size.py --cases 10000,100000  # quicker
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def one(n: int, resamples: int) -> dict:
    from _cohort import cohort
    from thyroid_bench.evaluation.metrics import evaluate
    from thyroid_bench.tasks import get_task

    y, p = cohort(n)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    t0 = time.perf_counter()
    result = evaluate(y, p, get_task("four-pattern").class_names, bootstrap=resamples, seed=0)
    wall = time.perf_counter() - t0
    assert result["bootstrap"]["resamples"] == resamples
    return {"cases": n, "resamples": resamples, "wall_s": round(wall, 2),
            "peak_rss_gb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6, 3),
            "rss_before_gb": round(before, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cases", default="100000,1000000", help="comma-separated case counts")
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--one", type=int, help=argparse.SUPPRESS)  # the child process
    args = parser.parse_args()
    if args.one:
        print(json.dumps(one(args.one, args.resamples)))
        return
    rows = []
    for n in (int(c) for c in args.cases.split(",")):
        out = subprocess.run([sys.executable, __file__, "--one", str(n), "--resamples",
                              str(args.resamples)], capture_output=True, text=True, check=True)
        rows.append(json.loads(out.stdout))
        r = rows[-1]
        print(f"{r['cases']:>10,} cases, {r['resamples']} resamples: {r['wall_s']:.1f} s, "
              f"peak RSS {r['peak_rss_gb']:.3f} GB (data and imports: {r['rss_before_gb']:.3f} GB)")
    if len(rows) > 1:
        a, b = rows[0], rows[-1]
        print(f"{b['cases'] / a['cases']:.0f}x the cases: {b['wall_s'] / a['wall_s']:.2f}x the time, "
              f"{b['peak_rss_gb'] / a['peak_rss_gb']:.2f}x the peak RSS")


if __name__ == "__main__":
    main()
