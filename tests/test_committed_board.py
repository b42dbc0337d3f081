"""The committed leaderboard, checked the way a results repository's CI checks it.

Every committed entry passes every check of ``submit`` that needs no dataset (schema, task,
protocol, splits, predictions paths and hashes, the pinned fingerprint of its official dataset
version, its section's labels files, every figure re-scored from the stored predictions and
labels, no duplicate, no copy), with nothing taken from a re-check cache. A hand edit of a
copy of the board fails with a message naming the edited file or entry, with the caches warm
from the pristine board (they remember passed checks by content, so an edit is re-checked).
"""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import pytest

from thyroid_bench.cli import main
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard import LeaderboardError
from thyroid_bench.leaderboard import recheck
from thyroid_bench.leaderboard.names import entry_id
from thyroid_bench.leaderboard.recheck import CACHE_FOLDER, load_checked
from thyroid_bench.leaderboard.store import entry_files, read_section_record

BOARD = Path(__file__).resolve().parents[1] / "leaderboard"
SECTIONS = {"four-pattern": "tsb-synthetic@1.0.0", "residual-tissue": "tsb-residual@1.0.0"}


@pytest.fixture(scope="module")
def warm(tmp_path_factory):
    """The committed board loaded once from cold (no passed check remembered, in the process
    or on disk), recording which entries were re-scored; afterwards both caches are warm."""
    home = tmp_path_factory.mktemp("ci-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(recheck, "_PASSED", set())
        mp.setenv("THYROID_BENCH_HOME", str(home))
        rescored: list[Path] = []
        real = recheck.check_scores
        with pytest.MonkeyPatch.context() as spy:
            spy.setattr(recheck, "check_scores",
                        lambda folder, *a, **k: (rescored.append(folder), real(folder, *a, **k))[1])
            cold = not (home / CACHE_FOLDER).exists()
            checked = load_checked(BOARD)
        yield {"home": home, "cold": cold, "checked": checked, "rescored": rescored}


def test_every_committed_entry_passes_every_check_from_cold(warm):
    checked = warm["checked"]
    assert warm["cold"] and checked.invalid == []
    folders = sorted(p.parent for p in entry_files(BOARD))
    assert sorted(s.folder for s in checked.entries) == folders
    assert sorted(warm["rescored"]) == folders  # every figure recomputed, none trusted
    assert {s.entry.task for s in checked.entries} == set(SECTIONS)
    for task, spec in SECTIONS.items():
        record = read_section_record(BOARD / "entries" / task / spec)
        assert record.fingerprint == pinned_fingerprint(record.name, record.version) is not None
    # remembered by content under the dataset home: one per entry, one for the copy check
    assert len(list((warm["home"] / CACHE_FOLDER).iterdir())) == len(folders) + 1


# --------------------------------------------------------------------------- hand edits
def _entry(board: Path, task: str = "four-pattern", model: str = "densenet169", seed: int = 0) -> Path:
    return next((board / "entries" / task / SECTIONS[task]).glob(f"{model}-quick-seed{seed}-*"))


def _edit_json(path: Path, change) -> None:
    data = json.loads(path.read_text(encoding="utf-8"))
    change(data)
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def _renamed(folder: Path) -> Path:
    """A careful forger's next step: the folder renamed to the id its edited entry.json gets, and
    its reproduction record (which attests the unedited entry file, and so would give it away)
    dropped."""
    (folder / "reproduced.json").unlink(missing_ok=True)
    new = folder.parent / entry_id(read_entry(folder / "entry.json"), sha256_file(folder / "entry.json"))
    folder.rename(new)
    return new


def _bump_metric(folder: Path) -> None:
    _edit_json(folder / "entry.json", lambda d: d["metrics"]["external"].update(
        macro_f1=d["metrics"]["external"]["macro_f1"] + 0.01))


def _set_seed(folder: Path, seed: int) -> None:
    _edit_json(folder / "entry.json", lambda d: d.update(seed=seed))


def _edit_rows(path: Path, change) -> None:
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.reader(f))
    change(rows)
    with open(path, "w", newline="", encoding="utf-8") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)


def _swap_first_row(rows: list[list[str]]) -> None:
    """The first case's top probability swapped with its lowest: another predicted class."""
    probs = [float(x) for x in rows[1][1:5]]
    hi, lo = probs.index(max(probs)), probs.index(min(probs))
    rows[1][1 + hi], rows[1][1 + lo] = rows[1][1 + lo], rows[1][1 + hi]


def _relabel_first_case(rows: list[list[str]]) -> None:
    rows[1][1] = "focal_increased" if rows[1][1] != "focal_increased" else "diffusely_increased"


def metric_in_place(board):
    folder = _entry(board)
    _bump_metric(folder)
    return folder / "entry.json", "changed since it was submitted"


def metric_renamed(board):
    folder = _entry(board)
    _bump_metric(folder)
    return _renamed(folder), "fails check 'metrics' when recomputed from its stored predictions"


def seed_in_place(board):
    folder = _entry(board)
    _set_seed(folder, 9)
    return folder / "entry.json", "changed since it was submitted"


