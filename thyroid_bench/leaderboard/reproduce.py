"""Reproduction of harness entries, and the record that says an entry was reproduced.

The leaderboard re-scores every entry from its predictions; that proves the figures follow
from the predictions, not that the predictions came from the model, seed and protocol the
entry claims. A reproduction checks that too, from the run folder the entry came from (its
``model.safetensors`` and ``config.json``; checkpoints stay out of the leaderboard and out of
git, the entry stores their SHA-256):

- **by evaluation** (:func:`reproduce_run`, seconds): the harness's own evaluation-only path
  (``thyroid-bench run --eval-only --checkpoint``) re-predicts every case of the task's
  evaluation splits from the checkpoint, with the entry's threads, device and accelerator
  settings, into a temporary folder; the predictions must cover the same cases, with the same
  argmax, every probability within :data:`~thyroid_bench.leaderboard.rules.REPRODUCTION_TOLERANCE`
  of the stored one. The checkpoint must have the entry's ``checkpoint_sha256`` where the
  entry records one (entries written before it existed do not: the record pins it then).
- **by retraining** (``retrain=True``, minutes on a CPU for ``quick``): the run is trained
  again with the entry's seed, protocol and overrides, threads, device and accelerator
  settings; the predictions files must be byte-identical (same SHA-256) to the stored ones.

Checkpoints are read as safetensors only (the harness's loader, never a pickle), and only
models the package resolves without running a file's code are re-run (registered names,
``timm:<name>``, installed entry points). The run folder may be on the Hugging Face Hub
(:mod:`thyroid_bench.leaderboard.run_location`).

A passed reproduction is stored beside the entry as ``<entry folder>/reproduced.json``
(:class:`ReproductionRecord`, written by ``submit --reproduce`` and ``leaderboard check
--write``): how, when, with which package version and device, the tolerance and the largest
difference per split, the SHA-256 of the entry file it attests and of the checkpoint.
Every load re-checks it (:func:`check_record`): a record that is not strict, bounded JSON of
this schema, or whose ``entry_sha256`` is not the entry's own, fails the entry like any other
stored-entry problem. :func:`row_mark` says what the page shows for the entry.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Literal

import numpy as np
from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, model_validator

from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.bounds import Label, Name, loads_strict
from thyroid_bench.errors import DatasetError, PredictionsError, ThyroidBenchError, validation_problems
from thyroid_bench.evaluation.entry import Entry
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.errors import LeaderboardError, ReproductionError, SubmissionError
from thyroid_bench.leaderboard.rules import REPRODUCTION_TOLERANCE
from thyroid_bench.leaderboard.store import StoredEntry
from thyroid_bench.tasks import get_task

if TYPE_CHECKING:
    from thyroid_bench.evaluation.predictions import Predictions
    from thyroid_bench.leaderboard.checks import CheckedRun

__all__ = ["RECORD_FILE", "MARKS", "NOT_REPRODUCED", "EXTERNAL", "ReproductionRecord", "read_record",
           "check_record", "write_record", "row_mark", "RunConfig", "read_run_config",
           "reproduce_run", "reproduce_checked", "split_difference"]

#: The record of a passed reproduction, beside the entry's ``entry.json``.
RECORD_FILE = "reproduced.json"
#: A record larger than this is refused unread (one is about 600 bytes).
MAX_RECORD_BYTES = 64 * 1024
#: What the page shows for an entry (:func:`row_mark`): by how it was reproduced, ...
MARKS = {"retraining": "reproduced by retraining", "evaluation": "reproduced by evaluation"}
#: ... for a harness entry without a record, ...
NOT_REPRODUCED = "not reproduced"
#: ... and for an entry made from predictions made elsewhere (origin external).
EXTERNAL = "external predictions"
#: A run's config.json larger than this is not one the harness wrote.
MAX_CONFIG_BYTES = 16 * 1024 * 1024

_SHA256 = r"^[0-9a-f]{64}$"
_Diff = Annotated[float, Field(ge=0, le=1, allow_inf_nan=False)]


def _utc(value: datetime) -> datetime:
    return value.astimezone(timezone.utc)


# --------------------------------------------------------------------------- the record
class ReproductionRecord(BaseModel):
    """``reproduced.json``: one passed reproduction of the entry beside it."""

    model_config = ConfigDict(extra="forbid", strict=True)

    schema_version: Literal[1] = 1
    by: Literal["evaluation", "retraining"] = Field(
        description="'evaluation': re-predicted from the checkpoint within the tolerance; "
        "'retraining': trained again, predictions files byte-identical")
    entry_sha256: str = Field(pattern=_SHA256, description="SHA-256 of the entry.json it attests")
    checkpoint_sha256: str = Field(pattern=_SHA256, description="SHA-256 of the model.safetensors "
                                   "evaluated; by retraining, the entry's (or, when it records "
                                   "none, the one retraining wrote)")
    date: Annotated[AwareDatetime, AfterValidator(_utc)] = Field(
        strict=False, description="UTC time the reproduction finished")
    thyroid_bench: Label = Field(description="package version that reproduced it")
    torch: Label
    device_name: Label = Field(description="CPU model or GPU name it ran on")
    num_threads: int = Field(ge=1, le=4096)
    tolerance: float = Field(ge=0, le=REPRODUCTION_TOLERANCE, allow_inf_nan=False,
                             description="largest absolute difference allowed per probability")
    max_abs_diff: dict[Name, _Diff] = Field(min_length=1, max_length=8, description="per "
                                            "evaluation split, the largest absolute difference "
                                            "of a probability from the stored one")

    @model_validator(mode="after")
    def _within_tolerance(self) -> ReproductionRecord:
        worst = max(self.max_abs_diff.values())
        if worst > self.tolerance:
            raise ValueError(f"max_abs_diff {worst:g} exceeds the tolerance {self.tolerance:g}: "
                             "not a passed reproduction")
        if self.by == "retraining" and (worst != 0 or self.tolerance != 0):
            raise ValueError("a reproduction by retraining has byte-identical predictions "
                             f"(max_abs_diff 0, tolerance 0), not {worst:g} within {self.tolerance:g}")
        return self


def read_record(stored: StoredEntry) -> ReproductionRecord | None:
    """The entry's ``reproduced.json`` checked against the entry (``None`` when there is
    none); :class:`LeaderboardError` naming the file and what to do when it is unreadable,
    invalid, or attests another entry file or checkpoint."""
    path = stored.folder / RECORD_FILE
    if not path.exists():
        return None
    redo = ("remove it, or reproduce the entry again with `thyroid-bench leaderboard check "
            "--runs DIR --write`")
    try:
        if path.stat().st_size > MAX_RECORD_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes, more than a record may hold")
        record = ReproductionRecord.model_validate(loads_strict(path.read_text(encoding="utf-8")))
    except ValidationError as exc:
        raise LeaderboardError(f"{path}: not a valid reproduction record: "
                               f"{validation_problems(exc, 5)}; {redo}") from None
    except (OSError, ValueError) as exc:  # StrictJSONError and UnicodeDecodeError are ValueErrors
        raise LeaderboardError(f"{path}: unreadable ({exc}); {redo}") from None
    problem = _record_problem(stored, record)
    if problem:
        raise LeaderboardError(f"{path}: {problem}; {redo}")
    return record


def _record_problem(stored: StoredEntry, record: ReproductionRecord) -> str | None:
    """Why a well-formed record does not attest this entry, or ``None``."""
    entry = stored.entry
    if entry.origin == "external":
        return "an entry of external predictions cannot have been reproduced by the harness"
    sha = sha256_file(stored.folder / "entry.json")
    if record.entry_sha256 != sha:
        return (f"attests entry file {record.entry_sha256[:12]}..., not this one "
                f"({sha[:12]}...): a record copied from another entry")
    if entry.checkpoint_sha256 and record.checkpoint_sha256 != entry.checkpoint_sha256:
        return (f"attests checkpoint {record.checkpoint_sha256[:12]}..., the entry's is "
                f"{entry.checkpoint_sha256[:12]}...")
    splits = sorted(get_task(entry.task).eval_splits)
    if sorted(record.max_abs_diff) != splits:
        return f"max_abs_diff covers {sorted(record.max_abs_diff)}, the task's splits are {splits}"
    return None


def check_record(stored: StoredEntry) -> None:
    """The re-check every load runs: a stored record, if any, is valid and attests this entry
    (:class:`LeaderboardError` otherwise)."""
    read_record(stored)


def write_record(folder: Path, record: ReproductionRecord) -> Path:
    """Write ``record`` as ``<folder>/reproduced.json``, atomically."""
    text = json.dumps(record.model_dump(mode="json"), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(folder / RECORD_FILE, text)


def row_mark(stored: StoredEntry) -> str:
    """What the page shows for a stored entry: ``"reproduced by retraining"``, ``"reproduced
    by evaluation"``, ``"not reproduced"`` (no record), or ``"external predictions"`` (origin
    external). An invalid record raises :class:`LeaderboardError` (every load has refused
    the entry already)."""
    if stored.entry.origin == "external":
        return EXTERNAL
    record = read_record(stored)
    return NOT_REPRODUCED if record is None else MARKS[record.by]


# --------------------------------------------------------------------------- the run's config.json
class _Named(BaseModel):
    model_config = ConfigDict(extra="ignore")

    name: Name


class _ProtocolConfig(_Named):
    version: int = Field(default=1, ge=1)  # absent in configs written before versions


class _AccelConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    amp: Literal["bfloat16", "float16"] | None = None
    channels_last: bool = False
    compile: bool = False


class _EnvironmentConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    device: Literal["cpu", "cuda"]
    num_threads: int = Field(ge=1, le=4096)


class _DatasetConfig(BaseModel):
    model_config = ConfigDict(extra="ignore")

    fingerprint: str = Field(pattern=_SHA256)


class RunConfig(BaseModel):
    """What a reproduction reads from a run's ``config.json`` (the harness writes much more)."""

    model_config = ConfigDict(extra="ignore")

    model: _Named
    protocol: _ProtocolConfig
    overrides: dict[Name, bool | int | float | str] = Field(default_factory=dict, max_length=64)
    seed: int = Field(ge=0)
    eval_only: bool = False
    world_size: int = Field(default=1, ge=1)
    accel: _AccelConfig = Field(default_factory=_AccelConfig)
    environment: _EnvironmentConfig
    dataset: _DatasetConfig

    def run_settings(self) -> dict[str, Any]:
        """The keyword arguments of :func:`thyroid_bench.harness.run.run` that set how the
        device computes: device, threads and accelerator settings as the run used them."""
        amp = {None: "off", "bfloat16": "bf16", "float16": "fp16"}[self.accel.amp]
        return {"device": self.environment.device, "num_threads": self.environment.num_threads,
                "amp": amp, "channels_last": "on" if self.accel.channels_last else "off",
                "compile": self.accel.compile}


