"""Entries from predictions made anywhere: ``thyroid-bench entry new`` (:func:`new_entry`).

A group that trains with MONAI, Keras or a vendor's product, or a person who reads the scans,
hands in one predictions CSV per evaluation split of the dataset's task (``<split>.csv`` in one
folder). :func:`new_entry` turns them into a run folder that ``thyroid-bench submit`` accepts
unchanged::

    <out>/entry.json               origin "external", protocol "external" (no parameters),
                                   model source "external", no environment
    <out>/predictions/<split>.csv  the predictions, rewritten in the package's format

Two forms of predictions CSV are read:

- probabilities, the format ``thyroid-bench score`` reads
  (:func:`thyroid_bench.evaluation.predictions.read_predictions`): ``case_id``, one
  ``prob_<class>`` column per class of the task, optionally the task's regression column
  (``residual-tissue``: ``uptake_pct``, blank where not predicted) and a ``label`` column
  (checked against the dataset, then dropped);
- a class per case, for a reader or a product that gives no probabilities: ``case_id`` and
  ``prediction`` (a class name, the paper's code or the class index, as a labels file spells
  it), optionally the regression column. Each prediction becomes a one-hot probability row,
  so the figures that rank by probability (AUC, ECE, Brier) are those of a hard call.

Every file must cover exactly the split's cases. The metrics are computed exactly as the
harness computes them (:func:`thyroid_bench.evaluation.suites.evaluate_task` on the file as
written, 1000 bootstrap resamples, seed 0, in the order ``submit`` recomputes them), so the
entry passes every check of :func:`thyroid_bench.leaderboard.checks.check_run`. On a dataset
version whose labels of some splits are withheld (:mod:`thyroid_bench.data.private`) those
splits are predicted, not scored: their metrics are the withheld marker, and the organisers
score them at submission (``submit --private-labels``), as for a run of the harness. Nothing is
written unless everything is valid: the folder is assembled in a temporary folder beside
``out`` and renamed into place; an existing ``out`` is refused.
"""

from __future__ import annotations

import csv
import io
import os
import shutil
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Literal

from pydantic import TypeAdapter, ValidationError

from thyroid_bench.atomic import check_output_folder, make_temp_dir
from thyroid_bench.bounds import URL, Label, Name
from thyroid_bench.errors import PredictionsError, ThyroidBenchError
from thyroid_bench.evaluation.entry import Entry, PredictionsFile, ProtocolRecord, write_entry
from thyroid_bench.evaluation.predictions import (Predictions, read_predictions, task_of_header,
                                                  write_predictions)
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.evaluation.withheld import withheld_metrics
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard.checks import _eval_labels, split_values
from thyroid_bench.leaderboard.rules import EXTERNAL_PROTOCOL, MIN_BOOTSTRAP_RESAMPLES
from thyroid_bench.leaderboard.store import Truth
from thyroid_bench.models.registry import ModelMeta
from thyroid_bench.tasks import Task, TaskError

__all__ = ["EXTERNAL_SOURCE", "CLASS_COLUMN", "ExternalModel", "new_entry", "read_external_predictions"]

#: ``ModelMeta.source`` of a model whose predictions were made outside the harness.
EXTERNAL_SOURCE = "external"
#: The column of a predictions CSV that gives a class per case instead of probabilities.
CLASS_COLUMN = "prediction"


@dataclass(frozen=True)
class ExternalModel:
    """What the submitter says about the model (or reader) that made the predictions.

    ``parameters`` and ``input_size`` are required for a model; a human reader has no
    parameters (0) and sees the images as stored (default: the largest matrix of the
    evaluation splits). ``pretrained`` names the weights a model started from ("not given"
    if unsaid; "none" for a reader).
    """

    name: str
    kind: Literal["model", "human reader"] = "model"
    parameters: int | None = None
    input_size: int | None = None
    architecture: str | None = None
    pretrained: str | None = None
    training_data: str | None = None
    code_url: str | None = None
    weights_url: str | None = None
    licence: str | None = None
    notes: str | None = None


_BOUND = {"name": TypeAdapter(Name), "label": TypeAdapter(Label), "url": TypeAdapter(URL)}


