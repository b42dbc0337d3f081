"""The scoring benchmarks' cohort: ``n`` cases with the paper's internal class mix and
informative probabilities (numpy only, so a process measuring its own memory stays lean)."""

from __future__ import annotations

import numpy as np


def cohort(n: int) -> tuple[np.ndarray, np.ndarray]:
    """Labels and probabilities of ``n`` cases (seeded: the same ``n`` gives the same arrays)."""
    rng = np.random.default_rng(2021)
    y = rng.choice(4, size=n, p=[260 / 619, 226 / 619, 25 / 619, 108 / 619])
    logits = rng.normal(size=(n, 4))
    logits[np.arange(n), y] += 1.5
    p = np.exp(logits)
    return y, p / p.sum(axis=1, keepdims=True)