def read_run_config(folder: Path) -> RunConfig:
    """A run folder's ``config.json`` (:class:`ReproductionError` naming it otherwise)."""
    path = folder / "config.json"
    try:
        if path.stat().st_size > MAX_CONFIG_BYTES:
            raise ValueError(f"{path.stat().st_size} bytes, not a config the harness writes")
        return RunConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise ReproductionError(f"{folder}: no config.json; give the run folder `thyroid-bench "
                                "run` wrote (it holds config.json and model.safetensors)") from None
    except ValidationError as exc:
        raise ReproductionError(f"{path}: not a harness run configuration: "
                                f"{validation_problems(exc, 5)}") from None
    except RecursionError:
        raise ReproductionError(f"{path}: nested too deeply to be a config the harness writes") from None
    except (OSError, ValueError) as exc:
        raise ReproductionError(f"{path}: unreadable ({exc})") from None


# --------------------------------------------------------------------------- reproduction
@dataclass(frozen=True)
class _Subject:
    """What is reproduced: the entry, its file's SHA-256, its stored predictions files, and the
    checkpoint's SHA-256 it must have (the entry's; entries made before the harness recorded it
    have none, and a stored record never stands in for it: a record is not signed)."""

    entry: Entry
    entry_sha256: str
    predictions: dict[str, Path]
    checkpoint_sha256: str | None = None
    pinned_by: str = "the entry records"


