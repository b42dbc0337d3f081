"""The checks a run folder passes before the leaderboard accepts it (:func:`check_run`).

One function per check, called in order by :func:`check_run`; the first failure raises
:class:`~thyroid_bench.leaderboard.errors.SubmissionError` naming the check. Everything
task-specific (evaluation splits, classes, the metric suite) comes from the entry's task.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from thyroid_bench.data import official
from thyroid_bench.data.manifest import DatasetRef, Manifest, read_manifest
from thyroid_bench.errors import DatasetError, PredictionsError, VerificationError
from thyroid_bench.evaluation.entry import Entry, EntryError, read_entry
from thyroid_bench.evaluation.metrics import ECE_BINS
from thyroid_bench.evaluation.predictions import Predictions, read_predictions
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.copies import Candidate, copy_reason
from thyroid_bench.leaderboard.errors import SubmissionError
from thyroid_bench.leaderboard.names import describe_key, duplicate_key, entry_id, section_rel
from thyroid_bench.leaderboard.rules import (CI_LEVEL, EXTERNAL_PROTOCOL, METRIC_TOLERANCE,
                                             MIN_BOOTSTRAP_RESAMPLES)
import thyroid_bench.leaderboard.withheld as withheld
from thyroid_bench.leaderboard.store import StoredEntry, Truth, value_columns
from thyroid_bench.tasks import Task, TaskError, get_task

__all__ = ["CheckedRun", "check_run", "check_scores", "check_stored_claims", "first_difference",
           "split_values"]


@dataclass
class CheckedRun:
    """A run folder that passed every check, ready to be stored."""

    run_dir: Path
    entry: Entry
    entry_sha256: str
    entry_id: str
    section: PurePosixPath  # entries/<task>/<dataset>@<version>
    truth: Truth
    scores: dict[str, dict] = field(default_factory=dict)  # withheld splits' figures, checked


def check_run(
    run_dir: str | os.PathLike,
    *,
    home: Path | None = None,
    existing: Iterable[Entry | StoredEntry] = (),
    _truth_cache: dict[tuple[str, str], Truth] | None = None,
    private_labels: Path | None = None,
) -> CheckedRun:
    """Run every leaderboard check on a run folder; raise :class:`SubmissionError` on the first failure.

    In order: ``run folder`` (it exists), ``schema`` (entry.json is strict JSON and a valid
    schema-v1 entry within its bounds, unknown fields refused), ``task`` (the entry's task is
    known), ``protocol`` (the protocol is a registered one and its parameters are that
    protocol's with the recorded overrides applied, :func:`protocol_problem`), ``splits`` (metrics and
    predictions for exactly the task's evaluation splits), ``duplicate`` (no entry in
    ``existing`` with the same task, dataset name@version, model, protocol and seed),
    ``dataset fingerprint`` / ``dataset present`` / ``task`` / ``dataset verification`` (a
    pinned official version, or a local version with the same fingerprint and task; the
    local data must verify), ``dataset synthetic`` (the entry's synthetic flag is the
    manifest's), ``predictions path`` and ``predictions hash`` (each file lies under
    predictions/ and has the entry's SHA-256); then per evaluation split ``predictions``
    (the file covers exactly the split's cases, every row a probability vector; its optional
    label column agrees with the dataset), ``bootstrap`` (intervals of at least 1000
    resamples at 95%) and ``metrics`` (every figure recomputed with the task's metric suite,
    :func:`thyroid_bench.evaluation.suites.evaluate_task`, under the entry's bootstrap
    settings equals the claimed one within 1e-9); last ``copy`` (no predictions file
    byte-identical to one of an entry in ``existing``, and no predictions agreeing with
    one's on every case: :mod:`~thyroid_bench.leaderboard.copies`; a bare :class:`Entry` in
    ``existing`` is compared by its recorded hashes only, a :class:`StoredEntry` by its files).
    On a dataset version whose labels of some splits are withheld, ``private labels``: the
    organisers' labels file ``private_labels`` scores them (:mod:`~thyroid_bench.leaderboard.
    withheld`), and the figures computed are the result's ``scores``.
    """
    existing = list(existing)
    run_dir = _check_folder(Path(run_dir))
    entry, entry_sha = _check_schema(run_dir)
    task = _check_task(run_dir, entry)
    _check_protocol(run_dir, entry)
    _check_splits(run_dir, entry, task)
    _check_duplicate(run_dir, entry, existing)
    truth = _dataset_truth(run_dir, entry, task, home, {} if _truth_cache is None else _truth_cache,
                           private_labels)
    withheld.require_private_labels(run_dir, truth)
    _check_synthetic(run_dir, entry, truth)
    files = {split: _check_predictions_path(run_dir, split, entry.predictions[split].path)
             for split in task.eval_splits}
    _check_predictions_hash(run_dir, entry, files)
    scores = check_scores(run_dir, entry, truth, files)
    _check_not_copy(run_dir, entry, existing)
    return CheckedRun(run_dir, entry, entry_sha, entry_id(entry, entry_sha), section_rel(entry), truth,
                      scores)


def check_scores(run_dir: Path, entry: Entry, truth: Truth, files: Mapping[str, Path],
                 stored_scores: Mapping[str, Mapping[str, Any]] | None = None) -> dict[str, dict]:
    """Per evaluation split: ``predictions`` (coverage, probability rows, label column),
    ``bootstrap`` and ``metrics`` (every figure recomputed from ``files`` and ``truth``'s
    labels): the part of :func:`check_run` that a stored entry passes again on every load.

    A split whose labels are withheld is skipped without them; with them its entry metrics
    are the withheld marker, its figures are computed (and must equal ``stored_scores``', if
    given) and returned: split -> figures (:mod:`~thyroid_bench.leaderboard.withheld`)."""
    scores = {}
    for split in truth.task.eval_splits:
        if split not in truth.labels:  # withheld, without the organisers' labels: scores.json stands
            continue
        preds, y_true = _check_predictions(run_dir, entry, truth, split, files[split])
        claimed = entry.metrics[split]
        private = withheld.check_claim(run_dir, split, claimed, truth, preds)
        boot = _check_bootstrap(run_dir, claimed, split)
        figures = _check_metrics(run_dir, claimed, split, boot, truth.task, y_true, preds,
                                 split_values(truth, split, preds),
                                 (stored_scores or {}).get(split) if private else claimed)
        if private:
            scores[split] = figures
    return scores


def check_stored_claims(folder: Path, entry: Entry) -> None:
    """The checks of :func:`check_run` on what an entry claims that need no dataset: ``task``,
    ``protocol``, ``splits``, ``predictions path`` and, for an official dataset version,
    ``dataset fingerprint`` against the pin: what a stored entry passes again on every load."""
    task = _check_task(folder, entry)
    _check_protocol(folder, entry)
    _check_splits(folder, entry, task)
    for split in task.eval_splits:
        _check_predictions_path(folder, split, entry.predictions[split].path)
    _check_pinned_fingerprint(folder, entry.dataset)


# --------------------------------------------------------------------------- the entry
def _check_folder(run_dir: Path) -> Path:
    if not run_dir.is_dir():
        raise SubmissionError(run_dir, "run folder", "no such folder; give a run folder made by "
                              "`thyroid-bench run` (it holds entry.json and predictions/)")
    return run_dir


def _check_schema(run_dir: Path) -> tuple[Entry, str]:
    """``schema``: the entry and its file's SHA-256."""
    entry_path = run_dir / "entry.json"
    try:
        entry = read_entry(entry_path)
    except EntryError as exc:
        hint = " (the run did not finish: INCOMPLETE is present)" if (run_dir / "INCOMPLETE").exists() else ""
        raise SubmissionError(run_dir, "schema", f"{exc}{hint}") from None
    return entry, sha256_file(entry_path)


def _check_task(run_dir: Path, entry: Entry) -> Task:
    try:
        return get_task(entry.task)
    except TaskError as exc:
        raise SubmissionError(run_dir, "task", str(exc)) from None


def _check_protocol(run_dir: Path, entry: Entry) -> None:
    problem = protocol_problem(entry)
    if problem:
        raise SubmissionError(run_dir, "protocol", problem)


#: Protocol fields that name or describe it: never overridden.
_NOT_OVERRIDDEN = ("name", "description", "version")


def _same_value(a: Any, b: Any) -> bool:
    """Equal JSON values: a boolean only equals a boolean, numbers compare by value."""
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        return a == b
    return type(a) is type(b) and a == b


def _override_problem(name: str, registered: Mapping[str, Any], key: str, value: Any) -> str | None:
    if key not in registered or key in _NOT_OVERRIDDEN:
        fields = ", ".join(k for k in registered if k not in _NOT_OVERRIDDEN)
        return f"protocol.overrides.{key}: not a parameter that can be overridden ({fields})"
    base = registered[key]
    kinds = {bool: (bool,), int: (int,), float: (int, float), str: (str,)}
    allowed = kinds.get(type(base), (int, float, str))  # None: the model's or the task's choice
    if value is None or isinstance(value, bool) != isinstance(base, bool) or not isinstance(value, allowed):
        return (f"protocol.overrides.{key} = {value!r} is not a value of the {type(base).__name__} "
                f"parameter {key} of protocol {name!r}")
    return None


def _external_problem(entry: Entry) -> str | None:
    """Why an entry that is, or claims to be, made from predictions is not what it claims."""
    record = entry.protocol
    if entry.origin != "external":
        what = (f"protocol {EXTERNAL_PROTOCOL!r}" if record.name == EXTERNAL_PROTOCOL
                else f"model kind {entry.model.kind!r}")
        return (f"{what} is for entries made from predictions (origin 'external', written by "
                "`thyroid-bench entry new`); an entry of origin 'harness' names the protocol the "
                "harness trained it under")
    if record.name != EXTERNAL_PROTOCOL or record.parameters or record.overrides:
        return (f"an entry of origin 'external' (made from predictions by `thyroid-bench entry "
                f"new`) names protocol {EXTERNAL_PROTOCOL!r} with no parameters and no overrides, "
                f"not {record.name!r} with {len(record.parameters)} parameter(s) and "
                f"{len(record.overrides)} override(s): the harness did not train it")
    return None


