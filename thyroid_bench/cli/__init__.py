"""The ``thyroid-bench`` command line (``thyroid_bench.cli:main``)."""

from thyroid_bench.cli.main import build_parser, main

__all__ = ["build_parser", "main"]
