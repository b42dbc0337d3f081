"""Seconds of a benchmarked call that exist with or without ``--benchmark-disable``.

pytest-benchmark keeps no statistics when benchmarks are disabled (``benchmark.stats`` is
``None``; the function runs once, as a plain test), so a figure or ratio read from the stats
would fail there. :class:`Clock` wraps the function and times each call itself; :meth:`best`
is pytest-benchmark's best round when it measured, else the best call the clock saw.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


class Clock:
    """``fn`` with each call's wall seconds kept in :attr:`seconds`."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.seconds: list[float] = []

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        t0 = time.perf_counter()
        try:
            return self.fn(*args, **kwargs)
        finally:
            self.seconds.append(time.perf_counter() - t0)

    def best(self, benchmark: Any) -> float:
        """The best round's seconds: pytest-benchmark's own, else this clock's."""
        stats = getattr(benchmark, "stats", None)
        if stats is not None:
            return float(stats.stats.min)
        if not self.seconds:
            raise RuntimeError("the clock's function was never called")
        return min(self.seconds)
