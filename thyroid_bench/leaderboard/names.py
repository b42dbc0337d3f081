"""How the leaderboard names things: protocol labels, entry ids, section folders, duplicates.

An entry is stored at ``entries/<task>/<dataset>@<version>/<entry id>/``; two entries
with the same task, dataset version, model, protocol label and seed are duplicates.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import Any

from thyroid_bench.evaluation.entry import Entry

__all__ = ["ENTRIES", "compact", "protocol_label", "entry_id", "section_rel", "duplicate_key",
           "describe_key"]

#: The folder of a leaderboard that holds the stored entries.
ENTRIES = "entries"
_SLUG = re.compile(r"[^A-Za-z0-9_.]+")


def _slug(text: str) -> str:
    return _SLUG.sub("-", text.replace(".py:", "-").replace(":", "-")).strip("-.") or "x"


def compact(value: Any) -> str:
    """A parameter value as shown: strings as they are, anything else as compact JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def protocol_label(entry: Entry) -> str:
    """The protocol as shown and grouped: ``name@version``, plus its overrides if any.

    ``quick@1``, ``quick@2`` and ``quick@1`` with ``epochs=1`` are different experiments, so
    they are different rows, never averaged together (and a seed of one is not a duplicate
    of another). An entry made from predictions shows its protocol's bare name.
    """
    from thyroid_bench.harness.protocols import versioned_name

    return _with_overrides(entry, _versioned(entry, versioned_name))


def _versioned(entry: Entry, name_of: Callable[[str, object], str]) -> str:
    """``name_of(name, version)`` of the entry's protocol; an external entry's bare name."""
    from thyroid_bench.harness.protocols import version_of
    from thyroid_bench.leaderboard.rules import EXTERNAL_PROTOCOL

    name = entry.protocol.name
    if name == EXTERNAL_PROTOCOL and entry.origin == "external":
        return name
    return name_of(name, version_of(entry.protocol.parameters))


def _with_overrides(entry: Entry, name: str) -> str:
    if not entry.protocol.overrides:
        return name
    parts = ", ".join(f"{k}={compact(v)}" for k, v in sorted(entry.protocol.overrides.items()))
    return f"{name} ({parts})"


def _id_protocol(entry: Entry) -> str:
    """The protocol's part of an entry id: as before versions for version 1 (``quick``), the
    version appended from version 2 on (``quick2``), so committed ids never change."""
    from thyroid_bench.harness.protocols import version_slug

    return _with_overrides(entry, _versioned(entry, version_slug))


#: Longest model and protocol parts of an entry id: a folder name stays well under 255 bytes.
_MODEL_SLUG_MAX, _PROTOCOL_SLUG_MAX = 64, 96


def entry_id(entry: Entry, entry_sha256: str) -> str:
    """``<model>-<protocol>-seed<seed>-<first 8 hex of the entry file's SHA-256>``, the model
    and protocol parts cut to 64 and 96 characters (the hash keeps the id unique)."""
    model = _slug(entry.model.name)[:_MODEL_SLUG_MAX]
    protocol = _slug(_id_protocol(entry))[:_PROTOCOL_SLUG_MAX]
    return f"{model}-{protocol}-seed{entry.seed}-{entry_sha256[:8]}"


def section_rel(entry: Entry) -> PurePosixPath:
    """``entries/<task>/<dataset>@<version>``: the folder of the entry's section."""
    return PurePosixPath(ENTRIES, _slug(entry.task), f"{entry.dataset.name}@{entry.dataset.version}")


def duplicate_key(entry: Entry) -> tuple:
    """What makes two entries the same experiment: task, dataset version, model, protocol, seed."""
    return (entry.task, entry.dataset.name, entry.dataset.version, entry.model.name,
            protocol_label(entry), entry.seed)


def describe_key(key: tuple) -> str:
    """A :func:`duplicate_key` in words, for the ``duplicate`` check's message."""
    task, name, version, model, protocol, seed = key
    return f"model {model}, protocol {protocol}, seed {seed} on {name}@{version} (task {task})"
