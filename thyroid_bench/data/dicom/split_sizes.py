"""A DICOM archive that would make an empty split or train fold: refused before anything is written.

An archive where nothing can be ingested (every file rejected), or too little for one split
(a single centre and no ``--external-center``, a handful of patients for ``internal``), used
to become a dataset with empty splits that ``run`` then failed on. :func:`check_dicom_split_sizes`
refuses it with what :func:`~thyroid_bench.data.sizes.check_split_sizes` says (the studies per
split), the files seen, ingested and rejected (by reason), where each rejected file's reason is
(the organiser's report, written beside the key even though no dataset is: the dataset's
``rejected.csv`` does not exist without a dataset), and what to do.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from thyroid_bench.data.dicom.report import write_organiser_report
from thyroid_bench.data.sizes import refusal, size_problems, train_folds
from thyroid_bench.errors import DatasetError, printable
from thyroid_bench.tasks import TRAIN_SPLIT, Task

__all__ = ["check_dicom_split_sizes"]

_EXTERNAL = "external"


def check_dicom_split_sizes(splits: Mapping[str, Sequence[Mapping[str, Any]]], task: Task, *,
                            what: str, summary: Mapping[str, Any], report: Path,
                            report_text: Callable[[], bytes], external: Sequence[str],
                            has_split: bool, centers: Sequence[str]) -> None:
    """Raise :class:`DatasetError` (after writing the organiser's report, ``report_text()``,
    at ``report``) if ``splits`` would leave a split or a train fold empty."""
    rows = {split: len(splits.get(split, ())) for split in task.splits}
    folds = train_folds(splits.get(TRAIN_SPLIT, ()))
    problems = size_problems(rows, folds, task)
    if not problems:
        return
    write_organiser_report(report, report_text())
    short = any(n == 0 for s, n in rows.items() if s != _EXTERNAL) or len(folds) < task.folds
    raise DatasetError(f"{refusal(what, problems, rows)} {_files_line(summary)}; every rejected "
                       f"file and its reason: {printable(report)} (the organiser's report, beside "
                       f"the key). {_advice(rows, short, external, has_split, centers)}")


def _files_line(summary: Mapping[str, Any]) -> str:
    reasons = list(summary["rejected_by_reason"].items())
    shown = ", ".join(f"{reason}: {n}" for reason, n in reasons[:4])
    more = f", {len(reasons) - 4} other reason(s)" if len(reasons) > 4 else ""
    because = f" ({shown}{more})" if reasons else ""
    return (f"DICOM files: {summary['files_seen']} seen = {summary['ingested']} ingested + "
            f"{summary['rejected']} rejected{because}")


def _advice(rows: Mapping[str, int], short: bool, external: Sequence[str], has_split: bool,
            centers: Sequence[str]) -> str:
    """What to do about what is short (``short``: train, internal or a train fold)."""
    if not any(rows.values()):
        return ("Nothing could be ingested: fix the rejected files (or point --dicom-dir at the "
                "archive the labels CSV describes) and run again.")
    todo = []
    if not rows.get(_EXTERNAL):
        if has_split:
            todo.append("the labels CSV's split column puts no ingested study in external: "
                        "assign the second centre's studies to it")
        elif not external:
            todo.append(f"name the centre whose studies form the external split with "
                        f"--external-center (the labels CSV's centres: {', '.join(centers)})")
        else:
            todo.append(f"no study of --external-center {', '.join(external)} was ingested: see "
                        "its files' reasons")
    if short:
        fraction = "" if has_split else " (or a larger --internal-fraction, for internal)"
        todo.append(f"train and internal need more studies, of more patients, from the "
                    f"centre(s) that are not external{fraction}")
    return "To build it: " + "; ".join(todo) + "."