def protocol_problem(entry: Entry) -> str | None:
    """Why the entry's protocol record is not what it claims, or ``None``.

    The name must be a registered protocol (:data:`thyroid_bench.harness.protocols.PROTOCOLS`)
    and ``parameters`` exactly that protocol's, with ``overrides`` applied, on the entry's task
    (:meth:`~thyroid_bench.harness.protocols.Protocol.for_task`): a run made under ``quick``
    cannot be labelled ``paper``, and any change is an override, shown in the row's label.
    An entry of origin ``external`` names protocol :data:`~thyroid_bench.leaderboard.rules.
    EXTERNAL_PROTOCOL` with no parameters or overrides, and only such an entry may name it
    or be a human reader's.
    """
    from thyroid_bench.harness.protocols import PROTOCOLS, ProtocolError, version_of, versioned_name

    if (entry.origin == "external" or entry.protocol.name == EXTERNAL_PROTOCOL
            or entry.model.kind == "human reader"):
        return _external_problem(entry)
    record = entry.protocol
    version = version_of(record.parameters)
    if version is None:
        return (f"protocol.parameters.version is {record.parameters.get('version')!r}, not a "
                "version number (a whole number from 1; absent means 1)")
    name = versioned_name(record.name, version)
    base = PROTOCOLS.get(name)
    if base is None:
        return (f"protocol {name!r} is not a registered protocol version ({', '.join(PROTOCOLS)}); "
                "run under one of them, with --epochs / --batch-size as overrides")
    registered = base.to_dict()
    for key, value in record.overrides.items():
        problem = _override_problem(name, registered, key, value)
        if problem:
            return problem
    try:
        expected = base.with_overrides(**record.overrides).for_task(get_task(entry.task)).to_dict()
    except (ProtocolError, TaskError, TypeError, ValueError) as exc:
        return f"protocol.overrides {record.overrides} do not make a valid {name!r} protocol: {exc}"
    for key in sorted(set(expected) | set(record.parameters)):
        if key not in record.parameters or key not in expected or not _same_value(
                record.parameters[key], expected[key]):
            claimed = record.parameters.get(key, "<missing>")
            should = expected.get(key, "<not a parameter>")
            return (f"protocol.parameters.{key} is {claimed!r}, but protocol {name!r} with overrides "
                    f"{record.overrides or 'none'} has {should!r}: the run was not made under the "
                    "protocol it names (a changed parameter must be recorded as an override)")
    return None


