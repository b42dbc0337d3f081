"""What the synthetic cohorts share: stratified folds and rendering on a process pool.

Both generators (``generator.py`` for tsb-synthetic, ``residual.py`` for tsb-residual) draw
each case from its own seeded stream, so the pixels do not depend on how many processes
render them; these helpers keep that, and the folds, defined once.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar

import numpy as np

from thyroid_bench.tasks import SPLITS

__all__ = ["stratified_folds", "render_iter", "per_split"]

T = TypeVar("T")

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


def render_iter(render_one: Callable[[Any], Any], jobs: Sequence[Any], workers: int,
                progress: bool, desc: str, unit: str) -> Iterator[Any]:
    """``render_one`` of every job, in order, as they are drawn: with ``workers`` > 1 on a
    process pool holding a few chunks in flight (:func:`~thyroid_bench.data.parallel.
    ordered_map`; the function must be importable: a module-level function), so the images of
    a split are never all in memory."""
    from tqdm.auto import tqdm

    from thyroid_bench.data.parallel import ordered_map

    bar = dict(total=len(jobs), desc=desc, unit=unit, disable=not progress or None)
    return iter(tqdm(ordered_map(render_one, jobs, workers=workers, chunksize=CHUNKSIZE), **bar))


def per_split(make: Callable[..., T], seed: int, counts: Mapping[str, tuple[int, ...]] | None,
              **kwargs: Any) -> dict[str, T]:
    """``make(split, seed, counts=<that split's counts or None>, **kwargs)`` for every split: a
    generator's whole cohort (``counts`` per split overrides its defaults; a split name that
    is not one of :data:`~thyroid_bench.tasks.SPLITS` is refused)."""
    if counts is not None and set(counts) - set(SPLITS):
        raise ValueError(f"counts names unknown splits {sorted(set(counts) - set(SPLITS))}; "
                         f"expected {SPLITS}")
    return {split: make(split, seed, counts=None if counts is None else counts.get(split), **kwargs)
            for split in SPLITS}