def _subject(source: StoredEntry | CheckedRun) -> _Subject:
    entry = source.entry
    if isinstance(source, StoredEntry):
        return _Subject(entry, sha256_file(source.folder / "entry.json"),
                        {s: source.predictions_path(s) for s in source.task.eval_splits},
                        entry.checkpoint_sha256)
    task = get_task(entry.task)
    return _Subject(entry, source.entry_sha256,
                    {s: source.run_dir / entry.predictions[s].path for s in task.eval_splits},
                    entry.checkpoint_sha256)


def reproduce_run(
    source: StoredEntry | CheckedRun,
    run_dir: str | os.PathLike,
    *,
    retrain: bool = False,
    home: Path | None = None,
    tolerance: float = REPRODUCTION_TOLERANCE,
    log: Callable[[str], None] | None = None,
) -> ReproductionRecord:
    """Reproduce a stored entry (or a checked run about to be stored) from ``run_dir``, the
    run folder it came from (a local folder or ``hf://...``, see
    :mod:`~thyroid_bench.leaderboard.run_location`), by evaluation or, with ``retrain``, by
    retraining (see the module doc), on the entry's dataset version in ``home``.

    Returns the record to store; raises :class:`ReproductionError` saying why not (no run
    folder files, another checkpoint, a run of another configuration, the first split and
    case whose predictions differ). ``log`` receives progress lines.
    """
    from thyroid_bench.leaderboard.run_location import fetch_run_folder

    if not 0 <= tolerance <= REPRODUCTION_TOLERANCE:
        raise ReproductionError(f"tolerance {tolerance:g}: a reproduction allows at most "
                                f"{REPRODUCTION_TOLERANCE:g} per probability")
    subject = _subject(source)
    _check_reproducible(subject.entry)
    say = log or (lambda msg: None)
    work = Path(tempfile.mkdtemp(prefix="thyroid-bench-reproduce-"))
    try:
        folder = fetch_run_folder(run_dir, work / "fetched", checkpoint=not retrain)
        config = read_run_config(folder)
        _check_config(subject.entry, config, folder, retrain)
        dataset = _dataset_folder(subject.entry, home)
        t0 = time.perf_counter()
        if retrain:
            say(f"retraining {subject.entry.model.name} seed {subject.entry.seed} "
                f"({config.protocol.name}) from {run_dir}")
            out = _harness(subject.entry, config, dataset, work / "run", checkpoint=None)
            diffs = _compare_bytes(subject, out)
            # the checkpoint's metadata holds the training time, so its bytes differ run to run
            checkpoint_sha = subject.checkpoint_sha256 or sha256_file(out / "model.safetensors")
        else:
            checkpoint_sha = _checked_checkpoint(subject, folder / "model.safetensors", str(run_dir))
            say(f"evaluating {subject.entry.model.name} seed {subject.entry.seed} from {run_dir}")
            out = _harness(subject.entry, config, dataset, work / "run",
                           checkpoint=folder / "model.safetensors")
            diffs = _compare(subject, out, tolerance)
        by = "retraining" if retrain else "evaluation"
        say(f"reproduced by {by} in {time.perf_counter() - t0:.0f} s: max |diff| "
            + ", ".join(f"{split} {d:.2g}" for split, d in diffs.items()))
        return _record(subject, out, by, checkpoint_sha, tolerance, diffs)
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _check_reproducible(entry: Entry) -> None:
    """Only harness entries of models resolved without running a file's code are re-run."""
    from thyroid_bench.models.resolve import list_models

    if entry.origin == "external" or entry.environment is None:
        raise ReproductionError("external predictions: made outside the harness, there is no "
                                "run to repeat")
    name = entry.model.name
    if not (name.startswith("timm:") or name in list_models()):
        raise ReproductionError(f"model {name!r} is not a registered name, timm:<name> or an "
                                "installed entry point (group thyroid_bench.models); the "
                                "leaderboard does not run a model's code from a file or module")


