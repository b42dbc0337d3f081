"""The committed four-pattern baselines per model and protocol version, with the figures that
`thyroid-bench leaderboard` does not show: focal-increased (type III) sensitivity on each split.

Mean ± sd over seeds of every stored entry of tsb-synthetic (or the section given), read
through the leaderboard's own loader (hashes checked), grouped by the leaderboard's protocol
label (quick@1, quick@2), so versions are never averaged together. Prints a Markdown table.

    .venv/bin/python scripts/protocol-table.py [leaderboard] [--section four-pattern/tsb-synthetic@1.0.0]
"""

import argparse
from collections import defaultdict

import numpy as np

from thyroid_bench.leaderboard.names import protocol_label
from thyroid_bench.leaderboard.store import load_entries

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("leaderboard", nargs="?", default="leaderboard")
parser.add_argument("--section", default="four-pattern/tsb-synthetic@1.0.0")
parser.add_argument("--focal", default="focal_increased", help="the class whose sensitivity is shown")
args = parser.parse_args()

groups = defaultdict(list)
for stored in load_entries(args.leaderboard):
    if str(stored.rel).startswith(f"entries/{args.section}/"):
        groups[(stored.entry.model.name, protocol_label(stored.entry))].append(stored.entry)


def figure(entries, split, *path):
    values = []
    for entry in entries:
        value = entry.model_dump(mode="json")["metrics"][split]
        for key in path:
            value = value[key]
        values.append(100 * value)
    sd = np.std(values, ddof=1) if len(values) > 1 else 0.0
    return f"{np.mean(values):.1f} ± {sd:.1f}"


print("| model | protocol | seeds | int type III sens | ext type III sens | int macro F1 | ext macro F1 "
      "| wall s (mean) |")
print("| --- | --- | --- | ---: | ---: | ---: | ---: | ---: |")
for (model, label), entries in sorted(groups.items()):
    seeds = ",".join(str(e.seed) for e in sorted(entries, key=lambda e: e.seed))
    focal = ("per_class", args.focal, "sensitivity")
    print(f"| {model} | {label} | {seeds} | {figure(entries, 'internal', *focal)} "
          f"| {figure(entries, 'external', *focal)} | {figure(entries, 'internal', 'macro_f1')} "
          f"| {figure(entries, 'external', 'macro_f1')} "
          f"| {np.mean([e.wall_time_s for e in entries]):.0f} |")
