"""The archive walk (data/dicom/walk.py): nothing is lost without a word.

Permission cases run as ``nobody`` in a forked child (thyroid_bench/testing/as_user.py), since
root reads every folder whatever its mode; they are skipped where privileges cannot be dropped.
The property test builds random trees of files, folders, links (to files, to folders, to an
ancestor, broken, to themselves), FIFOs, names that are not UTF-8, and folders and files that
``nobody`` cannot list, enter or read; it checks the walk against a model of what that user
may do, and that every entry root sees is accounted for exactly once.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.dicom.walk import walk_archive
from thyroid_bench.errors import DatasetError, printable
from thyroid_bench.testing.as_user import SKIP_REASON, can_drop_privileges, run_as_user, shared_temp_dir
from thyroid_bench.testing.dicom_writer import FILLER_CENTERS, filler_rows, write_archive

FILL = len(filler_rows())  # studies added so that every split and fold has one

as_nobody = pytest.mark.skipif(not can_drop_privileges(), reason=SKIP_REASON)

# Folder modes (owner root; 'other' bits apply to nobody): listable and enterable, enterable
# only, listable only, neither. File modes: readable, not readable.
DIR_MODES = (0o755, 0o711, 0o744, 0o700)
FILE_MODES = (0o644, 0o600)
KINDS = ("dir", "file", "fifo", "link_file", "link_dir", "link_up", "link_self", "link_broken")


@pytest.fixture
def shared():
    path = shared_temp_dir()
    yield path
    shutil.rmtree(path, ignore_errors=True)


# --------------------------------------------------------------------------- the model
node = st.tuples(st.sampled_from(KINDS), st.integers(0, 3), st.integers(0, 10), st.booleans())
trees = st.lists(node, max_size=14)


def _build(root: Path, spec) -> list[dict]:
    """Create the tree ``spec`` describes under ``root``; return its nodes (path, kind, mode)."""
    nodes: list[dict] = []
    dirs = [-1]  # -1: the root
    for i, (kind, mode_i, pick, odd_name) in enumerate(spec):
        parent = dirs[pick % len(dirs)]
        name = f"n{i}" + ("\udcff\udce9" if odd_name else "")  # bytes ff e9: not UTF-8
        rel = name if parent < 0 else f"{nodes[parent]['rel']}/{name}"
        path = root / rel
        files = [j for j, n in enumerate(nodes) if n["kind"] == "file"]
        target = None
        if kind == "dir":
            path.mkdir()
            dirs.append(i)
        elif kind == "file":
            path.write_bytes(b"x")
        elif kind == "fifo":
            os.mkfifo(path)
        elif kind == "link_file" and files:
            target = files[pick % len(files)]
            path.symlink_to(root / nodes[target]["rel"])
        elif kind == "link_dir":
            to = dirs[pick % len(dirs)]
            path.symlink_to(root / nodes[to]["rel"] if to >= 0 else root)
        elif kind == "link_up":
            path.symlink_to("..")
        elif kind == "link_self":
            path.symlink_to(name)
        else:
            kind = "link_broken"
            path.symlink_to("no-such-file")
        mode = DIR_MODES[mode_i] if kind == "dir" else FILE_MODES[mode_i % 2] if kind == "file" else None
        nodes.append({"rel": rel, "kind": kind, "mode": mode, "parent": parent, "target": target})
    for n in reversed(nodes):  # modes last, deepest first
        if n["mode"] is not None:
            os.chmod(root / n["rel"], n["mode"])
    return nodes


def _expected(nodes: list[dict]) -> tuple[list[str], dict[str, bool]]:
    """What nobody's walk must give: the files, and each problem path -> whether a folder."""
    files: list[str] = []
    problems: dict[str, bool] = {}

    def enterable_path(i: int) -> bool:  # every folder above node i can be entered
        p = nodes[i]["parent"]
        while p >= 0:
            if not nodes[p]["mode"] & 0o001:
                return False
            p = nodes[p]["parent"]
        return True

    def walk(parent: int) -> None:
        mode = 0o755 if parent < 0 else nodes[parent]["mode"]
        where = "." if parent < 0 else nodes[parent]["rel"]
        children = [i for i, n in enumerate(nodes) if n["parent"] == parent]
        if not mode & 0o004 or (children and not mode & 0o001):
            problems[where] = True
            return
        for i in children:
            n = nodes[i]
            if n["kind"] == "dir":
                walk(i)
            elif n["kind"] == "file" and not n["mode"] & 0o004:
                problems[n["rel"]] = False
            elif (n["kind"] == "link_file" and enterable_path(n["target"])
                  and not nodes[n["target"]]["mode"] & 0o004):
                problems[n["rel"]] = False
            else:
                files.append(n["rel"])

    walk(-1)
    return sorted(files), problems