def _check_config(entry: Entry, config: RunConfig, folder: Path, retrain: bool) -> None:
    """The run folder's config.json is of the entry's run: model, protocol, overrides, seed,
    dataset; a retrained run is one the harness can repeat alone."""
    from thyroid_bench.harness.protocols import version_of, versioned_name

    mine = {"model": entry.model.name,
            "protocol": versioned_name(entry.protocol.name, version_of(entry.protocol.parameters)),
            "overrides": dict(entry.protocol.overrides), "seed": entry.seed,
            "dataset fingerprint": entry.dataset.fingerprint}
    theirs = {"model": config.model.name,
              "protocol": versioned_name(config.protocol.name, config.protocol.version),
              "overrides": config.overrides, "seed": config.seed,
              "dataset fingerprint": config.dataset.fingerprint}
    for key, value in mine.items():
        if theirs[key] != value:
            raise ReproductionError(f"{folder / 'config.json'}: {key} {theirs[key]!r}, the entry's "
                                    f"is {value!r}: not the run folder of this entry")
    if config.environment.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ReproductionError("the entry ran on CUDA and no CUDA device is available here; "
                                    "reproduce it on a machine with one")
    if retrain:
        _check_retrainable(entry, config)


def _check_retrainable(entry: Entry, config: RunConfig) -> None:
    problem = None
    if config.eval_only:
        problem = "it is an evaluation-only run (nothing was trained)"
    elif config.world_size > 1:
        problem = f"it trained in {config.world_size} processes, which is not bit-reproducible"
    elif set(config.overrides) - {"epochs", "batch_size"}:
        problem = f"its overrides {sorted(config.overrides)} are not all harness options"
    elif entry.pretrained.startswith("file:"):
        problem = f"it started from a local weights file ({entry.pretrained})"
    if problem:
        raise ReproductionError(f"cannot retrain: {problem}; reproduce it by evaluation")


