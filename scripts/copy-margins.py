"""How far apart distinct runs are, in the copy check's own terms (thyroid_bench/leaderboard/copies.py).

For every pair of committed entries in a leaderboard section: over the cases (all evaluation
splits) where either entry's top probability is below SATURATED, the median of the largest
probability difference. The copy check calls a pair a copy at NEAR_COPY_MEDIAN or less; this
prints how far above that the committed runs lie.

    .venv/bin/python scripts/copy-margins.py [leaderboard]
"""

import itertools
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from thyroid_bench.leaderboard.copies import NEAR_COPY_MEDIAN, SATURATED

board = Path(sys.argv[1] if len(sys.argv) > 1 else "leaderboard")
for section in sorted(board.glob("entries/*/*/")):
    probs = {}
    for entry in sorted(p.parent for p in section.glob("*/entry.json")):
        frames = [pd.read_csv(f).sort_values("case_id") for f in sorted(entry.glob("predictions/*.csv"))]
        probs[entry.name] = np.vstack([f[[c for c in f.columns if c.startswith("prob_")]].to_numpy()
                                       for f in frames])
    medians = []
    for a, b in itertools.combinations(probs, 2):
        x, y = probs[a], probs[b]
        uncertain = (x.max(axis=1) < SATURATED) | (y.max(axis=1) < SATURATED)
        medians.append((float(np.median(np.abs(x - y).max(axis=1)[uncertain])), a, b))
    low = min(medians)
    print(f"{section.relative_to(board)}: {len(medians)} pairs; smallest median difference "
          f"{low[0]:.4f} ({low[1]} vs {low[2]}), {low[0] / NEAR_COPY_MEDIAN:.0f}x the copy threshold")