def _walk_or_problem(root: Path):
    """Nobody's walk (with --skip-unreadable), as plain data; a refusal as its message."""
    try:
        listing = walk_archive(root, skip_unreadable=True)
    except DatasetError as exc:
        return str(exc)
    return listing.files, {p.path: p.folder for p in listing.problems}


def _accounted(root: Path, files: list[str], problems: dict[str, bool]) -> None:
    """Every entry root sees is a listed file, a problem, or inside a problem folder; once."""
    seen_by_root = []
    for dirpath, dirnames, filenames in os.walk(root):
        rel = Path(dirpath).relative_to(root)
        links = [d for d in dirnames if (Path(dirpath) / d).is_symlink()]
        seen_by_root += [(rel / n).as_posix() for n in filenames + links]
    assert len(set(files)) == len(files) and not set(files) & set(problems)
    folders = [p for p, is_folder in problems.items() if is_folder]
    for entry in seen_by_root:
        inside = [f for f in folders if f == "." or entry.startswith(f + "/")]
        assert (entry in files) + (entry in problems) + bool(inside) == 1, entry


@as_nobody
@settings(max_examples=60, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(spec=trees)
def test_walk_accounts_for_every_entry_as_an_unprivileged_user(shared, spec):
    root = shared / "archive"
    if root.exists():
        shutil.rmtree(root)
    root.mkdir()
    os.chmod(root, 0o755)
    nodes = _build(root, spec)
    got = run_as_user(_walk_or_problem, root, timeout=30)
    files, problems = _expected(nodes)
    assert got == (files, problems)
    _accounted(root, files, problems)
    # Without --skip-unreadable any problem is a refusal naming it, in one line.
    if problems:
        with pytest.raises(DatasetError) as err:
            run_as_user(walk_archive, root, timeout=30)
        message = str(err.value)
        assert "\n" not in message and "--skip-unreadable" in message
        assert printable(sorted(problems)[0]) in message


# --------------------------------------------------------------------------- end to end
def _archive(shared: Path):
    """Six readable DICOM files, two of them moved into a folder nobody cannot list."""
    rng = np.random.default_rng(3)
    rows = [{"image": rng.poisson(6.0, (8, 8)).astype(np.uint16), "label": i % 4,
             "patient": f"p{i}"} for i in range(6)]
    archive = write_archive(shared / "a", rows + filler_rows())
    hidden = archive.root / "hidden"
    hidden.mkdir()
    text = archive.labels_csv.read_text()
    for i, s in enumerate(archive.studies[:2]):
        (archive.root / s.path).rename(hidden / f"h{i}.dcm")
        text = text.replace(f"{s.path},", f"hidden/h{i}.dcm,")
    (shared / "labels.csv").write_text(text)
    for dirpath, dirnames, filenames in os.walk(shared):
        for d in dirnames:
            os.chmod(Path(dirpath) / d, 0o755)
        for f in filenames:
            os.chmod(Path(dirpath) / f, 0o644)
    os.chmod(hidden, 0o700)  # root's: nobody cannot list it
    return archive


def _prepare(shared: Path, skip: bool, home: str = "home") -> dict:
    path = prepare_dicom(dicom_dir=shared / "a", labels=shared / "labels.csv", name="walk",
                         version="1.0.0", key_file=shared / home / "k.key", home=shared / home,
                         workers=1, skip_unreadable=skip, external_centers=[FILLER_CENTERS[1]])
    return json.loads((path / "manifest.json").read_text())["provenance"]["ingest"]


@as_nobody
def test_a_folder_that_cannot_be_listed_stops_the_run_or_is_rejected(shared, capfd):
    _archive(shared)
    # As root first (it reads the folder: 6 files), which also imports every module the run
    # needs: the child as nobody cannot read the interpreter's library under /root.
    ingest = _prepare(shared, False, home="root-home")
    assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"]) == (6 + FILL, 6 + FILL, 0)
    capfd.readouterr()
    # The defect: os.walk skipped the folder, "4 files seen = 4 ingested + 0 rejected" with 6
    # files on disk. Now the run stops first, naming the folder, and writes nothing.
    with pytest.raises(DatasetError, match=r"1 entry could not be read \(hidden/: folder cannot "
                                           r"be listed \(permission denied\)\).*--skip-unreadable"):
        run_as_user(_prepare, shared, False)
    assert not (shared / "home" / "walk").exists()
    # With --skip-unreadable the folder is one rejected entry: seen = ingested + rejected.
    ingest = run_as_user(_prepare, shared, True)
    assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"]) == (5 + FILL, 4 + FILL, 1)
    assert f"{5 + FILL} files seen = {4 + FILL} ingested + 1 rejected" in capfd.readouterr().out


def test_names_that_are_not_utf8_never_crash_and_are_written_escaped(tmp_path, capsys):
    rng = np.random.default_rng(4)
    rows = [{"image": rng.poisson(6.0, (8, 8)).astype(np.uint16), "label": i % 4,
             "patient": f"p{i}"} for i in range(4)]
    archive = write_archive(tmp_path / "a", rows + filler_rows())
    odd = archive.root / "d\udcff\udce9r"  # bytes ff e9: a folder name that is not UTF-8
    odd.mkdir()
    (odd / "notes-\udcfe.txt").write_bytes(b"not DICOM")
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="odd",
                         version="1.0.0", key_file=tmp_path / "k.key", home=tmp_path / "h", workers=1,
                         external_centers=[FILLER_CENTERS[1]])
    out = capsys.readouterr().out
    assert f"{5 + FILL} files seen = {4 + FILL} ingested + 1 rejected" in out
    text = "".join(p.read_text(encoding="utf-8") for p in [*path.rglob("*.csv"), *path.rglob("*.md")])
    assert "\udcff" not in text  # every written file is valid UTF-8 (read_text would fail)
    report = [p for p in tmp_path.rglob("*") if p.is_file() and "\\xff\\xe9" in p.read_text(
        encoding="utf-8", errors="replace")]
    assert report, "the organiser's report names the file, escaped"