def _dataset_folder(entry: Entry, home: Path | None) -> Path:
    """The entry's dataset version in ``home``, with the entry's fingerprint."""
    from thyroid_bench.data.format import resolve_dataset
    from thyroid_bench.data.manifest import read_manifest

    spec = entry.dataset.spec
    try:
        folder = resolve_dataset(spec, home=home)
        fingerprint = read_manifest(folder).fingerprint
    except DatasetError as exc:
        raise ReproductionError(f"dataset {spec} is needed and not usable here ({exc}); prepare it "
                                "(`thyroid-bench prepare`) or pass --home") from None
    if fingerprint != entry.dataset.fingerprint:
        raise ReproductionError(f"the local {spec} ({folder}) has fingerprint {fingerprint[:12]}..., "
                                f"the entry's is {entry.dataset.fingerprint[:12]}...")
    return folder


def _checked_checkpoint(subject: _Subject, path: Path, where: str) -> str:
    """The checkpoint's SHA-256, which must be the one the subject pins, if any."""
    if not path.is_file():
        raise ReproductionError(f"{where}: no model.safetensors (the checkpoint to evaluate)")
    sha = sha256_file(path)
    if subject.checkpoint_sha256 and sha != subject.checkpoint_sha256:
        raise ReproductionError(f"checkpoint hash differs: {where} model.safetensors has SHA-256 "
                                f"{sha[:12]}..., {subject.pinned_by} {subject.checkpoint_sha256[:12]}... "
                                "(another run's checkpoint)")
    return sha


def _harness(entry: Entry, config: RunConfig, dataset: Path, out: Path, *,
             checkpoint: Path | None) -> Path:
    """The harness's own path: evaluation only from ``checkpoint``, or training again."""
    from thyroid_bench.harness.protocols import versioned_name
    from thyroid_bench.harness.run import run

    common = dict(dataset=dataset, out=out, bootstrap=0, progress=False, **config.run_settings())
    try:
        if checkpoint is not None:
            run(entry.model.name, checkpoint=checkpoint, eval_only=True, **common)
        else:
            run(entry.model.name, protocol=versioned_name(config.protocol.name, config.protocol.version),
                seed=entry.seed,
                epochs=config.overrides.get("epochs"), batch_size=config.overrides.get("batch_size"),
                require_pretrained=entry.pretrained != "none", **common)
    except ThyroidBenchError as exc:
        raise ReproductionError(f"the harness could not re-run it: {exc}") from None
    return out


def _compare(subject: _Subject, out: Path, tolerance: float) -> dict[str, float]:
    """Per split, the largest difference of the re-predicted probabilities from the stored
    ones (:class:`ReproductionError` at the first case beyond ``tolerance``)."""
    from thyroid_bench.evaluation.predictions import read_predictions

    task = get_task(subject.entry.task)
    diffs = {}
    for split, stored_path in subject.predictions.items():
        try:
            stored = read_predictions(stored_path, task)
            new = read_predictions(out / "predictions" / f"{split}.csv", task)
        except PredictionsError as exc:
            raise ReproductionError(str(exc)) from None
        diffs[split] = split_difference(split, stored, new, tolerance, task.class_names)
    return diffs