def _check_splits(run_dir: Path, entry: Entry, task: Task) -> None:
    for what, keys in (("metrics", entry.metrics), ("predictions", entry.predictions)):
        if set(keys) != set(task.eval_splits):
            raise SubmissionError(run_dir, "splits", f"the entry's {what} cover {sorted(keys)}; a "
                                  f"leaderboard entry needs exactly {list(task.eval_splits)}")


def _check_duplicate(run_dir: Path, entry: Entry, existing: Iterable[Entry | StoredEntry]) -> None:
    key = duplicate_key(entry)
    for other in (Candidate.of(o).entry for o in existing):
        if duplicate_key(other) == key:
            raise SubmissionError(run_dir, "duplicate",
                                  f"the leaderboard already has an entry for {describe_key(key)} "
                                  f"(run {other.run_id}); use another seed, or remove the old entry")


def _check_not_copy(run_dir: Path, entry: Entry, existing: Iterable[Entry | StoredEntry]) -> None:
    reason = copy_reason(entry, run_dir, [Candidate.of(o) for o in existing])
    if reason:
        raise SubmissionError(run_dir, "copy", reason)


# --------------------------------------------------------------------------- the dataset
def _dataset_truth(run_dir: Path, entry: Entry, task: Task, home: Path | None,
                   cache: dict[tuple[str, str], Truth], private_labels: Path | None = None) -> Truth:
    """The entry's dataset version, checked, with its labels (from ``cache`` when already read;
    withheld ones from the organisers' ``private_labels``)."""
    key = (entry.dataset.name, entry.dataset.version)
    truth = cache.get(key)
    if truth is None or truth.ref.fingerprint != entry.dataset.fingerprint:
        pin = _check_pinned_fingerprint(run_dir, entry.dataset)
        folder = _check_dataset_present(run_dir, entry.dataset, pin, home)
        _check_local_fingerprint(run_dir, entry, folder)
        manifest = _check_dataset_verification(run_dir, folder)
        labels, values = _eval_labels(folder, task)
        truth = cache[key] = withheld.dataset_truth(
            run_dir, manifest, Truth(manifest.dataset_ref(), task, labels, values), private_labels)
    return truth


