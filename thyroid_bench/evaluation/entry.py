"""Leaderboard entry schema v1: the record a run leaves and the leaderboard checks.

An entry names everything needed to trust and compare a result: the task, the
dataset by name, version and content fingerprint, the model's metadata, the
protocol with all its parameters, the pretrained weights actually used, the
seed, the metrics per split, the predictions files with their SHA-256, the
environment, the wall time, the submitter and the date. It holds no code and
no pickles. Unknown fields are rejected at every level (``extra="forbid"``), and every
field has a bound (:mod:`thyroid_bench.bounds`): names are :data:`~thyroid_bench.bounds.Name` s,
other strings :data:`~thyroid_bench.bounds.Label` s, numbers have ranges (seeds 0 to
2**32 - 1, bootstrap resamples up to :data:`MAX_BOOTSTRAP_RESAMPLES`, ECE bins up to
:data:`MAX_ECE_BINS`, wall time finite up to :data:`MAX_WALL_TIME_S`), free-form metrics and
selection values are finite and bounded, dates are read as UTC.

:func:`write_entry` and :func:`read_entry` are the one place entries are
written to and read from JSON (:func:`read_entry_json`, the strict reader, is the one
place an entry file is parsed); ``Entry.model_json_schema()`` is the published
JSON Schema (``leaderboard/schema/entry-v1.json``).
"""

from __future__ import annotations

import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (AfterValidator, BaseModel, ConfigDict, Field, ValidationError, field_validator,
                      model_validator)

from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.bounds import (
    MAX_INT,
    NAME_MAX,
    NAME_PATTERN,
    SEED_MAX,
    JSONValue,
    Label,
    Name,
    StrictJSONError,
    check_json_value,
    loads_strict,
)
from thyroid_bench.data.manifest import DatasetRef
from thyroid_bench.errors import ThyroidBenchError, validation_problems
from thyroid_bench.models.registry import ModelMeta

__all__ = [
    "ENTRY_SCHEMA_VERSION",
    "MAX_ENTRY_BYTES",
    "MAX_BOOTSTRAP_RESAMPLES",
    "MAX_ECE_BINS",
    "MAX_WALL_TIME_S",
    "EntryError",
    "DatasetRef",
    "ProtocolRecord",
    "PredictionsFile",
    "Environment",
    "Entry",
    "write_entry",
    "read_entry_json",
    "read_entry",
]

ENTRY_SCHEMA_VERSION = 1
#: An entry.json larger than this is refused unread (the committed ones are about 18 kB).
MAX_ENTRY_BYTES = 2 * 1024 * 1024
#: Bootstrap resamples an entry may record per split (each is recomputed on submit).
MAX_BOOTSTRAP_RESAMPLES = 100_000
#: Calibration bins an entry may record per split.
MAX_ECE_BINS = 1000
#: Ten years of wall time: anything longer is not a measurement.
MAX_WALL_TIME_S = 10 * 365 * 24 * 3600.0

_SHA256 = r"^[0-9a-f]{64}$"
_MAX_FIELDS = 64

