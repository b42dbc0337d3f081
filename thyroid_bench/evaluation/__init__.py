"""Evaluation: metrics over arrays, a task's metric suite, the predictions file, scoring,
reports, and the leaderboard entry a result is recorded in.

The harness (which comes after this stage) writes predictions and entries through these
modules; ``thyroid-bench score`` and the leaderboard read them back through the same ones.
"""
