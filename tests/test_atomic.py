"""Atomic writes: complete files appear, interrupted ones leave the old file and no debris."""

from __future__ import annotations

import pytest

from thyroid_bench.atomic import atomic_open, atomic_write_text


def test_complete_write_replaces_the_file(tmp_path):
    target = tmp_path / "sub" / "a.json"
    assert atomic_write_text(target, "one\n") == target
    atomic_write_text(target, "two\n")
    assert target.read_bytes() == b"two\n"
    assert sorted(p.name for p in target.parent.iterdir()) == ["a.json"]


def test_interrupted_write_keeps_the_old_file(tmp_path):
    target = tmp_path / "a.csv"
    target.write_text("old\n")
    with pytest.raises(KeyboardInterrupt):
        with atomic_open(target) as f:
            f.write("half a ")
            raise KeyboardInterrupt
    assert target.read_text() == "old\n"
    assert [p.name for p in tmp_path.iterdir()] == ["a.csv"]
