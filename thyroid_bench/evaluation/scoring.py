"""Score a predictions file: the function behind ``thyroid-bench score``.

A predictions file from any model enters here (DESIGN: data flows one way,
predictions -> metrics). It is scored either against the labels of a dataset
split (and must then cover exactly that split's cases), or against its own
``label`` column. The task's metric suite scores it (``evaluation.suites``); for a task
with a regression target (residual-tissue's ``uptake_pct``) a predicted column in the file
is scored against the dataset's column (a file scored on its own labels has no true values,
so its regression figures are empty).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from thyroid_bench.atomic import atomic_write_text, check_output_file, check_output_folder
from thyroid_bench.errors import PredictionsError, ThyroidBenchError
from thyroid_bench.evaluation.predictions import (
    Predictions,
    read_predictions,
    task_of_header,
)
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.tasks import Task, TaskError, get_task

__all__ = ["score_predictions"]


def score_predictions(
    predictions_path: str | os.PathLike,
    *,
    dataset: str | os.PathLike | None = None,
    split: str | None = None,
    home: Path | None = None,
    task: str | None = None,
    json_out: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Score a predictions CSV and return {predictions, labels_from, dataset, split, metrics, ...}.

    With ``split`` named, the labels come from that split of ``dataset`` (a name,
    ``name@version`` or folder; default: the default dataset of ``task``, else of the task
    the file's header names, e.g. tsb-residual for residual-tissue) and the file must
    hold exactly the split's cases; a ``label`` column in the file must then agree with
    the dataset; the task is the dataset's, and its regression column (if any) is the
    truth of the file's. Without ``split``, the file's own ``label``
    column is used, and the task is ``task`` or the one whose probability columns the
    file's header names. Cases are
    scored in ``case_id`` order (the metrics do not depend on it: ``evaluate`` is
    invariant to the order of cases, so a re-scored file reproduces its numbers exactly).
    ``json_out`` writes the result as JSON; ``figures_dir`` writes ``report.md`` with ROC
    and confusion-matrix figures there. Raises :class:`ThyroidBenchError` subclasses for
    user errors (bad file, unknown dataset, no labels).
    """
    path = Path(predictions_path)
    if json_out is not None:
        check_output_file(json_out, "--json")
    if figures_dir is not None:
        check_output_folder(figures_dir, "--figures")
    wanted = get_task(task) if task is not None else None
    true_values: dict[str, np.ndarray] = {}
    if split is not None:
        if dataset is None:
            dataset = _default_dataset(path, wanted)
        the_task, preds, y_true, true_values, dataset_info = _against_dataset(
            path, dataset, split, home, wanted)
        labels_from = "dataset"
    elif dataset is not None:
        raise ThyroidBenchError(
            f"--dataset {dataset} needs --split (train, internal or external) to say which "
            "split's labels to score against")
    else:
        the_task = wanted or task_of_header(path)
        preds, y_true = _against_own_labels(path, the_task)
        dataset_info, labels_from = None, "file"

    from thyroid_bench.version import __version__

    metrics = evaluate_task(the_task, y_true, preds.probs, bootstrap=bootstrap, seed=seed,
                            values=preds.values, true_values=true_values)
    result: dict = {
        "predictions": str(path),
        "task": the_task.name,
        "labels_from": labels_from,
        "dataset": dataset_info,
        "split": split,
        "thyroid_bench_version": __version__,
        "metrics": metrics,
    }
    if figures_dir is not None:
        from thyroid_bench.evaluation.report import write_report

        name = split or path.stem
        against = (f"{dataset_info['name']} {dataset_info['version']}, split {split}"
                   if dataset_info else "its own label column")
        report = write_report(figures_dir, the_task, {name: metrics}, {name: (y_true, preds.probs)},
                              title=f"Scores of {path.name} against {against}")
        result["report"] = str(report)
    if json_out is not None:
        atomic_write_text(json_out, json.dumps(result, indent=2, allow_nan=False) + "\n")
    return result


def _against_dataset(path: Path, dataset: str | os.PathLike | None, split: str, home: Path | None,
                     wanted: Task | None) -> tuple[Task, Predictions, np.ndarray, dict, dict]:
    """The file lined up with a dataset split's labels (it must hold exactly its cases), and
    the split's regression column in the same order ({} when the task has none)."""
    from thyroid_bench.data.format import read_manifest, read_split, resolve_dataset

    folder = resolve_dataset(dataset, home=home)
    manifest = read_manifest(folder)
    task = manifest.get_task()
    if wanted is not None and wanted.name != task.name:
        raise ThyroidBenchError(f"--task {wanted.name}: dataset {manifest.name} {manifest.version} "
                                f"({folder}) is for task {task.name}; drop --task or pick its dataset")
    if split in manifest.withheld_splits:
        raise ThyroidBenchError(f"--split {split}: the labels of {manifest.name} {manifest.version} "
                                f"split {split} are withheld by its organisers ({folder} holds none), "
                                "so only they can score it: submit the run (`thyroid-bench submit`)")
    target = [task.regression_target] if task.regression_target else []
    truth = read_split(folder, split, columns=["case_id", "label", *target])
    y_by_id = {str(c): int(y) for c, y in zip(truth["case_id"], truth["label"])}
    preds = read_predictions(path, task, expected_case_ids=list(y_by_id))
    preds, y_true, mismatch = preds.against(y_by_id)
    if mismatch.size:
        _labels_disagree(path, task, preds, y_true, mismatch,
                         f"{manifest.name} {manifest.version} split {split!r}")
    true_values = {}
    for name in target:
        by_id = dict(zip(truth["case_id"].astype(str), truth[name].to_numpy(np.float64)))
        true_values[name] = np.array([by_id[c] for c in preds.case_ids], dtype=np.float64)
    info = {**manifest.dataset_ref().model_dump(exclude={"synthetic"}), "path": str(folder)}
    return task, preds, y_true, true_values, info


def _default_dataset(path: Path, wanted: Task | None) -> str | None:
    """The default dataset of the named task, else of the task the file's header names
    (None: the package's default dataset)."""
    if wanted is None:
        try:
            wanted = task_of_header(path)
        except TaskError:
            return None
    return wanted.default_dataset


def _against_own_labels(path: Path, task: Task) -> tuple[Predictions, np.ndarray]:
    preds = read_predictions(path, task)
    if preds.labels is None:
        raise PredictionsError(
            f"{path}: no label column, so there is nothing to score against; name a split "
            "(--split internal|external, with --dataset if not the default dataset) or add a "
            "label column (class name, the paper's code or index)")
    preds = preds.align(sorted(preds.case_ids))
    return preds, preds.labels


def _labels_disagree(path: Path, task: Task, preds: Predictions, y_true: np.ndarray,
                     bad: np.ndarray, where: str) -> None:
    shown = "; ".join(f"{preds.case_ids[i]!r}: file {task.label_text(preds.labels[i])}, dataset "
                      f"{task.label_text(y_true[i])}" for i in bad[:5])
    raise PredictionsError(
        f"{path}: the label column disagrees with {where} on {bad.size} case(s) ({shown}); "
        "check --dataset and --split, or drop the label column")

