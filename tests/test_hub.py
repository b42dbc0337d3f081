"""`prepare --source hub`: download beside the home, verify, then install; tested with a stand-in Hub."""

from __future__ import annotations

import shutil

import huggingface_hub
import pytest
from huggingface_hub.errors import LocalEntryNotFoundError

from thyroid_bench.data.format import read_split, resolve_dataset, write_dataset
from thyroid_bench.data.hub import prepare_hub
from thyroid_bench.errors import DatasetError, VerificationError


@pytest.fixture
def published(tiny_splits, tmp_path):
    """A dataset version as it would sit in a Hub repository."""
    return write_dataset("toy-hub", "2.1.0", tiny_splits, root=tmp_path / "repo", card="# toy\n")


def _fake_snapshot(source, calls):
    def snapshot_download(*, repo_id, repo_type, revision, local_dir, allow_patterns):
        calls.append((repo_id, repo_type, revision))
        shutil.copytree(source, local_dir, dirs_exist_ok=True)
        return str(local_dir)
    return snapshot_download


def test_hub_download_installs_a_verified_version(published, tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot(published, calls))
    home = tmp_path / "home"
    path = prepare_hub("org/toy-hub", revision="v2.1.0", home=home)
    assert calls == [("org/toy-hub", "dataset", "v2.1.0")]
    assert path == home / "toy-hub" / "2.1.0"
    assert resolve_dataset("toy-hub", home=home) == path
    assert len(read_split(path, "train")) == 20
    assert [p.name for p in home.iterdir()] == ["toy-hub"]  # no temporary folder left


def test_hub_download_of_another_task_installs_nothing(published, tmp_path, monkeypatch):
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot(published, []))
    home = tmp_path / "home"
    with pytest.raises(DatasetError, match="a dataset of task four-pattern, not toy-task; nothing was installed"):
        prepare_hub("org/toy-hub", home=home, task="toy-task")
    assert [p.name for p in home.iterdir()] == []
    assert prepare_hub("org/toy-hub", home=home, task="four-pattern") == home / "toy-hub" / "2.1.0"


def test_hub_download_that_fails_verification_installs_nothing(published, tmp_path, monkeypatch):
    shard = sorted((published / "data").glob("external-*.parquet"))[0]
    shard.write_bytes(b"not parquet")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot(published, []))
    home = tmp_path / "home"
    with pytest.raises(VerificationError, match=r"(?s)org/toy-hub failed verification.*external-00000"):
        prepare_hub("org/toy-hub", home=home)
    assert list(home.iterdir()) == []


def test_unreachable_hub_says_what_to_do(tmp_path, monkeypatch):
    def offline(**kwargs):
        raise LocalEntryNotFoundError("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(DatasetError, match="could not download dataset repository 'org/x'.*pass its path"):
        prepare_hub("org/x", home=tmp_path)
