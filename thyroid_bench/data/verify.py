"""Verification of a dataset version: the one place that decides whether a folder can be trusted.

:func:`verify_dataset` checks a folder completely and reports every fault it finds;
:func:`verify_or_raise` is what every command that reads a dataset calls before it uses
it (``run``, ``submit``, ``load_dataset``, ``prepare --source hub``). It streams: a split's
columns without its images are read whole (compact), its images a batch at a time
(:mod:`thyroid_bench.data.split_scan`), so memory does not grow with the dataset's images.
A split whose rows are not in case-id order is put aside in the system's temporary folder
(``$TMPDIR``) as PNG bytes, about the size of its shards, to be hashed in that order; no room
there is a :class:`~thyroid_bench.errors.SpillError` (raised, not reported as a finding).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from thyroid_bench.data.columns import extra_float_columns, extra_float_ok, extra_float_rule
from thyroid_bench.data.fingerprint import dataset_fingerprint
from thyroid_bench.data.isolation import isolation_problems, near_duplicate_warning, near_duplicates
from thyroid_bench.data.manifest import Manifest, SplitMeta, class_counts, read_manifest
from thyroid_bench.data.private import split_problems
from thyroid_bench.data.split_scan import SplitShards, scan_images
from thyroid_bench.data.sizes import absent_class_warnings, size_problems
from thyroid_bench.errors import DatasetError, SpillError, VerificationError
from thyroid_bench.tasks import NO_FOLD, SPLITS, TRAIN_SPLIT, UNKNOWN_GRADE, Task, TaskError

__all__ = ["VerifyReport", "verify_dataset", "verify_or_raise", "check_no_leakage"]


@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found: problems make it fail, notes inform."""

    path: Path
    name: str = "?"
    version: str = "?"
    fingerprint: str | None = None
    official: bool | None = None
    manifest: Manifest | None = None  # as read, when it could be read
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)  # worth a look, not a failure

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        """A one-screen summary for the terminal."""
        lines = [f"dataset   {self.name} {self.version}", f"path      {self.path}"]
        if self.fingerprint:
            lines.append(f"fingerprint {self.fingerprint}")
        if self.rows:
            lines.append("rows      " + ", ".join(f"{s} {n}" for s, n in self.rows.items()))
        if self.official is True:
            lines.append(f"official  {self.name} {self.version}: fingerprint matches the pinned one")
        elif self.official is False:
            lines.append(f"NOT official: fingerprint differs from the pinned {self.name} {self.version}")
        lines += [f"note      {n}" for n in self.notes]
        lines += [f"WARNING   {w}" for w in self.warnings]
        if self.ok:
            lines.append("result    OK: manifest, schema, counts, images, fingerprints and split "
                         "isolation all check out")
        else:
            lines.append(f"result    FAILED ({len(self.problems)} problem(s)):")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def verify_dataset(path: Path) -> VerifyReport:
    """Check a dataset folder completely; never raises for content faults, reports them.

    Checks the manifest, that its task is known and its label schema is the task's, every
    shard's columns (the task's, extra columns included), that class counts equal the
    manifest, every label is a class of the task (or -1, present of unknown grade, for a task
    with a detection reading), every image decodes and matches its ``matrix`` and
    ``total_counts``, every extra image decodes with ``image``'s shape, every extra float is
    in its column's range or null, the content fingerprints, and that no case, patient, study
    (``study_id``, where stored) or identical image is in two splits. Near-duplicate images
    across splits (:mod:`thyroid_bench.data.isolation`) are a warning, not a problem. A split
    whose labels the manifest withholds (:mod:`thyroid_bench.data.private`) must hold none:
    label -1 and no regression value on every row, no class counts.
    """
    path = Path(path)
    report = VerifyReport(path=path)
    try:
        manifest = report.manifest = read_manifest(path)
        report.name, report.version = manifest.name, manifest.version
        task = manifest.dataset_task()  # with its optional columns (study_id)
    except (DatasetError, TaskError) as exc:
        report.problems.append(str(exc))
        return report
    if manifest.label_schema != task.label_schema():
        report.problems.append(f"manifest label_schema differs from the label schema "
                               f"v{task.schema_version} of task {task.name} ({', '.join(task.class_names)})")
    _check_private_labels(manifest, task, report)
    tables: dict[str, pd.DataFrame] = {}  # every column but the images
    fingerprints: dict[str, str] = {}
    image_hashes: dict[str, set[str]] = {}
    thumbs: dict[str, np.ndarray] = {}
    for split in SPLITS:
        meta = manifest.splits.get(split)
        if meta is None:
            report.problems.append(f"manifest has no split {split!r}")
            continue
        try:
            shards = SplitShards(path, split)
            if shards.columns != list(task.columns):
                report.problems.append(f"split {split}: columns {shards.columns} differ from "
                                       f"format v1's for task {task.name} {list(task.columns)}")
                continue
            table = shards.table()
            scan = scan_images(shards, table, task)  # a batch at a time: see split_scan
        except SpillError:
            raise  # no room for temporary work: not a finding about the dataset
        except DatasetError as exc:
            report.problems.append(str(exc))
            continue
        tables[split] = table
        report.rows[split] = len(table)
        _check_split(split, table, meta, task, report, withheld=split in manifest.withheld_splits)
        _check_extra_floats(split, table, task, report)
        report.problems += scan.problems
        if scan.fingerprint is None:
            continue
        thumbs[split], image_hashes[split] = scan.thumbs, scan.digests
        fingerprints[split] = scan.fingerprint
        if fingerprints[split] != meta.fingerprint:
            report.problems.append(f"split {split}: content fingerprint {fingerprints[split][:16]}... "
                                   f"differs from the manifest's {meta.fingerprint[:16]}...: "
                                   "the data changed after it was written")
    _check_sizes(manifest, tables, task, report)
    _check_dataset(manifest, tables, fingerprints, image_hashes, report)
    if len(thumbs) == len(SPLITS):
        warning = near_duplicate_warning(near_duplicates(
            thumbs, {s: tables[s]["case_id"].tolist() for s in SPLITS}))
        report.warnings += [warning] if warning else []
    return report


