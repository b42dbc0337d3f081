"""Withheld evaluation labels on the leaderboard: scored from the organisers' labels file, never
stored, and the figures checked at submission kept beside the entry (``scores.json``).

A dataset version may withhold the labels of chosen evaluation splits
(:mod:`thyroid_bench.data.private`); a run on it predicts those splits and marks their metrics
withheld (:mod:`thyroid_bench.evaluation.withheld`). Then:

- ``submit RUN_DIR`` refuses it (check ``private labels``): only the organisers can score it.
  ``submit RUN_DIR --private-labels FILE`` reads their labels file, once its SHA-256 is the one
  the dataset's manifest records, applies every check ``submit`` applies (coverage, hashes,
  bootstrap settings, the predictions file has no label column) and computes every figure of
  the withheld splits with the task's metric suite.
- The section stores no labels file for a withheld split: its ``dataset.json`` marks the split
  ``private`` with the labels file's SHA-256 (:func:`~thyroid_bench.leaderboard.store.
  write_section_files`). The figures go to ``<entry folder>/scores.json``::

      {"format": "thyroid-bench withheld scores v1", "entry_sha256": "...",
       "labels_sha256": "...", "splits": {"external": {...the metric suite's figures...}}}

- Every load re-checks that record (:func:`read_scores`: it names this entry file, the labels
  file its section records, exactly the withheld splits) and shows its figures for those
  splits (:func:`with_scores`); the public splits are recomputed as always. With the
  organisers' labels (``leaderboard --private-labels FILE``) the withheld splits are recomputed
  too and must equal the stored figures.
- Paired-bootstrap ties need the labels, which the page never uses (so that anyone re-renders
  the same page): on a withheld main split they are "not computed (labels withheld)".

The figures themselves (a confusion matrix, per-class sensitivities) are aggregates, as on any
leaderboard; a submitter who probes with many crafted submissions can learn labels from them,
so the organisers decide how often a team may submit.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thyroid_bench.bounds import JSONValue, Name, loads_strict
from thyroid_bench.data.manifest import Manifest
from thyroid_bench.data.private import read_labels_file
from thyroid_bench.errors import DatasetError, validation_problems
from thyroid_bench.evaluation.predictions import Predictions, read_predictions
from thyroid_bench.evaluation.withheld import is_withheld, withheld_problem
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.errors import LeaderboardError, SubmissionError
from thyroid_bench.leaderboard.store import StoredEntry, Truth

__all__ = ["SCORES_FILE", "SCORES_FORMAT", "StoredScores", "WITHHELD_TIE", "dataset_truth",
           "with_private_labels", "section_truth_with", "require_private_labels", "check_claim",
           "check_section", "write_scores", "read_scores", "cache_parts", "with_scores"]

#: The record of an entry's withheld splits' figures, in its folder.
SCORES_FILE = "scores.json"
SCORES_FORMAT = "thyroid-bench withheld scores v1"
#: What a row's comparison with the row above is when the main split's labels are withheld.
WITHHELD_TIE: dict[str, Any] = {"withheld": True}
_SHA256 = r"^[0-9a-f]{64}$"


class StoredScores(BaseModel):
    """``scores.json``: the withheld splits' figures of one entry, checked at submission."""

    model_config = ConfigDict(extra="forbid", strict=True)

    format: Literal["thyroid-bench withheld scores v1"] = SCORES_FORMAT
    entry_sha256: str = Field(pattern=_SHA256, description="SHA-256 of the entry.json scored")
    labels_sha256: str = Field(pattern=_SHA256, description="SHA-256 of the organisers' labels file")
    splits: dict[Name, dict[Name, JSONValue]] = Field(min_length=1, max_length=8)


# --------------------------------------------------------------------------- the truth
def with_private_labels(truth: Truth, path: Path, what: str) -> Truth:
    """``truth`` with the withheld splits' labels (and regression values) read from the
    organisers' file ``path``; :class:`DatasetError` unless its SHA-256 is the one ``truth``
    records (``what`` says who records it)."""
    (sha,) = set(truth.withheld.values())  # one labels file holds every withheld split
    private = read_labels_file(path, truth.task, sha256=sha, splits=list(truth.withheld), what=what)
    return dataclasses.replace(truth, labels={**truth.labels, **private.labels},
                               values={**truth.values, **private.values})


