"""Entry schema v1: round trip, unknown fields rejected, schema version, JSON Schema."""

from __future__ import annotations

import json

import pytest

from thyroid_bench.evaluation.entry import Entry, EntryError, read_entry, write_entry
from thyroid_bench.hashing import sha256_file
from thyroid_bench.models import describe_model


def _entry() -> Entry:
    return Entry(
        run_id="timm-test_resnet-quick-20250101T000000Z", task="four-pattern",
        dataset={"name": "tiny", "version": "1.0.0", "fingerprint": "a" * 64},
        model=describe_model("timm:test_resnet", num_classes=4),
        protocol={"name": "quick", "parameters": {"epochs": 1}},
        pretrained="none", seed=0, metrics={"internal": {"accuracy": 0.5}, "external": {"accuracy": 0.25}},
        predictions={"internal": {"path": "predictions/internal.csv", "sha256": "b" * 64, "rows": 4}},
        environment={"thyroid_bench": "0.1.0", "python": "3.11", "torch": "2", "timm": "1", "numpy": "2",
                     "platform": "linux", "device": "cpu", "device_name": "cpu", "num_threads": 1,
                     "deterministic": True, "amp": False},
        wall_time_s=1.5, submitter="tests", date="2025-01-01T00:00:00Z")


def test_round_trip(tmp_path):
    path = write_entry(tmp_path / "entry.json", _entry())
    back = read_entry(path)
    assert back == _entry()
    data = json.loads(path.read_text())
    assert data["schema_version"] == 1 and data["pretrained"] == "none"
    assert data["date"].startswith("2025-01-01T00:00:00")


@pytest.mark.parametrize("where", [(), ("dataset",), ("model",), ("environment",)])
def test_unknown_fields_rejected(tmp_path, where):
    data = _entry().model_dump(mode="json")
    target = data
    for key in where:
        target = target[key]
    target["unexpected"] = 1
    (tmp_path / "e.json").write_text(json.dumps(data))
    with pytest.raises(EntryError, match="unexpected"):
        read_entry(tmp_path / "e.json")


def test_bad_values_and_versions(tmp_path):
    data = _entry().model_dump(mode="json")
    data["dataset"]["fingerprint"] = "xyz"
    (tmp_path / "e.json").write_text(json.dumps(data))
    with pytest.raises(EntryError, match="dataset.fingerprint"):
        read_entry(tmp_path / "e.json")
    data = _entry().model_dump(mode="json")
    data["schema_version"] = 2
    (tmp_path / "e.json").write_text(json.dumps(data))
    with pytest.raises(EntryError, match="schema_version 2"):
        read_entry(tmp_path / "e.json")
    with pytest.raises(EntryError, match="INCOMPLETE"):
        read_entry(tmp_path / "missing.json")


def test_json_schema_validates_a_written_entry(tmp_path):
    import jsonschema

    schema = Entry.model_json_schema()
    assert schema["additionalProperties"] is False
    data = json.loads(write_entry(tmp_path / "e.json", _entry()).read_text())
    jsonschema.validate(data, schema)
    data["extra"] = 1
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(data, schema)


def test_sha256_file(tmp_path):
    import hashlib

    (tmp_path / "f").write_bytes(b"abc")
    assert sha256_file(tmp_path / "f") == hashlib.sha256(b"abc").hexdigest()


def test_json_schema_carries_the_bounds(tmp_path):
    """The published schema refuses what pydantic refuses: ranges, lengths, character sets."""
    import jsonschema

    schema = Entry.model_json_schema()
    good = json.loads(write_entry(tmp_path / "e.json", _entry()).read_text())
    jsonschema.validate(good, schema)
    for path, value in [(("seed",), -1), (("seed",), 2**32), (("submitter",), "x" * 257),
                        (("submitter",), "a\u202eb"), (("model", "name"), "<b>"),
                        (("wall_time_s",), 1e12), (("environment", "num_threads"), 0),
                        (("metrics", "internal", "bootstrap"), {"resamples": 10**9, "seed": 0}),
                        (("metrics", "internal", "accuracy"), "x" * 2001),
                        (("protocol", "overrides"), {"epochs": "<b>"})]:
        data = json.loads(json.dumps(good))
        target = data
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(data, schema)
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(EntryError):
            read_entry(tmp_path / "bad.json")


def test_model_name_outside_the_name_characters_is_a_model_error(tmp_path):
    from thyroid_bench.models import ModelError

    f = tmp_path / "my (1).py"
    f.write_text("import torch\n\ndef build(num_classes, **kw):\n"
                 "    return torch.nn.Sequential(torch.nn.Conv2d(3, 2, 1), torch.nn.Flatten(),"
                 " torch.nn.Linear(2, num_classes))\n")
    with pytest.raises(ModelError, match=r"metadata is out of the entry's bounds .*model name is ASCII"):
        describe_model(f"{f}:build", num_classes=4)
