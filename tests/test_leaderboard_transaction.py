"""The leaderboard as a transaction: submit renders the would-be board before anything moves in,
stored entries are re-checked (figures recomputed) on every load, one writer at a time, output
paths checked before work, files written with the umask's mode."""

from __future__ import annotations

import hashlib
import json
import multiprocessing
import os
import shutil
import stat
import time
from collections import Counter
from pathlib import Path

import pytest

from test_leaderboard import edit_entry, make_dataset, make_run
from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.cli import main
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard import LeaderboardError, SubmissionError, render_leaderboard, submit
from thyroid_bench.leaderboard import recheck
from thyroid_bench.leaderboard.lock import lock_path

REPO = Path(__file__).resolve().parents[1]
SECTION = Path("entries", "four-pattern", "tiny-lb@1.0.0")


def tree_hash(folder: Path) -> str:
    """One SHA-256 over every path under ``folder`` (relative), its kind, mode bits and bytes;
    a fixed value when the folder does not exist."""
    h = hashlib.sha256()
    if not folder.exists():
        return "absent"
    for p in sorted(folder.rglob("*")):
        st = p.lstat()
        h.update(f"{p.relative_to(folder).as_posix()}\0{stat.S_IFMT(st.st_mode)}\0{st.st_mode & 0o7777}\0"
                 .encode())
        if p.is_file():
            h.update(p.read_bytes())
    return h.hexdigest()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset home, a leaderboard with two models (toy-a, toy-b), and a third run to add."""
    base = tmp_path_factory.mktemp("lb-tx")
    home = base / "home"
    dataset = make_dataset(home)
    runs = [make_run(base / "runs" / m, dataset, model=m, skill=s)
            for m, s in (("toy-a", 0.3), ("toy-b", 0.1))]
    lb = base / "lb"
    submit(runs, leaderboard=lb, home=home)
    extra = make_run(base / "runs" / "toy-c", dataset, model="toy-c", skill=0.2)
    return {"home": home, "dataset": dataset, "lb": lb, "extra": extra}


@pytest.fixture
def lb(world, tmp_path) -> Path:
    """A fresh copy of the two-model leaderboard, free to tamper with."""
    return Path(shutil.copytree(world["lb"], tmp_path / "lb"))


def _stored(lb: Path, model: str) -> Path:
    (folder,) = sorted((lb / SECTION).glob(f"{model}-quick-seed0-*"))
    return folder


# --------------------------------------------------------------------------- 1. a transaction
def _crash(*args, **kwargs):
    raise RuntimeError("renderer crashed")


@pytest.mark.parametrize("renderer", ["render_markdown", "render_html"])
def test_renderer_crash_after_checks_leaves_the_folder_byte_identical(world, lb, monkeypatch, renderer):
    """Every check passes, then the renderer raises: the entry is not stored, the pages are
    the old ones, no staging folder is left (the whole tree hashes the same)."""
    import thyroid_bench.leaderboard.render as render

    before = tree_hash(lb)
    monkeypatch.setattr(render, renderer, _crash)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        submit(world["extra"], leaderboard=lb, home=world["home"])
    assert tree_hash(lb) == before
    assert not list(lb.parent.glob(".lb.staging-*"))
    # the renderer fixed, the same submit goes through and the board renders with it
    monkeypatch.undo()
    result = submit(world["extra"], leaderboard=lb, home=world["home"])
    assert result.paths[0].parent == lb / SECTION and "`toy-c`" in (lb / "README.md").read_text()
    assert [p.name for p in lb.iterdir() if p.name.startswith(".")] == []


def test_renderer_crash_on_a_new_leaderboard_creates_nothing(world, tmp_path, monkeypatch):
    import thyroid_bench.leaderboard.render as render

    monkeypatch.setattr(render, "render_html", _crash)
    with pytest.raises(RuntimeError):
        submit(world["extra"], leaderboard=tmp_path / "new", home=world["home"])
    assert not (tmp_path / "new").exists()
    assert {p.name for p in tmp_path.iterdir()} <= {".new.lock"}  # at most the lock, beside it


def test_stored_entry_failing_refuses_submit_and_writes_nothing(world, lb):
    """A board whose stored entry fails its checks takes no new entry until it is repaired."""
    _forge_metric(lb, "toy-b")
    before = tree_hash(lb)
    with pytest.raises(LeaderboardError, match="fails check 'metrics'"):
        submit(world["extra"], leaderboard=lb, home=world["home"])
    assert tree_hash(lb) == before


# --------------------------------------------------------------------------- 2. stored entries re-checked
def _forge_metric(lb: Path, model: str) -> Path:
    """A stored entry's external macro F1 edited to 0.99 and its folder renamed after the new
    SHA-256, so that its name, section and predictions hashes all still agree."""
    folder = _stored(lb, model)
    edit_entry(folder, lambda d: d["metrics"]["external"].update(macro_f1=0.99))
    sha = sha256_file(folder / "entry.json")
    forged = folder.with_name(f"{folder.name.rsplit('-', 1)[0]}-{sha[:8]}")
    folder.rename(forged)
    return forged


def test_forged_stored_metric_is_recomputed_and_refused(lb, capsys):
    forged = _forge_metric(lb, "toy-b")
    before = tree_hash(lb)
    with pytest.raises(LeaderboardError) as info:
        render_leaderboard(lb, write=False)
    message = str(info.value)
    assert message.startswith(f"{forged}: fails check 'metrics' when recomputed from its stored "
                              "predictions and labels: metrics.external.macro_f1: the entry claims 0.99")
    assert "--skip-invalid" in message and "\n" not in message
    for argv in (["leaderboard", "--leaderboard", str(lb)],
                 ["leaderboard", "--leaderboard", str(lb), "--render"]):
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("thyroid-bench leaderboard: error: ")
        assert str(forged) in err
    assert tree_hash(lb) == before


def test_skip_invalid_renders_without_the_entry_and_says_so(lb, capsys):
    forged = _forge_metric(lb, "toy-b")
    assert main(["leaderboard", "--leaderboard", str(lb), "--render", "--skip-invalid"]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith(f"thyroid-bench leaderboard: left out (--skip-invalid): {forged}: "
                                   "fails check 'metrics'")
    assert "toy-a" in captured.out and "toy-b" not in captured.out
    readme = (lb / "README.md").read_text()
    assert "`toy-a`" in readme and "`toy-b`" not in readme


def test_hand_made_entry_folder_is_refused(world, lb, tmp_path):
    """A run folder copied in by hand, claiming figures its predictions do not give."""
    fake = make_run(tmp_path / "fake", world["dataset"], model="toy-z", skill=0.0)
    edit_entry(fake, lambda d: d["metrics"]["external"].update(macro_f1=0.999))
    sha = sha256_file(fake / "entry.json")
    folder = lb / SECTION / f"toy-z-quick-seed0-{sha[:8]}"
    shutil.copytree(fake, folder)
    with pytest.raises(LeaderboardError, match=rf"^{folder}: fails check 'metrics'"):
        render_leaderboard(lb, write=False)


def test_duplicate_stored_entries_are_refused(world, lb, tmp_path):
    """Two stored entries of one experiment (toy-a, quick, seed 0), one copied in by hand."""
    other = make_run(tmp_path / "other", world["dataset"], model="toy-a", skill=0.25, noise_seed=7)
    folder = lb / SECTION / f"toy-a-quick-seed0-{sha256_file(other / 'entry.json')[:8]}"
    shutil.copytree(other, folder)
    names = sorted(p.name for p in (lb / SECTION).glob("toy-a-*"))
    with pytest.raises(LeaderboardError, match=rf"{names[1]}: fails check 'duplicate': the leaderboard "
                       rf"already has {names[0]} for model toy-a, protocol quick@1, seed 0"):
        render_leaderboard(lb, write=False)


def test_section_record_must_match_its_entries(lb):
    path = lb / SECTION / "dataset.json"
    info = json.loads(path.read_text())
    info["synthetic"] = False
    path.write_text(json.dumps(info, indent=2))
    with pytest.raises(LeaderboardError, match=r"entry\.json: dataset\.synthetic is True, its section's "
                       r".*dataset\.json says False"):
        render_leaderboard(lb, write=False)


def test_section_record_pins_each_labels_file(lb):
    info = json.loads((lb / SECTION / "dataset.json").read_text())
    assert {s: v["sha256"] for s, v in info["splits"].items()} == {
        s: sha256_file(lb / SECTION / "labels" / f"{s}.csv") for s in ("internal", "external")}
    assert {s: v["rows"] for s, v in info["splits"].items()} == {"internal": 40, "external": 40}


def test_committed_section_pins_its_labels_and_every_entry_rechecks():
    """The repository's board: each section's dataset.json pins its committed labels files, and
    every committed entry (of both tasks) recomputes from its stored predictions and labels."""
    sections = sorted((REPO / "leaderboard" / "entries").glob("*/*@*"))
    assert {s.parent.name for s in sections} == {"four-pattern", "residual-tissue"}
    for section in sections:
        info = json.loads((section / "dataset.json").read_text())
        for split in ("internal", "external"):
            assert info["splits"][split]["sha256"] == sha256_file(section / "labels" / f"{split}.csv")
    checked = recheck.load_checked(REPO / "leaderboard")
    on_disk = sorted(p.parent.name for p in (REPO / "leaderboard" / "entries").glob("*/*/*/entry.json"))
    assert sorted(s.entry_id for s in checked.entries) == on_disk and checked.invalid == []
    # four-pattern: the paper's four models under quick@1 (12), timm:resnet18 under quick@1 (3)
    # and all five under quick@2 (15); residual-tissue: five models under quick@1 (15)
    files = (REPO / "leaderboard" / "entries").glob("*/*/*/entry.json")
    assert Counter(f.parts[-4] for f in files) == {"four-pattern": 30, "residual-tissue": 15}
    assert sum(i.split("-seed")[0].endswith("-quick2") for i in on_disk) == 15


def test_recomputations_are_cached_by_content(lb, monkeypatch):
    """A passed recomputation is remembered (in the process and under the dataset home): a new
    process recomputes nothing; any edit to an entry or its section's record recomputes."""
    calls = []
    real = recheck.check_scores
    monkeypatch.setattr(recheck, "check_scores", lambda *a, **k: (calls.append(a[0].name), real(*a, **k)))
    monkeypatch.setattr(recheck, "_PASSED", set())  # a process that has checked nothing yet
    recheck.load_checked(lb)
    assert len(calls) == 2
    monkeypatch.setattr(recheck, "_PASSED", set())  # another process: the marker files answer
    recheck.load_checked(lb)
    assert len(calls) == 2
    # one marker per entry, one for the board's copy check (thyroid_bench/leaderboard/copies.py)
    assert len(list((Path(os.environ["THYROID_BENCH_HOME"]) / recheck.CACHE_FOLDER).iterdir())) == 2 + 1
    path = lb / SECTION / "dataset.json"
    path.write_text(path.read_text() + "\n")  # same record, other bytes: recomputed
    recheck.load_checked(lb)
    assert len(calls) == 4