def dataset_truth(run_dir: Path, manifest: Manifest, truth: Truth, private_labels: Path | None) -> Truth:
    """The truth of a local dataset version as ``submit`` uses it: without the withheld splits'
    sentinel labels, which it records as withheld; with the organisers' labels when given
    (check ``private labels`` if the file is not theirs)."""
    withheld = manifest.withheld_splits
    if not withheld:
        return truth
    assert manifest.private_labels is not None
    truth = dataclasses.replace(
        truth, labels={s: v for s, v in truth.labels.items() if s not in withheld},
        values={s: v for s, v in truth.values.items() if s not in withheld},
        withheld={s: manifest.private_labels.sha256 for s in withheld})
    if private_labels is None:
        return truth
    try:
        return with_private_labels(truth, private_labels, f"the manifest of {manifest.name} "
                                   f"{manifest.version}")
    except DatasetError as exc:
        raise SubmissionError(run_dir, "private labels", str(exc)) from None


def section_truth_with(truth: Truth, private_labels: Path | None, section: Path) -> Truth:
    """A stored section's truth, with the withheld splits' labels when ``private_labels`` is the
    organisers' file its ``dataset.json`` records (a file of another section leaves it as is)."""
    if private_labels is None or not truth.withheld:
        return truth
    try:
        if sha256_file(Path(private_labels).expanduser()) not in truth.withheld.values():
            return truth
        return with_private_labels(truth, private_labels, str(section / "dataset.json"))
    except (OSError, DatasetError) as exc:
        raise LeaderboardError(f"--private-labels {private_labels}: {exc}") from None


def require_private_labels(run_dir: Path, truth: Truth) -> None:
    """``private labels``: a run on a dataset with withheld labels is scored by its organisers,
    with their labels file."""
    missing = [s for s in truth.withheld if s not in truth.labels]
    if missing:
        sha = truth.withheld[missing[0]]
        raise SubmissionError(
            run_dir, "private labels",
            f"the labels of {', '.join(missing)} of {truth.ref.spec} are withheld by its organisers, "
            "so only they can score this run: they submit it with their labels file, `thyroid-bench "
            f"submit {run_dir} --private-labels FILE` (the file whose SHA-256 is {sha[:12]}...); "
            "send them the run folder")


def check_claim(run_dir: Path, split: str, claimed: Mapping[str, Any], truth: Truth,
                preds: Predictions) -> bool:
    """Whether ``split`` is withheld; its entry metrics are then the withheld marker and its
    predictions file has no label column (either would state labels the organisers withhold);
    a public split's are not the marker. Check ``metrics`` / ``predictions`` otherwise."""
    if split not in truth.withheld:
        if is_withheld(claimed):
            raise SubmissionError(run_dir, "metrics", f"metrics.{split} is marked withheld, but the "
                                  f"labels of {split} of {truth.ref.spec} are public: score it")
        return False
    problem = withheld_problem(claimed, len(preds))
    if problem:
        raise SubmissionError(run_dir, "metrics", f"metrics.{split}: {problem}")
    if preds.labels is not None:
        raise SubmissionError(run_dir, "predictions", f"{preds.path}: a label column in a split whose "
                              "labels are withheld would publish them; drop the column")
    return True


def check_section(run_dir: Path, record_splits: Mapping[str, Any], truth: Truth) -> None:
    """``dataset fingerprint``: a stored section withholds the same splits, with the same
    labels file, as the run's dataset version."""
    stored = {s: m.sha256 for s, m in record_splits.items() if getattr(m, "private", False)}
    if stored != truth.withheld:
        raise SubmissionError(run_dir, "dataset fingerprint",
                              f"the leaderboard's {truth.ref.spec} withholds the labels of "
                              f"{sorted(stored) or 'no split'}, this run's dataset those of "
                              f"{sorted(truth.withheld) or 'no split'} (or another labels file): "
                              "two different builds cannot share a version")


# --------------------------------------------------------------------------- scores.json
def write_scores(folder: Path, entry_sha256: str, truth: Truth, scores: Mapping[str, Any]) -> Path:
    """``<folder>/scores.json``: the withheld splits' figures computed at submission."""
    (sha,) = set(truth.withheld.values())
    record = StoredScores(entry_sha256=entry_sha256, labels_sha256=sha, splits=dict(scores))
    path = folder / SCORES_FILE
    path.write_text(json.dumps(record.model_dump(mode="json"), indent=2, allow_nan=False) + "\n",
                    encoding="utf-8")
    return path