def _check_pinned_fingerprint(run_dir: Path, ds: DatasetRef) -> str | None:
    """``dataset fingerprint``: an official version's pin; the pin, or ``None`` if not official."""
    pin = official.pinned_fingerprint(ds.name, ds.version)
    if pin is not None and ds.fingerprint != pin:
        raise SubmissionError(run_dir, "dataset fingerprint",
                              f"the entry claims fingerprint {ds.fingerprint} for {ds.spec}, but the "
                              f"official {ds.spec} is pinned at {pin}: the run used another build of it")
    return pin


def _check_dataset_present(run_dir: Path, ds: DatasetRef, pin: str | None, home: Path | None) -> Path:
    """``dataset present`` (an official version) or ``dataset fingerprint`` (any other)."""
    from thyroid_bench.data.format import resolve_dataset

    where = ds.spec
    try:
        return resolve_dataset(where, home=home)
    except DatasetError:
        if pin is not None:
            raise SubmissionError(
                run_dir, "dataset present",
                f"{where} is an official version (fingerprint {pin[:12]}...), but its labels are "
                "needed to recompute the metrics and it is not in the dataset home "
                f"({home or 'the default home'}); prepare it with `thyroid-bench prepare` "
                "(or pass --home)") from None
        raise SubmissionError(
            run_dir, "dataset fingerprint",
            f"unknown dataset fingerprint {ds.fingerprint} of {where}: it is not a pinned official "
            f"version and no {where} is present in the dataset home ({home or 'the default home'}); "
            "put the dataset version there (thyroid-bench prepare ...) or pass --home") from None


def _check_local_fingerprint(run_dir: Path, entry: Entry, folder: Path) -> None:
    """``dataset fingerprint`` and ``task``: the local version is the one the entry names."""
    ds, where = entry.dataset, entry.dataset.spec
    try:
        manifest = read_manifest(folder)
    except DatasetError as exc:
        raise SubmissionError(run_dir, "dataset verification", str(exc)) from None
    if (manifest.name, manifest.version) != (ds.name, ds.version):
        raise SubmissionError(run_dir, "dataset fingerprint",
                              f"{folder} holds {manifest.name}@{manifest.version}, not {where}")
    if manifest.fingerprint != ds.fingerprint:
        raise SubmissionError(
            run_dir, "dataset fingerprint",
            f"unknown dataset fingerprint {ds.fingerprint}: the local {where} ({folder}) has "
            f"fingerprint {manifest.fingerprint}; the run used another build of the dataset")
    if manifest.task != entry.task:
        raise SubmissionError(run_dir, "task", f"the entry's task {entry.task!r} is not the task "
                              f"{manifest.task!r} of {where}")