def _bounded(option: str, value: str | None, kind: str) -> str | None:
    """``value`` if it is within the bounds of an entry's field of that kind; a
    :class:`ThyroidBenchError` naming the option otherwise."""
    if value is None:
        return None
    try:
        return _BOUND[kind].validate_python(value)
    except ValidationError:
        rules = {"name": "a name: ASCII letters, digits, . _ - : / @ + and space, at most 128 "
                         "characters, not starting with a space",
                 "label": "one line of at most 256 printable characters",
                 "url": "an http:// or https:// address of at most 256 characters without "
                        "spaces, quotes or angle brackets"}
        raise ThyroidBenchError(f"{option} {ascii(value[:80])}: not {rules[kind]}") from None


def _checked_model(model: ExternalModel) -> ExternalModel:
    """``model`` with every option checked against the entry's bounds (before any data is read)."""
    if model.kind not in ("model", "human reader"):
        raise ThyroidBenchError(f"--kind {model.kind!r}: expected 'model' or 'human reader'")
    if model.kind == "model" and (model.parameters is None or model.input_size is None):
        raise ThyroidBenchError("--parameters N and --input-size N are required for --kind model "
                                "(the model's parameter count and the square input size it was run at)")
    if model.parameters is not None and not 0 <= model.parameters <= 10**13:
        raise ThyroidBenchError(f"--parameters {model.parameters}: expected a count from 0 to 10**13")
    if model.input_size is not None and not 0 < model.input_size <= 16384:
        raise ThyroidBenchError(f"--input-size {model.input_size}: expected pixels from 1 to 16384")
    return replace(
        model, name=_bounded("--model-name", model.name, "name"),
        architecture=_bounded("--architecture", model.architecture, "label"),
        pretrained=_bounded("--pretrained-weights", model.pretrained, "label"),
        training_data=_bounded("--training-data", model.training_data, "label"),
        code_url=_bounded("--code-url", model.code_url, "url"),
        weights_url=_bounded("--weights-url", model.weights_url, "url"),
        licence=_bounded("--licence", model.licence, "label"),
        notes=_bounded("--notes", model.notes, "label"))


def _model_meta(model: ExternalModel, task: Task, native_size: int) -> tuple[ModelMeta, str]:
    """The entry's model metadata and pretrained weights, from a :func:`_checked_model`."""
    reader = model.kind == "human reader"
    size = native_size if model.input_size is None else model.input_size
    views = len(task.image_columns)
    meta = ModelMeta(
        name=model.name, source=EXTERNAL_SOURCE, kind=model.kind,
        architecture=model.architecture or ("human reader" if reader else "not given"),
        parameters=model.parameters or 0, input_size=size, min_input_size=size, in_chans=views,
        channel_policy="single" if views == 1 else "views", licence=model.licence,
        code_url=model.code_url, weights_url=model.weights_url)
    return meta, model.pretrained or ("none" if reader else "not given")


# --------------------------------------------------------------------------- reading predictions
def _class_rows(path: Path, task: Task) -> tuple[list[str], list[list[str]]]:
    """Header and rows of a predictions CSV (UTF-8, optional byte-order mark)."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = list(csv.reader(f))
    except UnicodeDecodeError as exc:
        raise PredictionsError(f"{path}: not UTF-8 text ({exc}); save it as a UTF-8 CSV") from None
    except csv.Error as exc:
        raise PredictionsError(f"{path}: not a readable CSV ({exc})") from None
    if not rows:
        raise PredictionsError(f"{path}: empty file; expected a header line case_id,"
                               f"{CLASS_COLUMN} or case_id,{','.join(task.prob_columns)}")
    return [h.strip() for h in rows[0]], rows[1:]


def _one_hot_csv(path: Path, task: Task, header: list[str], rows: list[list[str]]) -> str:
    """The CSV with its ``prediction`` column replaced by one-hot ``prob_<class>`` columns
    (every other cell as it was, so :func:`read_predictions` checks them and names the same
    rows); :class:`PredictionsError` listing the predictions that are not a class."""
    j = header.index(CLASS_COLUMN)
    problems = []
    out = io.StringIO()
    w = csv.writer(out, lineterminator="\n")
    w.writerow(header[:j] + list(task.prob_columns) + header[j + 1:])
    for r, fields in enumerate(rows, start=1):
        if not any(c.strip() for c in fields):
            w.writerow(fields)  # a blank line: read_predictions says what it says of any file
            continue
        if len(fields) != len(header):
            problems.append(f"row {r} (line {r + 1}): {len(fields)} fields, the header has "
                            f"{len(header)}")
            continue
        text = fields[j].strip()
        try:
            k = task.parse_label(text)
        except ValueError:
            problems.append(f"row {r} (line {r + 1}): {CLASS_COLUMN} {text!r} is not a class of "
                            f"task {task.name} (expected one of {task.accepted_labels()})")
            continue
        w.writerow(fields[:j] + ["1" if i == k else "0" for i in range(task.num_classes)] + fields[j + 1:])
    if problems:
        more = f"\n  ... and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise PredictionsError(f"{path}: rejected ({len(problems)} problem(s)):\n  "
                               + "\n  ".join(problems[:20]) + more)
    return out.getvalue()


def _check_task_of(path: Path, task: Task, dataset: str) -> None:
    """A file whose probability columns are another task's: say so, not just which columns."""
    try:
        other = task_of_header(path)
    except (TaskError, PredictionsError):
        return
    if other.name != task.name:
        raise PredictionsError(
            f"{path}: its columns {', '.join(other.prob_columns)} are the classes of task "
            f"{other.name}, but dataset {dataset} is for task {task.name}; give predictions for "
            f"{task.name} ({', '.join(task.prob_columns)}), or name a {other.name} dataset")