def split_difference(split: str, stored: Predictions, new: Predictions, tolerance: float,
                     class_names: tuple[str, ...] | list[str]) -> float:
    """The largest absolute difference of ``new`` from ``stored`` (one split's predictions),
    which must hold the same cases with the same argmax and every probability and regression
    value within ``tolerance`` (:class:`ReproductionError` naming the first case that does not)."""
    only = sorted(set(stored.case_ids) ^ set(new.case_ids))
    if only:
        side = "the stored file" if only[0] in set(stored.case_ids) else "the re-predicted file"
        raise ReproductionError(f"predictions differ at split {split}: case {only[0]} is only in "
                                f"{side} ({len(only)} case(s) not in both)")
    new = new.align(stored.case_ids)
    delta = np.abs(new.probs - stored.probs)
    worst = float(delta.max(initial=0.0))
    argmax_new, argmax_old = new.probs.argmax(axis=1), stored.probs.argmax(axis=1)
    bad = np.flatnonzero((delta.max(axis=1) > tolerance) | (argmax_new != argmax_old))
    if bad.size:
        i = int(bad[0])
        j = int(delta[i].argmax())
        raise ReproductionError(
            f"predictions differ at split {split}, case {stored.case_ids[i]}: prob_{class_names[j]} "
            f"{new.probs[i, j]:.6g}, stored {stored.probs[i, j]:.6g} (|diff| {delta[i, j]:.3g}, "
            f"tolerance {tolerance:g}); class {class_names[argmax_new[i]]}, stored "
            f"{class_names[argmax_old[i]]}; {bad.size} of {len(delta)} cases differ, max |diff| "
            f"{worst:.3g}")
    return max(worst, _values_difference(split, stored, new, tolerance))


def _values_difference(split: str, stored: Predictions, new: Predictions, tolerance: float) -> float:
    """The same, for a regression column either file has (blank in both, or within tolerance)."""
    worst = 0.0
    for column in sorted(set(stored.values) | set(new.values)):
        n = len(stored.case_ids)
        a = np.asarray(stored.values.get(column, np.full(n, np.nan)))
        b = np.asarray(new.values.get(column, np.full(n, np.nan)))
        delta = np.where(np.isnan(a) & np.isnan(b), 0.0, np.abs(a - b))
        bad = np.flatnonzero(~(delta <= tolerance))  # NaN against a value is a difference
        if bad.size:
            i = int(bad[0])
            raise ReproductionError(f"predictions differ at split {split}, case "
                                    f"{stored.case_ids[i]}: {column} {b[i]:.6g}, stored {a[i]:.6g}")
        worst = max(worst, float(delta.max(initial=0.0)))
    return worst


def _compare_bytes(subject: _Subject, out: Path) -> dict[str, float]:
    """Retrained predictions files must be the stored files byte for byte; where one is not,
    the first case that differs is named."""
    diffs = {}
    for split, stored_path in subject.predictions.items():
        new_path = out / "predictions" / f"{split}.csv"
        if sha256_file(new_path) != subject.entry.predictions[split].sha256:
            try:
                _compare(_Subject(subject.entry, subject.entry_sha256, {split: stored_path}), out, 0.0)
            except ReproductionError as exc:
                raise ReproductionError(f"retrained predictions are not byte-identical: {exc}") from None
            raise ReproductionError(f"retrained predictions/{split}.csv is not byte-identical to the "
                                    "stored one, though every probability is equal (its label "
                                    "column or formatting differs)")
        diffs[split] = 0.0
    return diffs


def _record(subject: _Subject, out: Path, by: str, checkpoint_sha: str, tolerance: float,
            diffs: Mapping[str, float]) -> ReproductionRecord:
    """The record of a passed reproduction, with the environment the harness recorded for it."""
    from thyroid_bench.evaluation.entry import read_entry

    env = read_entry(out / "entry.json").environment
    assert env is not None  # the harness records its environment
    return ReproductionRecord(
        by=by, entry_sha256=subject.entry_sha256, checkpoint_sha256=checkpoint_sha,
        date=datetime.now(timezone.utc).replace(microsecond=0), thyroid_bench=env.thyroid_bench,
        torch=env.torch, device_name=env.device_name, num_threads=env.num_threads,
        tolerance=0.0 if by == "retraining" else tolerance, max_abs_diff=dict(diffs))


def reproduce_checked(runs: Sequence[CheckedRun], *, retrain: bool = False, home: Path | None = None,
                      log: Callable[[str], None] | None = None) -> dict[str, ReproductionRecord]:
    """``submit --reproduce``: each checked run reproduced from its own run folder; the records
    by entry id (:class:`~thyroid_bench.leaderboard.errors.SubmissionError`, check
    ``reproduction``, at the first run that is not reproduced)."""
    records = {}
    for c in runs:
        try:
            records[c.entry_id] = reproduce_run(c, c.run_dir, retrain=retrain, home=home, log=log)
        except ReproductionError as exc:
            raise SubmissionError(c.run_dir, "reproduction", str(exc)) from None
    return records