def _check_sizes(manifest: Manifest, tables: Mapping[str, pd.DataFrame], task: Task,
                 report: VerifyReport) -> None:
    """An empty split or train fold is a problem (:func:`~thyroid_bench.data.sizes.
    size_problems`); an evaluation split without a case of some class is a warning."""
    folds = tables[TRAIN_SPLIT]["fold"].value_counts() if TRAIN_SPLIT in tables else {}
    report.problems += size_problems({s: len(t) for s, t in tables.items()},
                                     {int(k): int(v) for k, v in folds.items()}, task)
    report.warnings += absent_class_warnings({s: m.class_counts for s, m in manifest.splits.items()},
                                             task, skip=manifest.withheld_splits)


def _check_dataset(manifest: Manifest, tables: Mapping[str, pd.DataFrame],
                   fingerprints: Mapping[str, str], image_hashes: Mapping[str, set[str]],
                   report: VerifyReport) -> None:
    """The checks across splits: the dataset fingerprint, leakage, the pinned fingerprint."""
    from thyroid_bench.data.official import pinned_fingerprint

    if len(fingerprints) == len(SPLITS):
        report.fingerprint = dataset_fingerprint(fingerprints)
        if report.fingerprint != manifest.fingerprint:
            report.problems.append("dataset fingerprint differs from the manifest's")
    if len(tables) == len(SPLITS):
        report.problems += isolation_problems(tables)
        for a_i, a in enumerate(SPLITS):
            for b in SPLITS[a_i + 1:]:
                shared = image_hashes.get(a, set()) & image_hashes.get(b, set())
                if shared:
                    report.problems.append(f"{len(shared)} identical image(s) in both {a} and {b}")
    pinned = pinned_fingerprint(report.name, report.version)
    if pinned is not None:
        report.official = report.fingerprint == pinned


def verify_or_raise(path: Path, *, consequence: str = "it cannot be used",
                    what: str | None = None) -> Manifest:
    """Verify a dataset folder and return its manifest; :class:`VerificationError` if it fails.

    ``consequence`` completes the message (e.g. "nothing was trained"); ``what`` names the
    dataset in it (default: its folder).
    """
    report = verify_dataset(path)
    if not report.ok:
        raise VerificationError(f"{what or f'dataset {path}'} failed verification, so {consequence}:\n  - "
                                + "\n  - ".join(report.problems)
                                + "\nrebuild it (`thyroid-bench prepare --force`) or fix the source")
    assert report.manifest is not None  # a report without problems has read its manifest
    return report.manifest