def read_external_predictions(path: str | os.PathLike, task: Task, case_ids: list[str], *,
                              scratch: Path, dataset: str = "the dataset") -> Predictions:
    """A predictions CSV of either form (see the module doc), validated against the split's
    ``case_ids`` by :func:`read_predictions`; a class-per-case file is converted to one-hot
    probabilities in ``scratch`` first (errors still name ``path``)."""
    path = Path(path)
    if not path.is_file():
        raise PredictionsError(f"{path}: no such predictions file")
    header, rows = _class_rows(path, task)
    if CLASS_COLUMN not in header or any(h.startswith("prob_") for h in header):
        if CLASS_COLUMN in header:
            raise PredictionsError(f"{path}: header (line 1) has both prob_<class> columns and a "
                                   f"{CLASS_COLUMN} column; give one of them")
        _check_task_of(path, task, dataset)
        return read_predictions(path, task, expected_case_ids=case_ids)
    converted = scratch / f"{path.stem}.one-hot.csv"
    converted.write_text(_one_hot_csv(path, task, header, rows), encoding="utf-8")
    try:
        preds = read_predictions(converted, task, expected_case_ids=case_ids)
    except PredictionsError as exc:
        raise PredictionsError(str(exc).replace(str(converted), str(path))) from None
    finally:
        converted.unlink()
    return Predictions(preds.case_ids, preds.probs, preds.labels, path, preds.values)


# --------------------------------------------------------------------------- the run folder
def _dataset(dataset: str, home: Path | None) -> tuple[Truth, int, tuple[str, ...]]:
    """The dataset version named, verified: its evaluation labels, the largest image matrix of
    its evaluation splits (what a reader sees), and the splits whose labels are withheld."""
    from thyroid_bench.data.format import read_split, resolve_dataset
    from thyroid_bench.data.verify import verify_or_raise

    folder = resolve_dataset(dataset, home=home)
    manifest = verify_or_raise(folder, consequence="no entry was written",
                               what=f"dataset {dataset} ({folder})")
    task = manifest.get_task()
    labels, values = _eval_labels(folder, task)
    native = max(int(read_split(folder, split, columns=["matrix"])["matrix"].max())
                 for split in task.eval_splits)
    return Truth(manifest.dataset_ref(), task, labels, values), native, manifest.withheld_splits


def _prediction_files(folder: Path, task: Task) -> dict[str, Path]:
    """``<folder>/<split>.csv`` for every evaluation split of ``task``; all must be there."""
    if not folder.is_dir():
        raise ThyroidBenchError(f"--predictions {folder}: no such folder; give the folder holding "
                                f"{', '.join(f'{s}.csv' for s in task.eval_splits)}")
    files = {split: folder / f"{split}.csv" for split in task.eval_splits}
    missing = [str(p) for p in files.values() if not p.is_file()]
    if missing:
        raise PredictionsError(f"{', '.join(missing)}: no such predictions file; --predictions "
                               f"{folder} must hold one CSV per evaluation split of task "
                               f"{task.name}: {', '.join(p.name for p in files.values())}")
    return files


def _check_out(out: Path) -> Path:
    """``out`` does not exist yet (entries are never overwritten) and no file stands where one
    of its folders would be."""
    out = check_output_folder(out, "--out")
    if out.exists() or out.is_symlink():
        raise ThyroidBenchError(f"--out {out} already exists; an entry folder is never written "
                                "over: give a new folder")
    return out


