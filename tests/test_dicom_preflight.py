"""Everyday operating-system failures of ``prepare --source dicom`` are one line, early.

What can be checked before the archive is read (data/dicom/preflight.py) fails before it is
read: the archive is never walked (``walk_archive`` is replaced by a function that fails the
test). Later OS errors (a full disk, simulated by a write raising ENOSPC) are one line naming
the path and what to do, and the CLI prints them without a traceback. Permission cases run as
``nobody`` in a forked child (thyroid_bench/testing/as_user.py), skipped where root cannot
drop privileges.
"""

from __future__ import annotations

import errno
import os
import shutil
import stat
from pathlib import Path

import numpy as np
import pytest

import thyroid_bench.data.format as fmt
from conftest import assert_modes_follow_umask
from thyroid_bench.data.dicom import ingest
from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError, ThyroidBenchError
from thyroid_bench.testing.as_user import SKIP_REASON, can_drop_privileges, run_as_user, shared_temp_dir
from thyroid_bench.testing.dicom_writer import FILLER_CENTERS, filler_rows, write_archive

as_nobody = pytest.mark.skipif(not can_drop_privileges(), reason=SKIP_REASON)


@pytest.fixture(scope="module")
def world():
    """A four-file archive, its labels CSV, a key and a home, all readable by nobody; one
    prepare as root first (it also imports every module a run needs, which the child as
    nobody could not read under /root)."""
    root = shared_temp_dir()
    rng = np.random.default_rng(5)
    rows = [{"image": rng.poisson(6.0, (8, 8)).astype(np.uint16), "label": i % 4,
             "patient": f"p{i}"} for i in range(4)]
    archive = write_archive(root / "a", rows + filler_rows())
    for dirpath, dirnames, filenames in os.walk(root):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o755)
        for f in filenames:
            os.chmod(Path(dirpath) / f, 0o644)
    _run(root, home=root / "warm-home", key_file=root / "warm" / "k.key")
    yield root, archive
    shutil.rmtree(root, ignore_errors=True)


def _run(root: Path, **options) -> Path:
    args = dict(dicom_dir=root / "a", labels=root / "labels.csv", name="pre", version="1.0.0",
                key_file=root / "keys" / "k.key", home=root / "home", workers=1,
                external_centers=[FILLER_CENTERS[1]])
    args.update(options)
    return prepare_dicom(**args)


@pytest.fixture
def no_walk(monkeypatch):
    """The archive must not be read: walking it fails the test."""
    def walk(*args, **kwargs):
        raise AssertionError("the archive was read before the options were checked")

    monkeypatch.setattr(ingest, "walk_archive", walk)


def _one_line(exc_info) -> str:
    message = str(exc_info.value)
    assert "\n" not in message, message
    return message


def test_labels_naming_a_folder_and_home_naming_a_file_fail_first(world, no_walk, tmp_path):
    root, _ = world
    with pytest.raises(DatasetError) as err:
        _run(root, labels=root / "a", home=tmp_path / "h")
    assert "--labels" in _one_line(err) and "is a folder; give the path of the labels CSV" in str(err.value)
    (tmp_path / "home-file").write_text("")
    with pytest.raises(ThyroidBenchError) as err:
        _run(root, home=tmp_path / "home-file")
    assert "--home" in _one_line(err) and "is a file" in str(err.value)
    with pytest.raises(DatasetError, match="--labels .* not found"):
        _run(root, labels=tmp_path / "missing.csv", home=tmp_path / "h")