def _check_dataset_verification(run_dir: Path, folder: Path) -> Manifest:
    """``dataset verification``: the local data verifies, so its labels can be trusted."""
    from thyroid_bench.data.verify import verify_or_raise

    try:
        return verify_or_raise(folder, consequence="its labels cannot be trusted")
    except VerificationError as exc:
        raise SubmissionError(run_dir, "dataset verification", str(exc)) from None


def _eval_labels(folder: Path, task: Task) -> tuple[dict[str, dict[str, int]],
                                                     dict[str, dict[str, dict[str, float]]]]:
    """Per evaluation split of ``task``: case_id -> label (class index, or ``UNKNOWN_GRADE``),
    and regression column -> case_id -> value (NaN where not measured)."""
    from thyroid_bench.data.format import read_split

    labels, values = {}, {}
    columns = value_columns(task)
    for split in task.eval_splits:
        table = read_split(folder, split, columns=["case_id", "label", *columns])
        ids = [str(c) for c in table["case_id"]]
        labels[split] = {c: int(y) for c, y in zip(ids, table["label"])}
        values[split] = {col: dict(zip(ids, table[col].to_numpy(dtype=np.float64, na_value=np.nan)))
                         for col in columns}
    return labels, values


def _check_synthetic(run_dir: Path, entry: Entry, truth: Truth) -> None:
    if entry.dataset.synthetic != truth.ref.synthetic:
        raise SubmissionError(run_dir, "dataset synthetic",
                              f"the entry says synthetic={entry.dataset.synthetic}, the manifest of "
                              f"{truth.ref.spec} says synthetic={truth.ref.synthetic}")


# --------------------------------------------------------------------------- predictions
def _check_predictions_path(run_dir: Path, split: str, rel: str) -> Path:
    """``predictions path``: a relative path under predictions/; the file it names."""
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or "\\" in rel or not p.parts or p.parts[0] != "predictions":
        raise SubmissionError(run_dir, "predictions path",
                              f"predictions.{split}.path {rel!r} must be a relative path under "
                              "predictions/ (e.g. predictions/external.csv)")
    return run_dir.joinpath(*p.parts)


def _check_predictions_hash(run_dir: Path, entry: Entry, files: Mapping[str, Path]) -> None:
    for split, path in files.items():
        if not path.is_file():
            raise SubmissionError(run_dir, "predictions hash", f"{path} (predictions.{split}) is missing")
        digest = sha256_file(path)
        if digest != entry.predictions[split].sha256:
            raise SubmissionError(run_dir, "predictions hash",
                                  f"{path} has SHA-256 {digest}, but the entry records "
                                  f"{entry.predictions[split].sha256}: the file changed after the run")


def _check_predictions(run_dir: Path, entry: Entry, truth: Truth, split: str,
                       path: Path) -> tuple[Predictions, np.ndarray]:
    """``predictions``: the split's predictions and true labels, lined up by case id."""
    labels, task = truth.labels[split], truth.task
    try:
        preds = read_predictions(path, task, expected_case_ids=list(labels))
    except PredictionsError as exc:
        raise SubmissionError(run_dir, "predictions", f"split {split} of {truth.ref.spec}: {exc}") from None
    if len(preds) != entry.predictions[split].rows:
        raise SubmissionError(run_dir, "predictions",
                              f"{path} has {len(preds)} rows, the entry records "
                              f"{entry.predictions[split].rows}")
    preds, y_true, mismatch = preds.against(labels)
    if mismatch.size:
        i = int(mismatch[0])
        raise SubmissionError(run_dir, "predictions",
                              f"{path}: the label column says {task.label_text(int(preds.labels[i]))} "
                              f"for case {preds.case_ids[i]!r}, the dataset says "
                              f"{task.label_text(int(y_true[i]))}")
    return preds, y_true


# --------------------------------------------------------------------------- metrics
def _check_bootstrap(run_dir: Path, claimed: Mapping[str, Any], split: str) -> Mapping[str, Any]:
    """``bootstrap``: the claimed intervals' settings (resamples, seed, level), if acceptable."""
    boot = claimed.get("bootstrap")
    if (not isinstance(boot, Mapping) or not isinstance(boot.get("resamples"), int)
            or not isinstance(boot.get("seed"), int) or not isinstance(boot.get("level"), (int, float))):
        raise SubmissionError(run_dir, "bootstrap",
                              f"metrics.{split}.bootstrap must record resamples, seed and level "
                              f"(as metrics.evaluate writes them), got {boot!r}")
    if boot["resamples"] < MIN_BOOTSTRAP_RESAMPLES or not math.isclose(boot["level"], CI_LEVEL):
        raise SubmissionError(
            run_dir, "bootstrap",
            f"metrics.{split} has {boot['resamples']} bootstrap resamples at level {boot['level']}; "
            f"the leaderboard shows {CI_LEVEL:.0%} intervals of at least {MIN_BOOTSTRAP_RESAMPLES} "
            f"resamples: re-run with --bootstrap {MIN_BOOTSTRAP_RESAMPLES}")
    return boot