def _write_split(tmp: Path, split: str, source: Path, truth: Truth, spec: str, bootstrap: int,
                 withheld: bool) -> tuple[dict, PredictionsFile]:
    """``predictions/<split>.csv`` in the package's format (cases in id order, the file's label
    column checked and dropped), then its metrics computed from the file as written, the way
    ``submit`` recomputes them; for a split whose labels are ``withheld``, the marker
    :func:`~thyroid_bench.evaluation.withheld.withheld_metrics` instead (the organisers score
    it at submission, as for a run of the harness)."""
    task, labels = truth.task, truth.labels[split]  # withheld: every case, with the sentinel
    preds = read_external_predictions(source, task, list(labels), scratch=tmp, dataset=spec)
    rel = f"predictions/{split}.csv"
    if withheld:
        aligned = preds.align(sorted(labels))
        write_predictions(tmp / rel, task, aligned.case_ids, aligned.probs,
                          values=dict(aligned.values) or None)
        return (withheld_metrics(len(aligned), bootstrap=bootstrap),
                PredictionsFile(path=rel, sha256=sha256_file(tmp / rel), rows=len(aligned)))
    aligned, _, mismatch = preds.against(labels)
    if mismatch.size:
        i = int(mismatch[0])
        raise PredictionsError(f"{source}: its label column disagrees with {spec} on "
                               f"{mismatch.size} case(s), first {aligned.case_ids[i]!r}; these "
                               f"are not predictions for {spec} split {split} (or drop the "
                               "label column)")
    write_predictions(tmp / rel, task, aligned.case_ids, aligned.probs, values=dict(aligned.values) or None)
    written, y_true, _ = read_predictions(tmp / rel, task, expected_case_ids=list(labels)).against(labels)
    metrics = evaluate_task(task, y_true, written.probs, bootstrap=bootstrap, seed=0,
                            values=written.values, true_values=split_values(truth, split, written))
    return metrics, PredictionsFile(path=rel, sha256=sha256_file(tmp / rel), rows=len(written))


def new_entry(
    predictions: str | os.PathLike,
    *,
    dataset: str,
    model: ExternalModel,
    out: str | os.PathLike,
    seed: int = 0,
    submitter: str | None = None,
    home: Path | None = None,
    bootstrap: int = MIN_BOOTSTRAP_RESAMPLES,
) -> Entry:
    """Turn the predictions folder ``predictions`` (``<split>.csv`` per evaluation split of the
    dataset's task) into the run folder ``out`` (see the module doc) and return its entry.

    ``dataset`` is ``NAME[@VERSION]`` (or a folder) in the dataset home ``home``; it must
    verify. ``submitter`` defaults to ``$THYROID_BENCH_SUBMITTER``, else "anonymous".
    Bad input raises a :class:`ThyroidBenchError` subclass naming the file or option, and
    nothing is written.
    """
    out = _check_out(Path(out))
    model = _checked_model(model)
    if not 0 <= seed <= 2**32 - 1:
        raise ThyroidBenchError(f"--seed {seed}: expected an integer from 0 to 2**32 - 1")
    who = _bounded("--submitter", submitter or os.environ.get("THYROID_BENCH_SUBMITTER")
                   or "anonymous", "label")
    truth, native, withheld = _dataset(dataset, home)
    meta, pretrained = _model_meta(model, truth.task, native)
    files = _prediction_files(Path(predictions), truth.task)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(f".{out.name}.tmp-", out.parent)
    try:
        written = {split: _write_split(tmp, split, files[split], truth, truth.ref.spec, bootstrap,
                                       split in withheld) for split in truth.task.eval_splits}
        entry = Entry(
            run_id=_bounded("--out", out.name, "label") or "external", task=truth.task.name,
            dataset=truth.ref, model=meta,
            protocol=ProtocolRecord(name=EXTERNAL_PROTOCOL, parameters={}), pretrained=pretrained,
            seed=seed, metrics={s: m for s, (m, _) in written.items()},
            predictions={s: f for s, (_, f) in written.items()}, environment=None,
            wall_time_s=0.0, submitter=who or "anonymous",
            date=datetime.now(timezone.utc).replace(microsecond=0), origin="external",
            training_data=model.training_data, notes=model.notes)
        write_entry(tmp / "entry.json", entry)
        os.rename(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return entry
