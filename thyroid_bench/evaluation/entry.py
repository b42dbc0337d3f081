"""Leaderboard entry schema v1: the record a run leaves and the leaderboard checks.

An entry names everything needed to trust and compare a result: the task, the
dataset by name, version and content fingerprint, the model's metadata, the
protocol with all its parameters, the pretrained weights actually used, the
seed, the metrics per split, the predictions files with their SHA-256, the
environment, the wall time, the submitter and the date. It holds no code and
no pickles. Unknown fields are rejected at every level (``extra="forbid"``).

:func:`write_entry` and :func:`read_entry` are the one place entries are
written to and read from JSON; ``Entry.model_json_schema()`` is the published
JSON Schema (``leaderboard/schema/entry-v1.json``).
"""

from __future__ import annotations

import json
import os
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.data.manifest import DatasetRef
from thyroid_bench.errors import ThyroidBenchError, validation_problems
from thyroid_bench.models.registry import ModelMeta

__all__ = [
    "ENTRY_SCHEMA_VERSION",
    "EntryError",
    "DatasetRef",
    "ProtocolRecord",
    "PredictionsFile",
    "Environment",
    "Entry",
    "write_entry",
    "read_entry",
]

ENTRY_SCHEMA_VERSION = 1

_SHA256 = r"^[0-9a-f]{64}$"


class EntryError(ThyroidBenchError):
    """An entry file that is missing, not JSON, or not a valid schema-v1 entry."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ProtocolRecord(_Strict):
    """The protocol by name and every one of its parameters as run (overrides applied)."""

    name: str
    parameters: dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict,
                                      description="parameters changed from the named protocol")


class PredictionsFile(_Strict):
    """One predictions CSV of the run, relative to the entry's folder."""

    path: str = Field(description="POSIX path relative to the entry, e.g. predictions/internal.csv")
    sha256: str = Field(pattern=_SHA256)
    rows: int = Field(ge=0)


class Environment(_Strict):
    """Software and hardware the run used."""

    thyroid_bench: str
    python: str
    torch: str
    timm: str
    numpy: str
    platform: str
    device: str = Field(description="'cpu' or 'cuda'")
    device_name: str = Field(description="CPU model or GPU name")
    num_threads: int = Field(ge=1, description="torch intra-op threads")
    deterministic: bool = Field(description="torch deterministic algorithms were enforced")
    amp: bool = Field(description="automatic mixed precision was used")


class Entry(_Strict):
    """A leaderboard entry, schema v1."""

    schema_version: Literal[1] = 1
    run_id: str = Field(description="the run folder's name, e.g. densenet169-quick-20250101T120000Z")
    task: str = Field(description="task of the label schema, e.g. four-pattern")
    dataset: DatasetRef
    model: ModelMeta
    protocol: ProtocolRecord
    pretrained: str = Field(description="weights the backbone started from: 'none' (random "
                            "initialisation), a Hub tag such as 'timm/densenet169.tv_in1k', or "
                            "'file:<name>' for a local file")
    pretrained_sha256: str | None = Field(default=None, pattern=_SHA256,
                                          description="SHA-256 of a local weights file")
    seed: int
    selection: dict[str, Any] = Field(default_factory=dict,
                                      description="model selection on train fold 0: best epoch, score")
    metrics: dict[str, dict[str, Any]] = Field(description="metrics.evaluate() per split")
    predictions: dict[str, PredictionsFile]
    environment: Environment
    wall_time_s: float = Field(ge=0, description="training plus evaluation, seconds")
    submitter: str
    date: datetime = Field(description="UTC time the run finished")


def write_entry(path: str | os.PathLike, entry: Entry) -> Path:
    """Write ``entry`` as indented JSON, atomically (a temporary file renamed into place)."""
    path = Path(path)
    text = json.dumps(entry.model_dump(mode="json"), indent=2, allow_nan=False) + "\n"
    return atomic_write_text(path, text)


def read_entry(path: str | os.PathLike) -> Entry:
    """Read and validate an entry; :class:`EntryError` names the file and each bad field."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise EntryError(f"{path}: no such entry file (a finished run folder has entry.json; "
                         "a folder with INCOMPLETE did not finish)") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise EntryError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(data, dict) and data.get("schema_version") not in (None, ENTRY_SCHEMA_VERSION):
        raise EntryError(f"{path}: schema_version {data.get('schema_version')!r} is not supported "
                         f"(this thyroid-bench reads {ENTRY_SCHEMA_VERSION})")
    try:
        return Entry.model_validate(data)
    except ValidationError as exc:
        problems = validation_problems(exc, 20)
        raise EntryError(f"{path}: not a valid schema-v1 entry: {problems}") from None
