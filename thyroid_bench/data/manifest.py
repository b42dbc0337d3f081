"""The manifest of a dataset version: one typed object, read from and written to JSON here.

``manifest.json`` records the format version, the dataset's name and semver version, its
task and label schema, whether it is synthetic, its licence, the dataset fingerprint, per
split the rows, class and centre counts, shard files and fingerprint, the provenance and
who built it when, and (only when there are any) the optional columns the dataset adds to its
task's (:data:`~thyroid_bench.data.columns.OPTIONAL_COLUMNS`, e.g. ``study_id``), and (only
when there are any) the evaluation splits whose labels are withheld, with the SHA-256 of the
organisers' labels file (``private_labels``, :mod:`thyroid_bench.data.private`).
:func:`read_manifest` is the one reader; :meth:`Manifest.dataset_ref` the one place a result's
dataset reference (name, version, fingerprint) comes from.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, field_validator, model_serializer

from thyroid_bench.data.columns import OPTIONAL_COLUMNS, with_optional
from thyroid_bench.errors import DatasetError, validation_problems
from thyroid_bench.tasks import DEFAULT_TASK, SPLITS, TRAIN_SPLIT, UNKNOWN_GRADE, Task, TaskError, get_task

__all__ = ["FORMAT_VERSION", "DATASET_NAME_PATTERN", "SplitMeta", "DatasetRef", "PrivateLabels", "Manifest",
           "read_manifest", "write_manifest", "class_counts"]

FORMAT_VERSION = 1
_SHA256 = r"^[0-9a-f]{64}$"
_SEMVER = r"^\d+\.\d+\.\d+$"
#: A dataset name: lower-case letters, digits, ``.``, ``_`` and ``-``.
DATASET_NAME_PATTERN = r"^[a-z0-9][a-z0-9._-]*$"


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DatasetRef(_Strict):
    """The dataset version a result was computed on."""

    name: str = Field(pattern=DATASET_NAME_PATTERN, max_length=128,
                      description="dataset name, e.g. tsb-synthetic")
    version: str = Field(pattern=_SEMVER, max_length=32, description="semver version")
    fingerprint: str = Field(pattern=_SHA256, description="content fingerprint (manifest.json)")
    synthetic: bool = Field(default=False, description="a synthetic (phantom) dataset")

    @property
    def spec(self) -> str:
        """``name@version``, as commands take it."""
        return f"{self.name}@{self.version}"


class SplitMeta(_Strict):
    """One split as the manifest records it."""

    rows: int = Field(ge=0)
    class_counts: dict[str, int] = Field(description="rows per class name (:func:`class_counts`), "
                                         "plus the present label for labels -1 when there are any")
    center_counts: dict[str, int] = Field(default_factory=dict)
    files: list[str] = Field(default_factory=list)
    fingerprint: str = Field(pattern=_SHA256)


def class_counts(labels: Iterable[int], task: Task) -> dict[str, int]:
    """Rows per class name, in class order, plus the detection's present label (e.g.
    ``present``) for labels -1 (present, grade unknown) when there are any."""
    labels = np.asarray(list(labels), dtype=np.int64)
    counts = {n: int((labels == i).sum()) for i, n in enumerate(task.class_names)}
    unknown = int((labels == UNKNOWN_GRADE).sum())
    if unknown and task.detection is not None:
        counts[task.detection.present_label] = unknown
    return counts


class PrivateLabels(_Strict):
    """The evaluation splits whose labels a dataset version withholds, and the organisers'
    labels file that holds them (:mod:`thyroid_bench.data.private`)."""

    splits: list[str] = Field(min_length=1, max_length=8, description="the withheld "
                              "evaluation splits, in split order: their shards hold no label")
    sha256: str = Field(pattern=_SHA256, description="SHA-256 of the organisers' labels file "
                        "(kept outside the dataset folder, never published)")
    columns: list[str] = Field(min_length=3, max_length=8, description="the labels file's "
                               "columns: split, case_id, label, then the task's regression target")

    @field_validator("splits")
    @classmethod
    def _evaluation_splits(cls, splits: list[str]) -> list[str]:
        if len(set(splits)) != len(splits) or not set(splits) <= set(SPLITS) or TRAIN_SPLIT in splits:
            raise ValueError(f"private_labels.splits {splits} must be distinct splits other than "
                             f"{TRAIN_SPLIT} (one of {[s for s in SPLITS if s != TRAIN_SPLIT]})")
        return splits


class Manifest(_Strict):
    """``manifest.json`` of a dataset version (format v1)."""

    format_version: Literal[1] = FORMAT_VERSION
    name: str = Field(pattern=DATASET_NAME_PATTERN, max_length=128)
    version: str = Field(pattern=_SEMVER)
    task: str = DEFAULT_TASK
    label_schema: dict[str, Any]
    synthetic: bool = False
    licence: str = "other"
    fingerprint: str = Field(pattern=_SHA256)
    splits: dict[str, SplitMeta]
    provenance: dict[str, Any] = Field(default_factory=dict)
    created_by: str = ""
    created_utc: str = ""
    optional_columns: list[str] = Field(default_factory=list, description="optional columns "
                                        "after the task's (omitted from the JSON when none)")
    private_labels: PrivateLabels | None = Field(default=None, description="withheld "
                                                 "evaluation labels (omitted from the JSON when none)")
    _file: Path | None = PrivateAttr(default=None)  # where it was read from, for messages

    def dataset_ref(self) -> DatasetRef:
        """Name, version, fingerprint and synthetic flag: what every result names."""
        return DatasetRef(name=self.name, version=self.version, fingerprint=self.fingerprint,
                          synthetic=self.synthetic)

    def get_task(self) -> Task:
        """The task this dataset serves; :class:`~thyroid_bench.tasks.TaskError` naming the
        manifest if no such task is registered."""
        try:
            return get_task(self.task)
        except TaskError as exc:
            where = f"{self._file}: " if self._file else ""
            raise TaskError(f"{where}dataset {self.name} {self.version} is for {exc}") from None

    def dataset_task(self) -> Task:
        """The task with this dataset's optional columns appended: its shards' columns."""
        return with_optional(self.get_task(), self.optional_columns)

    @field_validator("optional_columns")
    @classmethod
    def _known_optional(cls, names: list[str]) -> list[str]:
        unknown = [n for n in names if n not in OPTIONAL_COLUMNS]
        if unknown or len(set(names)) != len(names):
            raise ValueError(f"optional_columns {names} must be distinct names of "
                             f"{sorted(OPTIONAL_COLUMNS)}")
        return names

    @property
    def withheld_splits(self) -> tuple[str, ...]:
        """The evaluation splits whose labels are withheld (empty for most datasets)."""
        return tuple(self.private_labels.splits) if self.private_labels else ()

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.splits.values())

    @model_serializer(mode="wrap")
    def _omit_no_optional_columns(self, handler: Any) -> dict[str, Any]:
        data = handler(self)
        if not data.get("optional_columns"):
            data.pop("optional_columns", None)  # manifests without them stay as they were
        if data.get("private_labels") is None:
            data.pop("private_labels", None)  # likewise without withheld labels
        return data

    def to_json(self) -> str:
        return json.dumps(self.model_dump(mode="json"), indent=2) + "\n"


_REQUIRED = ("format_version", "name", "version", "task", "label_schema", "fingerprint", "splits")


def read_manifest(path: str | Path) -> Manifest:
    """Read and check ``manifest.json`` of a dataset folder; :class:`DatasetError` names the fault."""
    file = Path(path) / "manifest.json"
    try:
        data = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{file} is missing: {path} is not a complete dataset version; "
                           "rebuild it with `thyroid-bench prepare`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} is not valid JSON ({exc}); rebuild the dataset") from None
    except OSError as exc:
        raise DatasetError(f"{file} cannot be read ({exc.strerror}); check its permissions") from None
    if not isinstance(data, dict):
        raise DatasetError(f"{file}: expected a JSON object, got {type(data).__name__}")
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise DatasetError(f"{file}: missing key(s) {missing}")
    if data["format_version"] != FORMAT_VERSION:
        raise DatasetError(f"{file}: format_version {data['format_version']!r} is not supported "
                           f"(this thyroid-bench reads {FORMAT_VERSION}); upgrade thyroid-bench")
    try:
        manifest = Manifest.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, 10)
        raise DatasetError(f"{file}: not a valid format-v1 manifest: {problems}") from None
    manifest._file = file
    return manifest


def write_manifest(folder: str | Path, manifest: Manifest) -> Path:
    """Write ``manifest.json`` into ``folder`` (the writer renames the folder into place)."""
    file = Path(folder) / "manifest.json"
    file.write_text(manifest.to_json(), encoding="utf-8")
    return file