@as_nobody
def test_unwritable_home_unreadable_labels_and_key_fail_first_as_a_user(world, no_walk):
    root, _ = world
    locked = root / "locked"  # root's, mode 0755: nobody may not write in it
    locked.mkdir(exist_ok=True)
    os.chmod(locked, 0o755)
    with pytest.raises(DatasetError) as err:
        run_as_user(_run, root, home=locked / "home")
    assert "--home" in _one_line(err) and str(locked) in str(err.value) and "chmod" in str(err.value)
    secret = root / "secret.csv"  # root's, mode 0600
    shutil.copy(root / "labels.csv", secret)
    os.chmod(secret, 0o600)
    with pytest.raises(DatasetError) as err:
        run_as_user(_run, root, labels=secret)
    assert _one_line(err).startswith("--labels: cannot read the labels CSV: ")
    assert str(secret) in str(err.value) and "Permission denied" in str(err.value)
    key = root / "root.key"
    key.write_bytes(os.urandom(32))
    os.chmod(key, 0o600)
    with pytest.raises(DatasetError) as err:
        run_as_user(_run, root, key_file=key)
    assert "--key-file" in _one_line(err) and "Permission denied" in str(err.value)
    with pytest.raises(DatasetError) as err:  # a new key in a folder nobody may not write
        run_as_user(_run, root, key_file=locked / "new.key")
    assert "--key-file" in _one_line(err) and "a new pseudonym key" in str(err.value)
    assert not (locked / "new.key").exists()


@as_nobody
def test_a_folder_that_can_be_listed_but_not_entered_is_one_line(world):
    root, archive = world
    sub = archive.root / archive.studies[0].path.split("/")[0]
    os.chmod(sub, 0o744)  # names visible to nobody, files not
    try:
        with pytest.raises(DatasetError) as err:
            run_as_user(_run, root, home=root / "h-enter")
        assert "can be listed but not entered" in _one_line(err)
        os.chmod(archive.root, 0o744)  # the archive folder itself
        with pytest.raises(DatasetError) as err:
            run_as_user(_run, root, home=root / "h-enter")
        assert "--dicom-dir" in _one_line(err) and "cannot be listed and entered" in str(err.value)
    finally:
        os.chmod(archive.root, 0o755)
        os.chmod(sub, 0o755)


def test_a_full_disk_is_one_line_and_the_old_version_survives(world, tmp_path, monkeypatch, capsys):
    root, _ = world
    home = tmp_path / "home"
    old = _run(root, home=home, key_file=tmp_path / "k.key")
    before = (old / "manifest.json").read_bytes()

    def full(table, path, task):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(fmt, "_write_shard", full)
    with pytest.raises(DatasetError) as err:
        _run(root, home=home, key_file=tmp_path / "k.key", force=True)
    message = _one_line(err)
    assert message.startswith(f"could not write dataset {old}: ")
    assert "No space left on device; the disk is full" in message and "--home" in message
    assert (old / "manifest.json").read_bytes() == before and verify_dataset(old).ok
    assert [p.name for p in (home / "pre").iterdir() if p.name.startswith(".tmp")] == []
    # The command line prints it as one line, exit status 2, no traceback.
    from thyroid_bench.cli import main

    rc = main(["prepare", "--source", "dicom", "--dicom-dir", str(root / "a"), "--labels",
               str(root / "labels.csv"), "--name", "pre", "--version", "1.0.0", "--key-file",
               str(tmp_path / "k.key"), "--home", str(home), "--force", "--workers", "1",
               "--external-center", FILLER_CENTERS[1]])
    err_text = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err_text
    lines = [line for line in err_text.splitlines() if "error:" in line]
    assert len(lines) == 1 and lines[0].startswith(f"thyroid-bench prepare: error: could not write "
                                                   f"dataset {old}: ")
    assert "No space left on device; the disk is full" in lines[0]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_a_prepared_dicom_dataset_follows_the_umask_but_the_key(world, tmp_path, umask):
    root, _ = world
    old = os.umask(umask)
    try:
        path = _run(root, home=tmp_path / "home", key_file=tmp_path / "keys" / "k.key")
    finally:
        os.umask(old)
    assert_modes_follow_umask(path, umask)
    assert stat.S_IMODE((tmp_path / "keys" / "k.key").stat().st_mode) == 0o600  # on purpose