def _check_private_labels(manifest: Manifest, task: Task, report: VerifyReport) -> None:
    """Withheld labels (:mod:`thyroid_bench.data.private`): of evaluation splits, recorded with
    the labels file's columns; a note says which and where their labels are."""
    record = manifest.private_labels
    if record is None:
        return
    not_evaluated = [s for s in record.splits if s not in task.eval_splits]
    if not_evaluated:
        report.problems.append(f"manifest private_labels withholds {not_evaluated}, not evaluation "
                               f"splits of task {task.name} ({', '.join(task.eval_splits)})")
    columns = ["split", "case_id", "label", *([task.regression_target] if task.regression_target else [])]
    if record.columns != columns:
        report.problems.append(f"manifest private_labels.columns {record.columns} are not {columns}")
    report.notes.append(f"labels of {', '.join(record.splits)} withheld: the organisers keep them "
                        f"(labels file SHA-256 {record.sha256[:16]}...)")


def _check_split(split: str, table: pd.DataFrame, meta: SplitMeta, task: Task,
                 report: VerifyReport, withheld: bool = False) -> None:
    if len(table) != meta.rows:
        report.problems.append(f"split {split}: {len(table)} rows, manifest says {meta.rows}")
    if withheld:  # labels -1, no regression value, no class counts
        report.problems += split_problems(split, table, task)
        if meta.class_counts:
            report.problems.append(f"split {split}: its labels are withheld, but the manifest "
                                   f"gives its class counts {meta.class_counts}")
        _check_ids_and_folds(split, table, task, report)
        return
    labels = table["label"]
    allowed = (labels >= 0) & (labels < task.num_classes)
    if task.detection is not None:
        allowed |= labels == UNKNOWN_GRADE  # present, grade unknown
    bad = table.loc[~allowed, "case_id"].tolist()
    if bad:
        report.problems.append(f"split {split}: label outside the schema for case(s) {bad[:5]}")
    counts = class_counts(labels, task)
    if counts != meta.class_counts:
        report.problems.append(f"split {split}: class counts {counts} differ from the manifest's "
                               f"{meta.class_counts}")
    _check_ids_and_folds(split, table, task, report)


def _check_ids_and_folds(split: str, table: pd.DataFrame, task: Task, report: VerifyReport) -> None:
    dup = table.loc[table["case_id"].duplicated(), "case_id"].tolist()
    if dup:
        report.problems.append(f"split {split}: duplicated case_id(s) {dup[:5]}")
    folds = table["fold"]
    if split == TRAIN_SPLIT and not folds.between(0, task.folds - 1).all():
        report.problems.append(f"split train: fold outside 0-{task.folds - 1}")
    if split != TRAIN_SPLIT and not (folds == NO_FOLD).all():
        report.problems.append(f"split {split}: fold must be {NO_FOLD} outside train")


def _check_extra_floats(split: str, table: pd.DataFrame, task: Task, report: VerifyReport) -> None:
    """A float extra column holds values in its range (finite, >= 0, at most 100 for a
    percentage: :func:`~thyroid_bench.data.columns.extra_float_ok`), or nulls."""
    for col in extra_float_columns(task):
        values = pd.to_numeric(table[col], errors="coerce")
        not_number = table[col].notna() & values.isna()
        out_of_range = [v == v and not extra_float_ok(col, float(v)) for v in values]  # NaN: null
        bad = not_number | np.asarray(out_of_range, dtype=bool)
        if bad.any():
            report.problems.append(f"split {split}: {col} not {extra_float_rule(col)} (or null) "
                                   f"for case(s) {table.loc[bad, 'case_id'].tolist()[:5]}")


def check_no_leakage(tables: Mapping[str, pd.DataFrame], where: str) -> None:
    """Raise :class:`VerificationError` if a case, a patient or (where stored) a study appears
    in two splits (:func:`~thyroid_bench.data.isolation.isolation_problems`)."""
    problems = isolation_problems(tables)
    if problems:
        raise VerificationError(f"{where}: " + "; ".join(problems))
