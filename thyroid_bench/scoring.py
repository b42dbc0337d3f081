"""Score a predictions file: the function behind ``thyroid-bench score``.

A predictions file from any model enters here (DESIGN: data flows one way,
predictions -> metrics). It is scored either against the labels of a dataset
split (and must then cover exactly that split's cases), or against its own
``label`` column.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np

from thyroid_bench.errors import PredictionsError, ThyroidBenchError
from thyroid_bench.metrics import evaluate
from thyroid_bench.predictions import Predictions, read_predictions
from thyroid_bench.schema import CLASS_NAMES

__all__ = ["score_predictions"]


def score_predictions(
    predictions_path: str | os.PathLike,
    *,
    dataset: str | os.PathLike | None = None,
    split: str | None = None,
    home: Path | None = None,
    json_out: str | os.PathLike | None = None,
    figures_dir: str | os.PathLike | None = None,
    bootstrap: int = 1000,
    seed: int = 0,
) -> dict:
    """Score a predictions CSV and return {predictions, labels_from, dataset, split, metrics, ...}.

    With ``split`` named, the labels come from that split of ``dataset`` (a name,
    ``name@version`` or folder; default: the prepared default dataset) and the file must
    hold exactly the split's cases; a ``label`` column in the file must then agree with
    the dataset. Without ``split``, the file's own ``label`` column is used. Cases are
    scored in ``case_id`` order (the metrics do not depend on it: ``evaluate`` is
    invariant to the order of cases, so a re-scored file reproduces its numbers exactly).
    ``json_out`` writes the result as JSON; ``figures_dir`` writes ``report.md`` with ROC
    and confusion-matrix figures there. Raises :class:`ThyroidBenchError` subclasses for
    user errors (bad file, unknown dataset, no labels).
    """
    path = Path(predictions_path)
    dataset_info = None
    if split is not None:
        from thyroid_bench.data.format import read_manifest, read_split, resolve_dataset

        folder = resolve_dataset(dataset, home=home)
        manifest = read_manifest(folder)
        truth = read_split(folder, split, columns=["case_id", "label"])
        y_by_id = {str(c): int(y) for c, y in zip(truth["case_id"], truth["label"])}
        preds = read_predictions(path, expected_case_ids=list(y_by_id))
        preds, y_true, mismatch = preds.against(y_by_id)
        if mismatch.size:
            _labels_disagree(path, preds, y_true, mismatch,
                             f"{manifest['name']} {manifest['version']} split {split!r}")
        dataset_info = {"name": manifest["name"], "version": manifest["version"],
                        "fingerprint": manifest["fingerprint"], "path": str(folder)}
        labels_from = "dataset"
    elif dataset is not None:
        raise ThyroidBenchError(
            f"--dataset {dataset} needs --split (train, internal or external) to say which "
            "split's labels to score against")
    else:
        preds = read_predictions(path)
        if preds.labels is None:
            raise PredictionsError(
                f"{path}: no label column, so there is nothing to score against; name a split "
                "(--split internal|external, with --dataset if not the default dataset) or add a "
                "label column (class name, type I-IV or index)")
        preds = preds.align(sorted(preds.case_ids))
        y_true = preds.labels
        labels_from = "file"

    from thyroid_bench import __version__

    metrics = evaluate(y_true, preds.probs, CLASS_NAMES, bootstrap=bootstrap, seed=seed)
    result: dict = {
        "predictions": str(path),
        "labels_from": labels_from,
        "dataset": dataset_info,
        "split": split,
        "thyroid_bench_version": __version__,
        "metrics": metrics,
    }
    if figures_dir is not None:
        from thyroid_bench.report import write_report

        name = split or path.stem
        against = (f"{dataset_info['name']} {dataset_info['version']}, split {split}"
                   if dataset_info else "its own label column")
        report = write_report(figures_dir, {name: metrics}, {name: (y_true, preds.probs)},
                              title=f"Scores of {path.name} against {against}")
        result["report"] = str(report)
    if json_out is not None:
        out = Path(json_out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(result, indent=2, allow_nan=False) + "\n", encoding="utf-8")
    return result


def _labels_disagree(path: Path, preds: Predictions, y_true: np.ndarray, bad: np.ndarray, where: str) -> None:
    shown = "; ".join(f"{preds.case_ids[i]!r}: file {CLASS_NAMES[preds.labels[i]]}, dataset "
                      f"{CLASS_NAMES[y_true[i]]}" for i in bad[:5])
    raise PredictionsError(
        f"{path}: the label column disagrees with {where} on {bad.size} case(s) ({shown}); "
        "check --dataset and --split, or drop the label column")