# --------------------------------------------------------------------------- 5. one writer
def _submit_slowly(run: Path, lb: Path, home: Path, barrier, results) -> None:
    """Submit after a barrier, each run's checks made to last a second longer, so that two
    unserialised submits would both pass their duplicate check before either stores."""
    import thyroid_bench.leaderboard.transaction as tx

    real = tx.check_run

    def slow(*args, **kwargs):
        checked = real(*args, **kwargs)
        time.sleep(1.0)
        return checked

    tx.check_run = slow
    barrier.wait()
    try:
        submit(run, leaderboard=lb, home=home)
        results.put("accepted")
    except SubmissionError as exc:
        results.put(exc.check)


def test_concurrent_submits_of_one_experiment_are_serialised(world, lb, tmp_path):
    """Two processes submit toy-c, quick, seed 0 (two runs, other predictions) at once: one
    is accepted, the other refused as a duplicate of it."""
    runs = [make_run(tmp_path / f"c{i}", world["dataset"], model="toy-c", skill=0.2, noise_seed=i)
            for i in range(2)]
    ctx = multiprocessing.get_context("fork")
    barrier, results = ctx.Barrier(2), ctx.Queue()
    procs = [ctx.Process(target=_submit_slowly, args=(r, lb, world["home"], barrier, results))
             for r in runs]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
    assert [p.exitcode for p in procs] == [0, 0]
    assert sorted(results.get(timeout=5) for _ in procs) == ["accepted", "duplicate"]
    assert len(list((lb / SECTION).glob("toy-c-quick-seed0-*"))) == 1
    assert lock_path(lb) == lb.parent / ".lb.lock"


