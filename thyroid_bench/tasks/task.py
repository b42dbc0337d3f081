"""A task is data: one validated, frozen definition of what is predicted and how it is scored.

A :class:`Task` carries what every stage needs to know about a task (in the spirit of
MTEB's ``TaskMetadata``): its name, description, reference and modality; the target (its
kind and classes, in a fixed order: a model's output column k is class k); the image
columns that form the model input; the split names, the splits evaluated on, the train
folds; the main score (a metric on a split) that ranks the leaderboard; the metric that
selects the best epoch on the selection fold; and the metric suite of its target kind.

Every stage takes the task from the dataset's manifest or the entry
(:func:`thyroid_bench.tasks.get_task`), never from a module constant, so a new task is a
definition, a generator and a metric suite.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "SPLITS",
    "TRAIN_SPLIT",
    "EVAL_SPLITS",
    "NUM_FOLDS",
    "NO_FOLD",
    "BASE_COLUMNS",
    "UNKNOWN_GRADE",
    "PROB_SUM_TOLERANCE",
    "TaskClass",
    "Target",
    "Reference",
    "MainScore",
    "ExtraColumn",
    "Detection",
    "PublishedResult",
    "Task",
]

#: The splits of dataset format v1, in order: train (centre 1), internal (centre 1, held
#: out), external (another centre, never trained on).
SPLITS: tuple[str, ...] = ("train", "internal", "external")
TRAIN_SPLIT = "train"
#: The splits every result is evaluated on.
EVAL_SPLITS: tuple[str, ...] = ("internal", "external")
#: ``train`` rows carry a fixed fold 0..NUM_FOLDS-1; other splits carry ``NO_FOLD``.
NUM_FOLDS = 5
NO_FOLD = -1
#: The columns of dataset format v1 that every task has (``thyroid_bench.data.columns``
#: declares their dtypes); a task adds its ``extra_columns`` after them.
BASE_COLUMNS: tuple[str, ...] = (
    "case_id", "patient_id", "image", "label", "center", "fold", "matrix",
    "pixel_spacing_mm", "total_counts", "acquisition_s", "sex", "age",
)
#: The label of a case whose presence is known but not its class (Hugging Face's "no label").
UNKNOWN_GRADE = -1
#: A row of class probabilities must sum to 1 within this tolerance.
PROB_SUM_TOLERANCE = 1e-6


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TaskClass(_Frozen):
    """One class of a target: its index (= model output column), name, the paper's code and reading."""

    index: int = Field(ge=0)
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$", description="snake_case, used in column names")
    code: str | None = Field(default=None, description="the paper's code for it, e.g. 'III'")
    reading: str = Field(default="", description="what the class means, for cards and tables")
    aliases: tuple[str, ...] = Field(default=(), description="other spellings a labels file may use")


class Target(_Frozen):
    """What is predicted: the kind and the classes, in output order."""

    kind: Literal["multiclass", "binary", "ordinal"]
    classes: tuple[TaskClass, ...]

    @model_validator(mode="after")
    def _ordered(self) -> Target:
        if len(self.classes) < 2:
            raise ValueError("a target needs at least two classes")
        if [c.index for c in self.classes] != list(range(len(self.classes))):
            raise ValueError("class indices must be 0, 1, ... in order")
        names = [c.name for c in self.classes]
        if len(set(names)) != len(names):
            raise ValueError(f"class names must be unique, got {names}")
        spellings: dict[str, str] = {}
        for c in self.classes:
            for text in {_label_key(t) for t in (c.name, str(c.index), c.code or "", *c.aliases) if t}:
                if spellings.setdefault(text, c.name) != c.name:
                    raise ValueError(f"label spelling {text!r} would name both {spellings[text]} "
                                     f"and {c.name}; codes and aliases must be unambiguous")
        if self.kind == "binary" and len(self.classes) != 2:
            raise ValueError("a binary target has exactly two classes")
        return self


class Reference(_Frozen):
    """Where the task comes from."""

    citation: str
    doi: str | None = None


class MainScore(_Frozen):
    """The figure the leaderboard ranks by: a metric of the suite, on an evaluation split."""

    metric: str
    split: str


class ExtraColumn(_Frozen):
    """A column a task adds to dataset format v1's columns (after them, in declared order).

    ``image``: a second view, stored like ``image`` (a 16-bit grayscale PNG of the raw counts);
    ``float``: a float64 value, missing as null; ``string``: a string (e.g. the study
    pseudonym ``study_id`` a DICOM-built dataset adds, :data:`thyroid_bench.data.columns.OPTIONAL_COLUMNS`).
    """

    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    kind: Literal["image", "float", "string"]
    description: str


