"""Evaluation: metrics over arrays, the predictions file, scoring and reports."""
