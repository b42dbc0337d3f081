"""Copies refused (thyroid_bench/leaderboard/copies.py): another entry's predictions under
another seed or model name, byte for byte or re-written, at submit and on every load."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from test_leaderboard import edit_entry, make_dataset, make_run, snapshot
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard import LeaderboardError, SubmissionError, submit
from thyroid_bench.leaderboard.checks import check_run
from thyroid_bench.leaderboard.names import entry_id
from thyroid_bench.leaderboard.recheck import load_checked
from thyroid_bench.tasks.four_pattern import FOUR_PATTERN


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """tiny-lb 1.0.0 and a leaderboard holding one run (toy-a, seed 0)."""
    base = tmp_path_factory.mktemp("copies")
    home = base / "home"
    dataset = make_dataset(home)
    original = make_run(base / "toy-a-s0", dataset)
    lb = base / "lb"
    stored = submit(original, leaderboard=lb, home=home).paths[0]
    return {"home": home, "dataset": dataset, "original": original, "lb": lb, "stored": stored}


@pytest.fixture
def lb(world, tmp_path) -> Path:
    """A fresh copy of the one-entry leaderboard."""
    return Path(shutil.copytree(world["lb"], tmp_path / "lb"))


def _copy(world, dest: Path, **changes) -> Path:
    """The original run folder copied with ``seed`` or ``model`` changed in entry.json only."""
    run = Path(shutil.copytree(world["original"], dest))

    def change(d):
        if "seed" in changes:
            d["seed"] = changes["seed"]
        if "model" in changes:
            d["model"]["name"] = changes["model"]
    edit_entry(run, change)
    return run


def _probs(run: Path) -> dict[str, np.ndarray]:
    return {s: read_predictions(run / "predictions" / f"{s}.csv", FOUR_PATTERN).probs
            for s in ("internal", "external")}


@pytest.mark.parametrize("changes", [{"seed": 9}, {"model": "another-net"}],
                         ids=["seed changed", "model renamed"])
def test_copied_folder_with_another_seed_or_model_is_refused_naming_the_original(
        world, lb, tmp_path, changes):
    copy = _copy(world, tmp_path / "copy", **changes)
    before = snapshot(lb)
    with pytest.raises(SubmissionError) as info:
        submit(copy, leaderboard=lb, home=world["home"])
    message = str(info.value)
    assert info.value.check == "copy"
    assert world["stored"].name in message and "(model toy-a, seed 0)" in message
    assert "internal predictions (predictions/internal.csv) are byte-identical" in message
    assert snapshot(lb) == before


def test_copy_of_another_run_of_the_same_call_is_refused(world, tmp_path):
    copy = _copy(world, tmp_path / "copy", seed=9)
    with pytest.raises(SubmissionError) as info:
        submit([world["original"], copy], leaderboard=tmp_path / "fresh", home=world["home"])
    assert info.value.check == "copy" and info.value.run_dir == copy
    assert f"at {world['original']}" in str(info.value)
    assert not (tmp_path / "fresh").exists()


def test_rewritten_predictions_that_agree_are_refused_and_a_real_difference_is_not(world, lb, tmp_path):
    probs = _probs(world["original"])
    # The same probabilities, nudged below the tolerance: other bytes, the same predictions.
    nudged = {s: p + np.where(np.arange(p.shape[1]) == p.argmax(axis=1)[:, None], -4e-7, 4e-7 / 3)
              for s, p in probs.items()}
    agree = make_run(tmp_path / "agree", world["dataset"], seed=9, probs=nudged)
    assert sha256_file(agree / "predictions" / "external.csv") != sha256_file(
        world["original"] / "predictions" / "external.csv")
    with pytest.raises(SubmissionError) as info:
        submit(agree, leaderboard=lb, home=world["home"])
    assert info.value.check == "copy"
    assert f"are those of entry {world['stored'].name} (model toy-a, seed 0)" in str(info.value)
    # The reviewer's evasion: one case of each split moved far past the tolerance (0.05) and
    # the rest left as they are; the median difference over the uncertain cases stays 0.
    moved = {s: p.copy() for s, p in probs.items()}
    for p in moved.values():
        top, runner_up = np.argsort(p[0])[::-1][:2]
        p[0, [top, runner_up]] += [-0.05, 0.05]
    nudged_run = make_run(tmp_path / "moved", world["dataset"], seed=9, probs=moved)
    with pytest.raises(SubmissionError) as info:
        submit(nudged_run, leaderboard=lb, home=world["home"])
    assert info.value.check == "copy" and "differ by a median of 0" in str(info.value)
    # Another run of the same model (other noise): its own predictions, accepted.
    other = make_run(tmp_path / "other", world["dataset"], seed=9, noise_seed=7)
    assert submit(other, leaderboard=lb, home=world["home"]).entry_ids


def test_two_readers_may_agree_but_one_reader_is_not_three_seeds(world, lb, tmp_path):
    """Hard calls (one-hot rows) of two different readers that agree on every case are two
    entries; the same reader's calls under another seed are a copy."""
    probs = _probs(world["original"])
    calls = {s: np.eye(p.shape[1])[p.argmax(axis=1)] for s, p in probs.items()}
    first = make_run(tmp_path / "reader-1", world["dataset"], model="reader-1", probs=calls)
    second = make_run(tmp_path / "reader-2", world["dataset"], model="reader-2", probs=calls)
    assert len(submit([first, second], leaderboard=lb, home=world["home"]).entry_ids) == 2
    again = make_run(tmp_path / "reader-1-s1", world["dataset"], model="reader-1", seed=1, probs=calls)
    with pytest.raises(SubmissionError) as info:
        submit(again, leaderboard=lb, home=world["home"])
    assert info.value.check == "copy" and "(model reader-1, seed 0)" in str(info.value)


def test_bare_entries_are_compared_by_their_recorded_hashes(world, tmp_path):
    copy = _copy(world, tmp_path / "copy", seed=9)
    original = load_checked(world["lb"]).entries[0].entry
    with pytest.raises(SubmissionError) as info:
        check_run(copy, home=world["home"], existing=[original])
    assert info.value.check == "copy" and "entry toy-a-s0 (model toy-a, seed 0)" in str(info.value)


def test_copy_added_by_hand_is_found_on_load_and_left_out(world, lb):
    """A copy put straight into the folder, named as submit would name it, dated later."""
    original = lb / world["stored"].relative_to(world["lb"])
    data = json.loads((original / "entry.json").read_text())
    data["seed"], data["date"] = 9, "2025-06-01T12:00:00Z"
    hand = Path(shutil.copytree(original, original.parent / "hand"))
    (hand / "entry.json").write_text(json.dumps(data, indent=2))
    target = hand.parent / entry_id(read_entry(hand / "entry.json"), sha256_file(hand / "entry.json"))
    hand.rename(target)
    with pytest.raises(LeaderboardError) as info:
        load_checked(lb)
    # Which of the two is the original cannot be told from what a submitter writes (the hand
    # copy could have been dated earlier): both are named, and neither is ranked.
    message = str(info.value)
    assert "fails check 'copy': its internal predictions" in message
    assert (message.startswith(f"{target}:") and f"entry {original.name} (model toy-a, seed 0)" in message
            ) or (message.startswith(f"{original}:") and f"entry {target.name} (model toy-a, seed 9)" in message)
    checked = load_checked(lb, skip_invalid=True)
    assert checked.entries == []
    assert sorted(str(bad.folder) for bad in checked.invalid) == sorted([str(original), str(target)])