class Detection(_Frozen):
    """A binary reading derived from the target: *present* is any class but ``negative``.

    P(present) = 1 - P(negative); a case is called present when P(present) >= ``threshold``.
    A dataset that knows only presence stores label ``UNKNOWN_GRADE`` (-1, Hugging Face's
    "no label") for a present case of unknown class; the ``label`` column of a predictions
    file and the leaderboard's stored labels spell it ``present_label`` (a DICOM labels CSV
    says it with its ``present`` column instead).
    """

    negative: str = Field(description="the class that means 'not present'")
    threshold: float = Field(default=0.5, gt=0, lt=1)
    present_label: str = Field(default="present", description="a labels file's spelling of "
                               "'present, class not known'")


class PublishedResult(_Frozen):
    """A published figure set for a task, shown as a reference line, never ranked.

    Its data are not the benchmark's (private data, other protocol): not comparable.
    """

    citation: str
    doi: str | None = None
    data: str = Field(description="what it was measured on")
    figures: dict[str, float] = Field(description="metric name (as the task's suite names it) "
                                      "-> fraction in [0, 1]")
    note: str = Field(default="", description="how a figure was derived, if it was")


class Task(_Frozen):
    """A task definition (validated, frozen, unknown fields refused)."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]*$")
    description: str
    reference: Reference
    modality: str
    schema_version: int = Field(default=1, ge=1, description="version of the label schema")
    target: Target
    image_columns: tuple[str, ...] = ("image",)
    splits: tuple[str, ...] = SPLITS
    eval_splits: tuple[str, ...] = EVAL_SPLITS
    folds: int = Field(default=NUM_FOLDS, ge=2)
    main_score: MainScore
    selection_metric: str = "macro_f1"
    class_weighting: bool = Field(default=True, description="whether a protocol's class weights "
                                  "(class_weight_power) apply to the task's loss; False where "
                                  "weighing the classes by their frequency measured worse on "
                                  "the selection fold")
    metric_suite: str = Field(default="multiclass", description="name of the metric suite "
                              "(thyroid_bench.evaluation.suites) that scores this task")
    datasets: tuple[str, ...] = Field(default=(), description="datasets built for the task; "
                                      "the first is the default")
    extra_columns: tuple[ExtraColumn, ...] = Field(default=(), description="columns the task's "
                                                   "datasets add to format v1's")
    detection: Detection | None = Field(default=None, description="a derived present/absent "
                                        "reading, for targets where one class means absent")
    regression_target: str | None = Field(default=None, description="a float extra column that "
                                          "a predictions file may also predict")
    shown_beside: tuple[str, ...] = Field(default=(), description="figures shown beside the "
                                          "main score")
    published: tuple[PublishedResult, ...] = Field(default=(), description="published results "
                                                   "on other data: reference lines, not ranked")

    @model_validator(mode="after")
    def _consistent(self) -> Task:
        if self.splits != SPLITS:
            raise ValueError(f"dataset format v1 has the splits {SPLITS}, got {self.splits}")
        if not set(self.eval_splits) <= set(self.splits) or TRAIN_SPLIT in self.eval_splits:
            raise ValueError(f"eval_splits {self.eval_splits} must be splits other than train")
        if self.main_score.split not in self.eval_splits:
            raise ValueError(f"main score split {self.main_score.split!r} is not an eval split")
        if len(set(self.eval_splits)) != len(self.eval_splits) or not self.eval_splits:
            raise ValueError(f"eval_splits {self.eval_splits} must be distinct and not empty")
        images = {"image", *(c.name for c in self.extra_columns if c.kind == "image")}
        if not self.image_columns or not set(self.image_columns) <= images:
            raise ValueError(f"image_columns {self.image_columns} must name image columns "
                             f"(here {sorted(images)})")
        extra = [c.name for c in self.extra_columns]
        if len(set(extra)) != len(extra) or set(extra) & set(BASE_COLUMNS):
            raise ValueError(f"extra_columns {extra} must be distinct and new")
        if self.detection is not None and self.detection.negative not in self.class_names:
            raise ValueError(f"detection.negative {self.detection.negative!r} is not a class")
        floats = {c.name for c in self.extra_columns if c.kind == "float"}
        if self.regression_target is not None and self.regression_target not in floats:
            raise ValueError(f"regression_target {self.regression_target!r} is not a float "
                             "extra column")
        return self

    # ------------------------------------------------------------------ classes
    @property
    def classes(self) -> tuple[TaskClass, ...]:
        return self.target.classes

    @property
    def class_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.target.classes)

    @property
    def num_classes(self) -> int:
        return len(self.target.classes)

    @property
    def prob_columns(self) -> tuple[str, ...]:
        """The predictions file's probability column of each class, in class order."""
        return tuple(f"prob_{c.name}" for c in self.target.classes)

    @property
    def columns(self) -> tuple[str, ...]:
        """Every column of the task's datasets, in shard order."""
        return (*BASE_COLUMNS, *(c.name for c in self.extra_columns))

    @property
    def negative_index(self) -> int | None:
        """The class index that means 'not present' (None without a detection reading)."""
        return None if self.detection is None else self.class_names.index(self.detection.negative)

    @property
    def default_dataset(self) -> str | None:
        return self.datasets[0] if self.datasets else None

    def class_code(self, index: int) -> str | None:
        """The paper's code of class ``index`` with its word: ``type III`` for a pattern,
        ``grade 2`` for an ordinal grade; None for a class without a code."""
        c = self.target.classes[index]
        if not c.code:
            return None
        return f"{'grade' if self.target.kind == 'ordinal' else 'type'} {c.code}"

    def class_label(self, index: int) -> str:
        """``name (code)`` or ``name``, for messages and tables."""
        c = self.target.classes[index]
        return f"{c.name} ({c.code})" if c.code else c.name

    def accepted_labels(self) -> str:
        """The label spellings a labels file may use, for error messages."""
        return ", ".join(self.class_label(c.index) for c in self.target.classes)

    def parse_label(self, value: object) -> int:
        """The class index of a class name, code, alias or index (case, spaces, ``-`` and a
        leading ``type`` ignored: ``"Type II"`` is code ``II``; for an ordinal target also a
        leading ``grade``, so that :meth:`class_code`'s ``"grade 2"`` reads back as code ``2``).

        Raises ``ValueError`` naming the accepted values otherwise.
        """
        k = self.num_classes
        if isinstance(value, bool):
            raise ValueError(f"label {value!r} is not a class; expected one of {self.accepted_labels()}")
        if isinstance(value, int):
            if 0 <= value < k:
                return value
            raise ValueError(f"label index {value} is out of range 0-{k - 1}")
        text = str(value).strip()
        key = _label_key(text)
        words = ("type_", "grade_") if self.target.kind == "ordinal" else ("type_",)
        for candidate in (key, *(key[len(w):] for w in words if key.startswith(w))):
            for c in self.target.classes:
                spellings = (c.name, str(c.index), *(s for s in (c.code, *c.aliases) if s))
                if candidate and candidate in {_label_key(s) for s in spellings}:
                    return c.index
        raise ValueError(f"label {text!r} is not a class; expected one of {self.accepted_labels()}")

    def label_text(self, label: int) -> str:
        """How every labels and predictions file spells a label: the class name, or
        ``Detection.present_label`` for ``UNKNOWN_GRADE`` (present, class not known);
        ``ValueError`` otherwise. :meth:`label_from_text` reads it back."""
        if label == UNKNOWN_GRADE and self.detection is not None:
            return self.detection.present_label
        return self.class_names[self.parse_label(int(label))]

    def label_from_text(self, text: str) -> int:
        """The inverse of :meth:`label_text` (class names, codes and aliases accepted as well)."""
        if self.detection is not None and str(text).strip() == self.detection.present_label:
            return UNKNOWN_GRADE
        return self.parse_label(text)

    # ------------------------------------------------------------------ records
    def label_schema(self) -> dict[str, Any]:
        """The label schema as a dataset manifest records it."""
        return {
            "version": self.schema_version,
            "task": self.name,
            "classes": [{"index": c.index, "name": c.name, "paper_type": c.code, "reading": c.reading}
                        for c in self.target.classes],
        }

    def summary(self) -> dict[str, Any]:
        """Name, kind, classes, main score and datasets, as ``thyroid-bench tasks --json`` prints."""
        return {"name": self.name, "kind": self.target.kind,
                "classes": [self.class_label(c.index) for c in self.target.classes],
                "main_score": f"{self.main_score.split} {self.main_score.metric}",
                "datasets": list(self.datasets), "reference": self.reference.citation,
                "doi": self.reference.doi, "description": self.description}


def _label_key(text: str) -> str:
    return text.strip().lower().replace("-", "_").replace(" ", "_")
