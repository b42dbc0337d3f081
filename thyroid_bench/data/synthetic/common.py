"""What the synthetic cohorts share: stratified folds and rendering on a process pool.

Both generators (``generator.py`` for tsb-synthetic, ``residual.py`` for tsb-residual) draw
each case from its own seeded stream, so the pixels do not depend on how many processes
render them; these helpers keep that, and the folds, defined once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

__all__ = ["stratified_folds", "render_all"]

#: Jobs per inter-process call: amortises the calls; a split has dozens of chunks per worker.
CHUNKSIZE = 16


def stratified_folds(labels: np.ndarray, num_classes: int, folds: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Fold 0..folds-1 of each case, stratified by label: the cases of class 0, then 1, ...,
    each class in an order drawn from ``rng``, dealt round-robin continuing across classes."""
    out = np.full(labels.size, -1, dtype=int)
    offset = 0
    for k in range(num_classes):
        idx = np.flatnonzero(labels == k)
        idx = idx[rng.permutation(idx.size)]
        out[idx] = (offset + np.arange(idx.size)) % folds
        offset += idx.size
    return out


def render_all(render_one: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
               progress: bool, desc: str, unit: str) -> list[Any]:
    """``render_one`` of every job, in order; with ``workers`` > 1 on a process pool (the
    function must be importable: a module-level function)."""
    from concurrent.futures import ProcessPoolExecutor

    from tqdm.auto import tqdm

    bar = dict(total=len(jobs), desc=desc, unit=unit, disable=not progress or None)
    if workers <= 1 or len(jobs) <= CHUNKSIZE:
        return list(tqdm(map(render_one, jobs), **bar))
    pool = ProcessPoolExecutor(max_workers=workers)
    try:
        return list(tqdm(pool.map(render_one, jobs, chunksize=CHUNKSIZE), **bar))
    finally:
        pool.shutdown(cancel_futures=True)  # on Ctrl-C, do not render the rest first
