"""The manifest as one typed object: read back, the dataset reference, and hand edits refused."""

from __future__ import annotations

import json

import pytest

from thyroid_bench.cli import main
from thyroid_bench.data.format import write_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.verify import verify_dataset, verify_or_raise
from thyroid_bench.errors import DatasetError, VerificationError
from thyroid_bench.hashing import sha256_file


@pytest.fixture
def dataset(tiny_splits, tmp_path):
    return write_dataset("toy", "1.0.0", tiny_splits, home=tmp_path, card="# toy\n")


def _edit(path, change):
    data = json.loads((path / "manifest.json").read_text())
    change(data)
    (path / "manifest.json").write_text(json.dumps(data))


def test_manifest_reads_back_as_written_and_names_its_dataset(dataset):
    m = read_manifest(dataset)
    on_disk = json.loads((dataset / "manifest.json").read_text())
    assert m.model_dump(mode="json") == on_disk  # one object, written and read in one place
    ref = m.dataset_ref()
    assert (ref.name, ref.version, ref.fingerprint, ref.synthetic) == ("toy", "1.0.0", on_disk["fingerprint"], False)
    assert ref.spec == "toy@1.0.0" and m.get_task().name == "four-pattern" and m.rows == 36
    assert verify_or_raise(dataset) == m


@pytest.mark.parametrize("change, match", [
    (lambda d: d.update(task=5), "task: Input should be a valid string"),
    (lambda d: d.update(colour="red"), "colour: Extra inputs are not permitted"),
    (lambda d: d["splits"]["train"].update(rows="many"), "splits.train.rows"),
    (lambda d: d.pop("fingerprint"), r"missing key\(s\) \['fingerprint'\]"),
    (lambda d: d.update(format_version=2), "format_version 2 is not supported"),
    (lambda d: d.update(version="v1"), "version: String should match pattern"),
    (lambda d: d.update(fingerprint="abc"), "fingerprint: String should match pattern"),
])
def test_a_hand_edited_manifest_is_refused_naming_the_field(dataset, change, match):
    _edit(dataset, change)
    with pytest.raises(DatasetError, match=match):
        read_manifest(dataset)
    report = verify_dataset(dataset)
    assert not report.ok and str(dataset / "manifest.json") in report.problems[0]


def test_an_unknown_task_or_another_label_schema_fails_verification(dataset, capsys):
    _edit(dataset, lambda d: d["label_schema"]["classes"][2].update(name="hot_nodule"))
    assert any("label_schema differs from the label schema v1 of task four-pattern" in p
               for p in verify_dataset(dataset).problems)
    _edit(dataset, lambda d: d.update(task="four-patern"))
    report = verify_dataset(dataset)
    assert (report.name, report.version) == ("toy", "1.0.0")
    assert report.problems == [f"{dataset / 'manifest.json'}: dataset toy 1.0.0 is for unknown task "
                               "'four-patern'; did you mean four-pattern? known: four-pattern, residual-tissue "
                               "(a newer thyroid-bench, or the package defining it, may be needed)"]
    assert main(["tasks", "--home", str(dataset.parent.parent)]) == 0
    assert "task 'four-patern' (not registered here): toy@1.0.0 (prepared)" in capsys.readouterr().out
    with pytest.raises(VerificationError, match="so nothing was trained"):
        verify_or_raise(dataset, consequence="nothing was trained")
    before = sha256_file(dataset / "manifest.json")
    assert main(["run", "--model", "timm:test_resnet", "--dataset", str(dataset), "--epochs", "1",
                 "--out", str(dataset.parent / "run"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "unknown task 'four-patern'" in err and "nothing was trained" in err
    assert not (dataset.parent / "run").exists() and sha256_file(dataset / "manifest.json") == before