class EntryError(ThyroidBenchError):
    """An entry file that is missing, not JSON, or not a valid schema-v1 entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


def _scalar(value: Any) -> Any:
    """A protocol parameter: null, a boolean, a bounded number or a bounded string."""
    if isinstance(value, (list, dict)):
        raise ValueError(f"{type(value).__name__} is not a protocol parameter value (null, a "
                         "boolean, a number or a string)")
    return check_json_value(value)


def _override(value: Any) -> Any:
    """A protocol override: a parameter value, and a string one a name (it is shown in the
    row's label)."""
    if isinstance(value, str) and not (len(value) <= NAME_MAX and re.match(NAME_PATTERN, value)):
        raise ValueError(f"{ascii(value[:40])} is not a name (ASCII letters, digits, . _ - : / @ + "
                         f"and space, at most {NAME_MAX} characters)")
    return _scalar(value)


def _split_metrics(value: dict[str, Any]) -> dict[str, Any]:
    """One split's metrics: free-form, but its bootstrap and calibration settings are bounded
    (they size what submit recomputes)."""
    bins = value.get("ece_bins")
    if bins is not None and (type(bins) is not int or not 1 <= bins <= MAX_ECE_BINS):
        raise ValueError(f"ece_bins = {bins!r} is not an integer from 1 to {MAX_ECE_BINS}")
    boot = value.get("bootstrap")
    if boot is not None:
        if not isinstance(boot, dict):
            raise ValueError(f"bootstrap = {boot!r} is not an object (resamples, seed, level)")
        resamples, seed = boot.get("resamples"), boot.get("seed")
        if type(resamples) is not int or not 0 <= resamples <= MAX_BOOTSTRAP_RESAMPLES:
            raise ValueError(f"bootstrap.resamples = {resamples!r} is not an integer from 0 to "
                             f"{MAX_BOOTSTRAP_RESAMPLES}")
        if type(seed) is not int or not 0 <= seed <= SEED_MAX:
            raise ValueError(f"bootstrap.seed = {seed!r} is not an integer from 0 to 2**32 - 1")
    return value


_Param = Annotated[Any, AfterValidator(_scalar), Field(json_schema_extra={
    "type": ["null", "boolean", "integer", "number", "string"]})]
_Override = Annotated[Any, AfterValidator(_override), Field(json_schema_extra={
    "type": ["boolean", "integer", "number", "string"], "maxLength": NAME_MAX, "pattern": NAME_PATTERN})]
_Seed = Annotated[int, Field(ge=0, le=SEED_MAX)]
_SplitMetrics = Annotated[dict[Name, JSONValue], Field(max_length=_MAX_FIELDS * 4),
                          AfterValidator(_split_metrics), Field(json_schema_extra={
                              "description": "metrics.evaluate() of one split; bootstrap.resamples "
                              f"0-{MAX_BOOTSTRAP_RESAMPLES}, bootstrap.seed 0-{SEED_MAX}, ece_bins "
                              f"1-{MAX_ECE_BINS}",
                              "properties": {"ece_bins": {"type": "integer", "minimum": 1,
                                                          "maximum": MAX_ECE_BINS},
                                             "bootstrap": {"type": "object", "properties": {
                                                 "resamples": {"type": "integer", "minimum": 0,
                                                               "maximum": MAX_BOOTSTRAP_RESAMPLES},
                                                 "seed": {"type": "integer", "minimum": 0,
                                                          "maximum": SEED_MAX}},
                                                 "required": ["resamples", "seed"]}}})]


class ProtocolRecord(_Strict):
    """The protocol by name and every one of its parameters as run (overrides applied)."""

    name: Name
    parameters: dict[Name, _Param] = Field(max_length=_MAX_FIELDS)
    overrides: dict[Name, _Override] = Field(default_factory=dict, max_length=_MAX_FIELDS,
                                          description="parameters changed from the named protocol")


class PredictionsFile(_Strict):
    """One predictions CSV of the run, relative to the entry's folder."""

    path: Name = Field(description="POSIX path relative to the entry, e.g. predictions/internal.csv")
    sha256: str = Field(pattern=_SHA256)
    rows: int = Field(ge=0, le=MAX_INT)


class Environment(_Strict):
    """Software and hardware the run used."""

    thyroid_bench: Label
    python: Label
    torch: Label
    timm: Label
    numpy: Label
    platform: Label
    device: Label = Field(description="'cpu' or 'cuda'")
    device_name: Label = Field(description="CPU model or GPU name")
    num_threads: int = Field(ge=1, le=4096, description="torch intra-op threads")
    deterministic: bool = Field(description="torch deterministic algorithms were enforced")
    amp: bool = Field(description="automatic mixed precision was used")


class Entry(_Strict):
    """A leaderboard entry, schema v1."""

    schema_version: Literal[1] = 1
    run_id: Label = Field(description="the run folder's name, e.g. densenet169-quick-20250101T120000Z")
    task: Name = Field(description="task of the label schema, e.g. four-pattern")
    dataset: DatasetRef
    model: ModelMeta
    protocol: ProtocolRecord
    pretrained: Label = Field(description="weights the backbone started from: 'none' (random "
                            "initialisation), a Hub tag such as 'timm/densenet169.tv_in1k', or "
                            "'file:<name>' for a local file")
    pretrained_sha256: str | None = Field(default=None, pattern=_SHA256,
                                          description="SHA-256 of a local weights file")
    seed: _Seed
    selection: dict[Name, JSONValue] = Field(default_factory=dict, max_length=_MAX_FIELDS,
                                             description="model selection on train fold 0: best epoch, score")
    metrics: dict[Name, _SplitMetrics] = Field(max_length=8, description="metrics.evaluate() per split")
    predictions: dict[Name, PredictionsFile] = Field(max_length=8)
    environment: Environment | None = Field(default=None, description="software and hardware of "
                                            "the run; required when origin is 'harness'")
    wall_time_s: float = Field(ge=0, le=MAX_WALL_TIME_S, allow_inf_nan=False,
                               description="training plus evaluation, seconds")
    submitter: Label = Field(min_length=1)
    date: datetime = Field(strict=False, description="UTC time the run finished (a time without "
                           "a time zone is read as UTC)")
    origin: Literal["harness", "external"] = Field(
        default="harness", description="'harness': trained and evaluated by `thyroid-bench run`; "
        "'external': predictions made elsewhere, turned into an entry by `thyroid-bench entry new` "
        "(training not done, nor reproducible, by the harness)")
    checkpoint_sha256: str | None = Field(
        default=None, pattern=_SHA256, description="SHA-256 of the run's model.safetensors (the "
        "checkpoint stays out of the leaderboard; a reproduction check takes the run folder)")
    training_data: Label | None = Field(default=None, description="what the model was trained on, "
                                        "in the submitter's words (external entries)")
    notes: Label | None = Field(default=None, description="free text from the submitter")

    @model_validator(mode="after")
    def _harness_environment(self) -> "Entry":
        """A harness run records its environment (an external entry may not know it)."""
        if self.origin == "harness" and self.environment is None:
            raise ValueError("environment: required for an entry of origin 'harness'")
        return self

    @field_validator("date")
    @classmethod
    def _utc(cls, value: datetime) -> datetime:
        """Every date in UTC, so dates of different entries compare (and sort) as times."""
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        try:
            return value.astimezone(timezone.utc)
        except (OverflowError, ValueError):
            raise ValueError(f"{value.isoformat()} is not a time in UTC's years 1-9999") from None


def write_entry(path: str | os.PathLike, entry: Entry) -> Path:
    """Write ``entry`` as indented strict JSON (no NaN or Infinity; it reads back through
    :func:`read_entry_json`), atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = json.dumps(entry.model_dump(mode="json"), indent=2, allow_nan=False) + "\n"
    try:
        loads_strict(text)  # what is written must read back through read_entry_json
    except StrictJSONError as exc:
        raise EntryError(f"{path}: the entry would not read back as strict JSON ({exc})") from None
    return atomic_write_text(path, text)


def read_entry_json(path: str | os.PathLike) -> Any:
    """The parsed content of an ``entry.json``, read strictly: at most :data:`MAX_ENTRY_BYTES`,
    UTF-8, JSON without NaN or Infinity tokens, duplicate keys, integers beyond ±2**53 or
    nesting deeper than the bounds (:func:`thyroid_bench.bounds.loads_strict`). The one
    reader of entry files: :class:`EntryError` names the file and what to do."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > MAX_ENTRY_BYTES:
            raise EntryError(f"{path}: {size} bytes, more than an entry may hold ({MAX_ENTRY_BYTES}); "
                             "write it with `thyroid-bench run` (entry.json is about 20 kB)")
        with open(path, encoding="utf-8") as f:
            text = f.read(MAX_ENTRY_BYTES + 1)
        return loads_strict(text)
    except (FileNotFoundError, NotADirectoryError):
        raise EntryError(f"{path}: no such entry file (a finished run folder has entry.json; "
                         "a folder with INCOMPLETE did not finish)") from None
    except IsADirectoryError:
        raise EntryError(f"{path}: a folder, not an entry file") from None
    except (StrictJSONError, UnicodeDecodeError) as exc:
        raise EntryError(f"{path}: not strict JSON ({exc}); entries are written by "
                         "`thyroid-bench run` and must not be edited by hand") from None


def read_entry(path: str | os.PathLike) -> Entry:
    """Read and validate an entry; :class:`EntryError` names the file and each bad field."""
    path = Path(path)
    data = read_entry_json(path)
    if isinstance(data, dict) and data.get("schema_version") not in (None, ENTRY_SCHEMA_VERSION):
        raise EntryError(f"{path}: schema_version {data.get('schema_version')!r} is not supported "
                         f"(this thyroid-bench reads {ENTRY_SCHEMA_VERSION})")
    try:
        return Entry.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, 20)
        raise EntryError(f"{path}: not a valid schema-v1 entry: {problems}") from None
