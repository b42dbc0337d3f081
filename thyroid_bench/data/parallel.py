"""An ordered map over a process pool that keeps only a few chunks in flight.

``ProcessPoolExecutor.map`` submits every item at once and keeps every result until it is
consumed: a consumer slower than the workers (the dataset writer, encoding PNGs) lets the
results of a whole archive pile up in memory. :func:`ordered_map` submits chunks a few at a
time and yields their results in input order, so memory holds about ``ahead`` chunks of
results, whatever the number of items; the results are those of ``map(fn, items)``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from typing import Any, TypeVar

__all__ = ["ordered_map"]

T = TypeVar("T")
R = TypeVar("R")


def _run_chunk(fn: Callable[[Any], Any], items: Sequence[Any]) -> list[Any]:
    return [fn(item) for item in items]


def ordered_map(fn: Callable[[T], R], items: Sequence[T], *, workers: int, chunksize: int,
                ahead: int | None = None) -> Iterator[R]:
    """``fn`` of every item, in order, computed on ``workers`` processes in chunks of
    ``chunksize`` items with at most ``ahead`` chunks (default: two per worker) submitted and
    not yet consumed; in this process when ``workers`` is 1 or the items fit in one chunk.
    ``fn`` must be importable (a module-level function). Closing the iterator early (or an
    error) cancels the chunks not yet started."""
    if workers <= 1 or len(items) <= chunksize:
        yield from map(fn, items)
        return
    ahead = max(1, ahead or 2 * workers)
    starts = iter(range(0, len(items), chunksize))
    pool = ProcessPoolExecutor(max_workers=workers)
    pending: deque[Future] = deque()
    try:
        for start in starts:
            pending.append(pool.submit(_run_chunk, fn, items[start:start + chunksize]))
            if len(pending) >= ahead:
                break
        while pending:
            results = pending.popleft().result()
            start = next(starts, None)
            if start is not None:
                pending.append(pool.submit(_run_chunk, fn, items[start:start + chunksize]))
            yield from results
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