def seed_renamed_onto_another_seed(board):
    """Seed 0 relabelled as seed 1, which the board has: one of the two is named a duplicate."""
    stored = _entry(board, seed=1)
    folder = _entry(board, seed=0)
    _set_seed(folder, 1)
    forged = _renamed(folder)
    first, second = sorted([stored, forged])
    return second, f"fails check 'duplicate': the leaderboard already has {first.name} for model densenet169"


def seed_with_the_old_name(board):
    folder = _entry(board)
    _set_seed(folder, 9)
    sha = sha256_file(folder / "entry.json")
    new = folder.with_name(f"{folder.name[:-8]}{sha[:8]}")  # seed0 kept in the name
    folder.rename(new)
    return new / "entry.json", "but its model, protocol and seed name it densenet169-quick-seed9-"


def copy_added(board):
    folder = _entry(board, "residual-tissue")
    copy = Path(shutil.copytree(folder, folder.parent / "copy"))
    _edit_json(copy / "entry.json", lambda d: d.update(seed=9, date="2031-01-01T00:00:00Z"))
    return _renamed(copy), "fails check 'copy': its internal predictions (predictions/internal.csv) are byte-identical"


def row_in_place(board):
    path = _entry(board) / "predictions" / "external.csv"
    _edit_rows(path, _swap_first_row)
    return path, "missing or changed since it was submitted"


def row_with_hashes(board):
    folder = _entry(board)
    _edit_rows(folder / "predictions" / "external.csv", _swap_first_row)
    sha = sha256_file(folder / "predictions" / "external.csv")
    _edit_json(folder / "entry.json", lambda d: d["predictions"]["external"].update(sha256=sha))
    return _renamed(folder), "fails check 'metrics' when recomputed from its stored predictions"


def labels_in_place(board):
    path = board / "entries" / "four-pattern" / SECTIONS["four-pattern"] / "labels" / "external.csv"
    _edit_rows(path, _relabel_first_case)
    return path, "changed since it was stored"


def labels_with_section_record(board):
    section = board / "entries" / "four-pattern" / SECTIONS["four-pattern"]
    _edit_rows(section / "labels" / "external.csv", _relabel_first_case)
    sha = sha256_file(section / "labels" / "external.csv")
    _edit_json(section / "dataset.json", lambda d: d["splits"]["external"].update(sha256=sha))
    first = sorted(p.parent for p in section.glob("*/entry.json"))[0]
    return first, "fails check 'predictions' when recomputed"


def fingerprint_everywhere(board):
    """Section and every entry moved to another build of the official version, consistently."""
    section = board / "entries" / "four-pattern" / SECTIONS["four-pattern"]
    other = "0" * 64
    _edit_json(section / "dataset.json", lambda d: d.update(fingerprint=other))
    for entry in sorted(section.glob("*/entry.json")):
        _edit_json(entry, lambda d: d["dataset"].update(fingerprint=other))
        _renamed(entry.parent)
    first = sorted(p.parent for p in section.glob("*/entry.json"))[0]
    return first, "fails check 'dataset fingerprint': the entry claims fingerprint 0000"


def official_split_made_private(board):
    """The reviewer's attack: an official section's external split marked private, its labels
    file removed, so that figures stored beside the entries could not be re-scored."""
    section = board / "entries" / "four-pattern" / SECTIONS["four-pattern"]
    _edit_json(section / "dataset.json", lambda d: d["splits"]["external"].update(private=True))
    (section / "labels" / "external.csv").unlink()
    return section / "dataset.json", "is an official version, whose labels are public"


EDITS = [metric_in_place, metric_renamed, seed_in_place, seed_renamed_onto_another_seed,
         seed_with_the_old_name, copy_added, row_in_place, row_with_hashes, labels_in_place,
         labels_with_section_record, fingerprint_everywhere, official_split_made_private]


@pytest.mark.parametrize("edit", EDITS, ids=[e.__name__ for e in EDITS])
def test_hand_edit_of_a_copy_fails_naming_it_with_the_cache_warm(warm, tmp_path, monkeypatch, edit):
    monkeypatch.setenv("THYROID_BENCH_HOME", str(warm["home"]))
    board = Path(shutil.copytree(BOARD, tmp_path / "leaderboard"))
    where, says = edit(board)
    with pytest.raises(LeaderboardError) as info:
        load_checked(board)
    assert f"{where}" in str(info.value), str(info.value)
    assert says in str(info.value), str(info.value)


def test_disk_cache_alone_does_not_hide_an_edit_and_the_cli_exits_2(warm, tmp_path, monkeypatch, capsys):
    """A fresh process (nothing remembered in it) with the warm disk cache: the edited entry
    is re-scored; `thyroid-bench leaderboard` prints one error line naming it, exit 2."""
    monkeypatch.setenv("THYROID_BENCH_HOME", str(warm["home"]))
    monkeypatch.setattr(recheck, "_PASSED", set())
    board = Path(shutil.copytree(BOARD, tmp_path / "leaderboard"))
    where, says = metric_renamed(board)
    assert main(["leaderboard", "--leaderboard", str(board)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"thyroid-bench leaderboard: error: {where}: {says}")
    assert "Traceback" not in err and err.count("\n") == 1