def split_values(truth: Truth, split: str, preds: Predictions) -> dict[str, np.ndarray]:
    """The dataset's regression columns (the task's ``regression_target``) of one split, in
    the predictions' case order (NaN where not measured): ``evaluate_task``'s ``true_values``."""
    return {col: np.array([truth.values[split][col][c] for c in preds.case_ids], dtype=np.float64)
            for col in value_columns(truth.task)}


def _check_metrics(run_dir: Path, claimed: Mapping[str, Any], split: str, boot: Mapping[str, Any],
                   task: Task, y_true: np.ndarray, preds: Predictions,
                   true_values: dict[str, np.ndarray],
                   reference: Mapping[str, Any] | None) -> dict[str, Any]:
    """``metrics``: every figure of ``reference`` (what the entry claims; for a withheld split
    what ``scores.json`` stores, or ``None`` at submission) equals the one recomputed by the
    task's metric suite under ``claimed``'s settings; returns the recomputed figures."""
    ece_bins = claimed.get("ece_bins", ECE_BINS)
    if isinstance(ece_bins, bool) or not isinstance(ece_bins, int) or ece_bins < 1:
        raise SubmissionError(run_dir, "metrics", f"metrics.{split}.ece_bins = {ece_bins!r} "
                              "is not a positive integer")
    recomputed = evaluate_task(task, y_true, preds.probs, bootstrap=boot["resamples"],
                               seed=boot["seed"], ci=float(boot["level"]), ece_bins=ece_bins,
                               values=preds.values, true_values=true_values)
    diff = None if reference is None else first_difference(reference, recomputed, f"metrics.{split}")
    if diff:
        where, a, b = diff
        who = "the entry claims" if reference is claimed else "scores.json stores"
        raise SubmissionError(run_dir, "metrics",
                              f"{where}: {who} {a!r}, recomputed from {preds.path.name} "
                              f"and the dataset's labels it is {b!r}")
    return recomputed


def first_difference(claimed: Any, recomputed: Any, path: str = "",
                     tol: float = METRIC_TOLERANCE) -> tuple[str, Any, Any] | None:
    """The first place two JSON-like values differ, as (path, claimed, recomputed), or None.

    Dicts must have the same keys, lists the same length; numbers are equal within
    ``tol`` (absolute or relative), booleans, strings and ``None`` exactly.
    """
    if isinstance(recomputed, Mapping):
        return _first_difference_mapping(claimed, recomputed, path, tol)
    if isinstance(recomputed, (list, tuple)):
        if not isinstance(claimed, (list, tuple)) or len(claimed) != len(recomputed):
            return path, claimed, list(recomputed)
        for i, (a, b) in enumerate(zip(claimed, recomputed)):
            diff = first_difference(a, b, f"{path}[{i}]", tol)
            if diff:
                return diff
        return None
    if recomputed is None or isinstance(recomputed, (bool, str)) or isinstance(claimed, bool):
        return None if (type(claimed) is type(recomputed) and claimed == recomputed) else (
            path, claimed, recomputed)
    if isinstance(recomputed, (int, float)) and isinstance(claimed, (int, float)):
        a, b = float(claimed), float(recomputed)
        if math.isfinite(a) and math.isclose(a, b, rel_tol=tol, abs_tol=tol):
            return None
    return path, claimed, recomputed


def _first_difference_mapping(claimed: Any, recomputed: Mapping, path: str,
                              tol: float) -> tuple[str, Any, Any] | None:
    if not isinstance(claimed, Mapping):
        return path, claimed, "an object"
    for key in recomputed:
        if key not in claimed:
            return f"{path}.{key}", "<missing>", recomputed[key]
    for key in claimed:
        if key not in recomputed:
            return f"{path}.{key}", claimed[key], "<not a figure of metrics.evaluate>"
    for key in recomputed:
        diff = first_difference(claimed[key], recomputed[key], f"{path}.{key}", tol)
        if diff:
            return diff
    return None