# --------------------------------------------------------------------------- 7. outputs checked
def test_output_paths_of_the_wrong_kind_are_one_line_errors_before_work(lb, tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    a_dir = tmp_path / "a-dir"
    a_dir.mkdir()
    missing = tmp_path / "no-such.csv"  # never read: the output is refused first
    cases = [
        (["score", str(missing), "--json", str(a_dir)], f"--json {a_dir} is a folder"),
        (["score", str(missing), "--figures", str(a_file)], f"--figures {a_file} is a file"),
        (["score", str(missing), "--json", str(a_file / "out.json")], f"{a_file} is a file, not a folder"),
        (["leaderboard", "--leaderboard", str(lb), "--html", str(a_dir)], f"--html {a_dir} is a folder"),
        (["leaderboard", "--leaderboard", str(a_file), "--render"], f"--leaderboard {a_file} is a file"),
        (["submit", str(a_dir), "--leaderboard", str(a_file)], f"--leaderboard {a_file} is a file"),
        (["leaderboard", "--leaderboard", str(tmp_path / "nowhere")],
         f"no leaderboard folder {tmp_path / 'nowhere'}"),
    ]
    before = tree_hash(tmp_path)
    for argv, says in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and says in err, (argv, err)
    assert tree_hash(tmp_path) == before


@pytest.mark.parametrize("umask", [0o022, 0o027, 0o077])
def test_files_follow_the_umask(world, tmp_path, umask):
    old = os.umask(umask)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
        submit(world["extra"], leaderboard=tmp_path / "lb", home=world["home"])
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.txt").stat().st_mode) == 0o666 & ~umask
    lb = tmp_path / "lb"
    for p in [lb, *lb.rglob("*")]:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(p.stat().st_mode) == want, p
