"""Print a pytest-benchmark results file as the markdown table BENCHMARKS.md keeps.

    python benchmarks/summarise.py benchmarks/results.json

One row per benchmark: its best time, throughput, and the figures the suite
stores in ``extra_info`` (ratios against the baseline beside it, goals).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

SHOWN = ("images_per_s", "baseline_images_per_s", "ratio_vs_baseline", "goal",
         "loader_vs_training", "loader_goal", "time_ratio_vs_baseline", "scaling_vs_one_process",
         "workers", "speedup", "resamples", "studies", "wall_s", "peak_rss_gb", "tree_peak_rss_gb")


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return str(value)


def summarise(path: Path) -> str:
    data = json.loads(Path(path).read_text())
    info = data.get("machine_info", {})
    cpu = info.get("cpu", {}).get("brand_raw", "?")
    lines = [f"Machine: {cpu}, {info.get('cpu', {}).get('count', '?')} logical cores; "
             f"Python {info.get('python_version', '?')}; {data.get('datetime', '')[:19]} UTC",
             "", "| benchmark | best (s) | figures |", "| --- | ---: | --- |"]
    for b in data["benchmarks"]:
        extra = b.get("extra_info", {})
        figures = ", ".join(f"{k} {_fmt(extra[k])}" for k in SHOWN if k in extra)
        lines.append(f"| `{b['name']}` | {b['stats']['min']:.3f} | {figures} |")
    return "\n".join(lines)


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python benchmarks/summarise.py RESULTS.json")
    print(summarise(Path(sys.argv[1])))