def test_an_entry_that_vanishes_is_a_problem_and_a_file_gone_before_reading_a_rejection(
        tmp_path, monkeypatch):
    from thyroid_bench.data.dicom import walk
    from thyroid_bench.data.dicom.ingest import read_dicom_file

    (tmp_path / "a").mkdir()
    for name in ("one.dcm", "two.dcm"):
        (tmp_path / "a" / name).write_bytes(b"x")
    real = os.lstat

    def racing(path, *args, **kwargs):  # two.dcm is deleted between listing and looking
        if str(path).endswith("two.dcm"):
            raise FileNotFoundError(2, "No such file or directory", str(path))
        return real(path, *args, **kwargs)

    monkeypatch.setattr(walk.os, "lstat", racing)
    listing = walk_archive(tmp_path / "a", skip_unreadable=True)
    assert listing.files == ["one.dcm"] and listing.seen == 2
    assert listing.rejected() == [{"file": "two.dcm", "reason": "vanished while the archive was listed",
                                   "labels_line": None}]
    with pytest.raises(DatasetError, match=r"1 entry could not be read \(two.dcm: vanished"):
        walk_archive(tmp_path / "a")
    monkeypatch.undo()
    (tmp_path / "a" / "one.dcm").unlink()
    out = read_dicom_file(tmp_path / "a" / "one.dcm", "one.dcm")
    assert out["reason"] == "vanished after the archive was listed"