def read_scores(stored: StoredEntry, truth: Truth) -> dict[str, dict[str, Any]]:
    """The stored figures of the entry's withheld splits, once ``scores.json`` names this entry
    file, the labels file its section records and exactly those splits
    (:class:`LeaderboardError` otherwise: restore it from git)."""
    path = stored.folder / SCORES_FILE
    try:
        record = StoredScores.model_validate(loads_strict(path.read_text(encoding="utf-8")))
    except (OSError, ValueError) as exc:  # strict JSON and Unicode errors are ValueErrors
        problem = validation_problems(exc, 5) if isinstance(exc, ValidationError) else str(exc)
        raise LeaderboardError(f"{path}: missing or not a scores record ({problem}); the figures of "
                               f"the withheld split(s) {sorted(truth.withheld)} are kept there: "
                               "restore it from git") from None
    sha = sha256_file(stored.folder / "entry.json")
    labels = set(truth.withheld.values())
    if record.entry_sha256 != sha or {record.labels_sha256} != labels or set(record.splits) != set(truth.withheld):
        raise LeaderboardError(f"{path}: not the scores of this entry ({sha[:12]}...) on the "
                               f"withheld split(s) {sorted(truth.withheld)} with the labels file its "
                               "section records; restore it from git")
    for split, figures in record.splits.items():
        _consistent_with_predictions(path, stored, truth, split, figures)
    return dict(record.splits)


def _consistent_with_predictions(path: Path, stored: StoredEntry, truth: Truth, split: str,
                                 figures: Mapping[str, Any]) -> None:
    """What anyone can check of a withheld split's figures without its labels: the number of
    cases and how many the stored predictions call each class (the column sums of
    ``confusion_matrix``) and, for a task with a detection reading, absent or present (those of
    ``detection_confusion_matrix``). Made-up figures that do not fit the public predictions are
    refused."""
    preds = read_predictions(stored.predictions_path(split), truth.task)
    called = np.bincount(preds.probs.argmax(axis=1), minlength=preds.probs.shape[1]).tolist()
    expected: dict[str, Any] = {"n": len(preds.case_ids), "confusion_matrix": called}
    detection = truth.task.detection
    if detection is not None:
        present = 1.0 - preds.probs[:, truth.task.negative_index] >= detection.threshold
        expected["detection_confusion_matrix"] = [int((~present).sum()), int(present.sum())]
    found = {"n": figures.get("n")}
    for key in ("confusion_matrix", "detection_confusion_matrix"):
        if key in expected and figures.get(key) is not None:
            found[key] = _column_sums(figures[key])
    wrong = {k: v for k, v in found.items() if v != expected[k]}
    if wrong:
        raise LeaderboardError(f"{path}: the {split} figures do not fit the entry's own predictions "
                               f"({', '.join(f'{k}: {expected[k]} expected, {v} stored' for k, v in wrong.items())}; "
                               "per-class counts are the confusion matrix's column sums): restore it from git")


def _column_sums(matrix: Any) -> Any:
    """A stored confusion matrix's column sums (how many cases were called each class)."""
    try:
        return [int(sum(col)) for col in zip(*matrix)]
    except TypeError:
        return repr(matrix)[:40]


def cache_parts(stored: StoredEntry, truth: Truth) -> tuple[str, ...]:
    """What a passed recomputation of an entry with withheld splits also depends on: its
    ``scores.json``, and whether the organisers' labels were given (then they are recomputed)."""
    if not truth.withheld:
        return ()
    given = set(truth.withheld) <= set(truth.labels)
    return (sha256_file(stored.folder / SCORES_FILE), f"withheld labels given: {given}")


def with_scores(stored: StoredEntry, scores: Mapping[str, Mapping[str, Any]]) -> StoredEntry:
    """``stored`` as the page shows it: the withheld splits' metrics replaced by their stored
    figures (the entry file is unchanged)."""
    if not scores:
        return stored
    entry = stored.entry.model_copy(update={"metrics": {**stored.entry.metrics, **scores}})
    return dataclasses.replace(stored, entry=entry)
