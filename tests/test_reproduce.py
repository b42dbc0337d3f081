"""Reproduction of entries: `submit --reproduce/--retrain`, `leaderboard check --runs`, the
record `reproduced.json` and what the page marks, and run folders on the Hub (a stand-in).

Two real harness runs (timm:test_resnet, one epoch, one CPU thread, seeds 0 and 1) on the tiny
dataset of conftest are made once; CPU runs are bit-identical, so every reproduction here has
a largest difference of exactly 0.
"""

from __future__ import annotations

import csv
import json
import pickle
import shutil
from pathlib import Path

import numpy as np
import pytest
from huggingface_hub.utils import filter_repo_objects

from thyroid_bench.cli import main
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.hashing import sha256_file
from thyroid_bench.harness.run import run as harness_run
from thyroid_bench.leaderboard import LeaderboardError, SubmissionError, submit
from thyroid_bench.leaderboard.board_check import check_leaderboard
from thyroid_bench.leaderboard.errors import ReproductionError
from thyroid_bench.leaderboard.recheck import load_checked
from thyroid_bench.leaderboard.reproduce import (
    RECORD_FILE,
    read_record,
    read_run_config,
    reproduce_run,
    row_mark,
    write_record,
)
from thyroid_bench.leaderboard.rules import REPRODUCTION_TOLERANCE
from thyroid_bench.leaderboard.run_location import parse_hub_location
from thyroid_bench.leaderboard.store import StoredEntry, load_entries
from thyroid_bench.version import __version__

MODEL = "timm:test_resnet"


@pytest.fixture(scope="module")
def runs(tiny_run_dataset, tmp_path_factory):
    """Two finished run folders of seeds 0 and 1, and the dataset home holding their dataset."""
    base = tmp_path_factory.mktemp("reproduce-runs")
    made = {seed: harness_run(MODEL, protocol="quick", epochs=1, batch_size=8, num_threads=1,
                              device="cpu", dataset=tiny_run_dataset, out=base / f"seed{seed}",
                              seed=seed, progress=False).run_dir for seed in (0, 1)}
    return {"home": tiny_run_dataset.parent.parent, **made}


@pytest.fixture(scope="module")
def board(runs, tmp_path_factory):
    """A leaderboard with seed 0 submitted with --reproduce (by evaluation)."""
    lb = tmp_path_factory.mktemp("reproduce-board") / "lb"
    submit(runs[0], leaderboard=lb, home=runs["home"], reproduce=True)
    (stored,) = load_entries(lb)
    return {"lb": lb, "stored": stored}


def fresh_copy(folder: Path, dest: Path) -> Path:
    return Path(shutil.copytree(folder, dest))


def predictions(path: Path) -> tuple[list[str], np.ndarray]:
    """A predictions CSV read with the csv module: case ids and the prob_ columns."""
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    columns = [c for c in rows[0] if c.startswith("prob_")]
    return [r["case_id"] for r in rows], np.array([[float(r[c]) for c in columns] for r in rows])


# --------------------------------------------------------------------------- submit --reproduce
def test_submit_reproduce_stores_a_record_of_evaluation(runs, board):
    stored = board["stored"]
    record = json.loads((stored.folder / RECORD_FILE).read_text())
    entry = read_entry(runs[0] / "entry.json")
    assert entry.checkpoint_sha256 == sha256_file(runs[0] / "model.safetensors")
    assert record["by"] == "evaluation"
    assert record["entry_sha256"] == sha256_file(runs[0] / "entry.json")
    assert record["checkpoint_sha256"] == entry.checkpoint_sha256
    assert record["max_abs_diff"] == {"internal": 0.0, "external": 0.0}  # same CPU: bit-identical
    assert record["tolerance"] == REPRODUCTION_TOLERANCE == 1e-5
    assert record["thyroid_bench"] == __version__ and record["num_threads"] == 1
    assert record["date"].endswith("Z")
    assert row_mark(stored) == "reproduced by evaluation"
    # the page's loader accepts it; the checkpoint itself never enters the leaderboard
    assert [s.entry_id for s in load_checked(board["lb"]).entries] == [stored.entry_id]
    assert not list(board["lb"].rglob("*.safetensors"))


def test_stored_records_survive_the_next_submit(runs, board, tmp_path):
    lb = fresh_copy(board["lb"], tmp_path / "lb")
    section = board["stored"].rel
    before = (lb.joinpath(*section.parts) / RECORD_FILE).read_bytes()
    submit(runs[1], leaderboard=lb, home=runs["home"])  # staged from a copy of the stored entries
    assert (lb.joinpath(*section.parts) / RECORD_FILE).read_bytes() == before
    marks = {s.entry.seed: row_mark(s) for s in load_checked(lb).entries}
    assert marks == {0: "reproduced by evaluation", 1: "not reproduced"}


def test_submit_retrain_stores_a_record_of_retraining(runs, tmp_path, capsys):
    lb = tmp_path / "lb"
    assert main(["submit", str(runs[1]), "--retrain", "--leaderboard", str(lb),
                 "--home", str(runs["home"])]) == 0
    captured = capsys.readouterr()
    assert "(reproduced by retraining)" in captured.out
    assert "thyroid-bench: retraining timm:test_resnet seed 1" in captured.err  # progress on stderr
    (stored,) = load_entries(lb)
    record = read_record(stored)
    assert record.by == "retraining" and record.tolerance == 0.0
    assert record.max_abs_diff == {"internal": 0.0, "external": 0.0}
    # training again wrote the same checkpoint, byte for byte
    assert record.checkpoint_sha256 == sha256_file(runs[1] / "model.safetensors")
    assert row_mark(stored) == "reproduced by retraining"


def test_a_swapped_checkpoint_is_refused_and_nothing_written(runs, tmp_path):
    run = fresh_copy(runs[0], tmp_path / "run")
    shutil.copyfile(runs[1] / "model.safetensors", run / "model.safetensors")
    lb = tmp_path / "lb"
    with pytest.raises(SubmissionError, match="check 'reproduction': checkpoint hash differs") as exc:
        submit(run, leaderboard=lb, home=runs["home"], reproduce=True)
    assert sha256_file(runs[1] / "model.safetensors")[:12] in str(exc.value)
    assert not lb.exists()


def test_an_entry_without_checkpoint_hash_is_refused_at_the_first_case_that_differs(runs, tmp_path):
    """An entry written before checkpoint_sha256 existed: the predictions decide."""
    run = fresh_copy(runs[0], tmp_path / "run")
    shutil.copyfile(runs[1] / "model.safetensors", run / "model.safetensors")
    data = json.loads((run / "entry.json").read_text())
    del data["checkpoint_sha256"]
    (run / "entry.json").write_text(json.dumps(data, indent=2))
    # seed 1's checkpoint re-predicts seed 1's file; the first case beyond 1e-5 is the message's
    ids, stored = predictions(runs[0] / "predictions" / "internal.csv")
    ids1, other = predictions(runs[1] / "predictions" / "internal.csv")
    assert ids1 == ids
    differs = (np.abs(other - stored).max(axis=1) > 1e-5) | (other.argmax(1) != stored.argmax(1))
    first = ids[int(np.flatnonzero(differs)[0])]
    lb = tmp_path / "lb"
    with pytest.raises(SubmissionError, match=rf"predictions differ at split internal, case {first}: "
                       rf".*{int(differs.sum())} of {len(ids)} cases differ"):
        submit(run, leaderboard=lb, home=runs["home"], reproduce=True)
    assert not lb.exists()


class _Payload:
    """Unpickling this creates ``marker``: the proof that a file was unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


def test_a_pickled_checkpoint_is_never_unpickled(runs, tmp_path):
    run = fresh_copy(runs[0], tmp_path / "run")
    data = json.loads((run / "entry.json").read_text())
    del data["checkpoint_sha256"]  # so the hash does not stop it first
    (run / "entry.json").write_text(json.dumps(data, indent=2))
    marker = tmp_path / "unpickled"
    with open(run / "model.safetensors", "wb") as f:
        pickle.dump({"state_dict": _Payload(marker)}, f)
    with pytest.raises(SubmissionError, match="check 'reproduction': the harness could not re-run it: "
                       "--checkpoint .*model.safetensors: not a safetensors file"):
        submit(run, leaderboard=tmp_path / "lb", home=runs["home"], reproduce=True)
    assert not marker.exists()


# --------------------------------------------------------------------------- the record, re-checked
def _record_edits():
    other = "ab" * 32
    return {
        "another entry's": (lambda d: d.update(entry_sha256=other), "a record copied from another entry"),
        "by changed": (lambda d: d.update(by="retraining"), "tolerance 0"),
        "beyond tolerance": (lambda d: d["max_abs_diff"].update(external=0.5), "exceeds the tolerance"),
        "looser tolerance": (lambda d: d.update(tolerance=0.1), "tolerance: Input should be less"),
        "unknown field": (lambda d: d.update(signed_by="me"), "signed_by: Extra inputs"),
        "a split missing": (lambda d: d["max_abs_diff"].pop("external"), "max_abs_diff covers"),
    }


@pytest.mark.parametrize("name", list(_record_edits()))
def test_a_tampered_record_fails_its_entry_on_every_load(board, tmp_path, capsys, name):
    edit, says = _record_edits()[name]
    lb = fresh_copy(board["lb"], tmp_path / "lb")
    path = lb.joinpath(*board["stored"].rel.parts) / RECORD_FILE
    data = json.loads(path.read_text())
    edit(data)
    path.write_text(json.dumps(data))
    with pytest.raises(LeaderboardError, match=f"{RECORD_FILE}: .*{says}"):
        load_checked(lb)
    assert load_checked(lb, skip_invalid=True).entries == []
    # the CLI: one line, exit 2, no traceback; --skip-invalid names it and renders without it
    assert main(["leaderboard", "--leaderboard", str(lb)]) == 2
    err = capsys.readouterr().err
    assert RECORD_FILE in err and "Traceback" not in err
    assert main(["leaderboard", "--leaderboard", str(lb), "--skip-invalid"]) == 0
    assert f"left out (--skip-invalid): {path}" in capsys.readouterr().err


def test_a_record_that_is_not_json_is_reported(board, tmp_path):
    lb = fresh_copy(board["lb"], tmp_path / "lb")
    path = lb.joinpath(*board["stored"].rel.parts) / RECORD_FILE
    path.write_bytes(b"\xff{not json")
    with pytest.raises(LeaderboardError, match=f"{RECORD_FILE}: unreadable .*remove it, or reproduce"):
        load_checked(lb)


def test_row_mark_says_how_an_entry_was_reproduced(board, tmp_path):
    lb = fresh_copy(board["lb"], tmp_path / "lb")
    (stored,) = load_entries(lb)
    record = read_record(stored)
    assert row_mark(stored) == "reproduced by evaluation"
    write_record(stored.folder, record.model_copy(update={"by": "retraining", "tolerance": 0.0}))
    assert row_mark(stored) == "reproduced by retraining"
    (stored.folder / RECORD_FILE).unlink()
    assert row_mark(stored) == "not reproduced"
    external = StoredEntry(stored.entry.model_copy(update={"origin": "external"}), stored.entry_id,
                           stored.folder, stored.rel)
    assert row_mark(external) == "external predictions"
    with pytest.raises(ReproductionError, match="external predictions: made outside the harness"):
        reproduce_run(external, tmp_path)


def test_models_from_files_are_not_run(board, runs, tmp_path):
    stored = board["stored"]
    model = stored.entry.model.model_copy(update={"name": "evil.py:build"})
    other = StoredEntry(stored.entry.model_copy(update={"model": model}), stored.entry_id,
                        stored.folder, stored.rel)
    with pytest.raises(ReproductionError, match="does not run a model's code from a file"):
        reproduce_run(other, runs[0], home=runs["home"])


# --------------------------------------------------------------------------- leaderboard check
def test_leaderboard_check_finds_run_folders_by_content_and_writes_records(runs, tmp_path, capsys):
    lb = tmp_path / "lb"
    submit([runs[0], runs[1]], leaderboard=lb, home=runs["home"])
    folders = tmp_path / "runs"
    fresh_copy(runs[0], folders / "renamed" / "anything")  # not its run_id: found by its entry.json
    bad = fresh_copy(runs[1], folders / "seed1")
    shutil.copyfile(runs[0] / "model.safetensors", bad / "model.safetensors")
    argv = ["leaderboard", "check", "--runs", str(folders), "--leaderboard", str(lb),
            "--home", str(runs["home"])]
    assert main([*argv, "--write"]) == 1  # seed 1's folder holds seed 0's checkpoint
    out = capsys.readouterr().out.splitlines()
    ids = {s.entry.seed: s.entry_id for s in load_entries(lb)}
    assert any(line.startswith(f"{ids[0]}: reproduced by evaluation (max |diff| external 0, "
                               f"internal 0; tolerance 1e-05) from {folders / 'renamed' / 'anything'}")
               for line in out)
    assert any(line.startswith(f"{ids[1]}: NOT REPRODUCED from {bad}: checkpoint hash differs")
               for line in out)
    assert out[-1] == "1 reproduced, 1 not reproduced, 0 not checked, 0 invalid; 1 record(s) written"
    marks = {s.entry.seed: row_mark(s) for s in load_checked(lb).entries}
    assert marks == {0: "reproduced by evaluation", 1: "not reproduced"}
    # no run folder for either: nothing is reproduced, nothing fails
    (tmp_path / "empty").mkdir()
    assert main(["leaderboard", "check", "--runs", str(tmp_path / "empty"), "--leaderboard", str(lb)]) == 0
    out = capsys.readouterr().out
    assert out.count("not checked: no run folder found under") == 2
    assert main(["leaderboard", "check", "--runs", str(folders), "--leaderboard", str(lb),
                 "--entry", "*-seed7-*"]) == 0
    assert capsys.readouterr().out.strip() == "0 reproduced, 0 not reproduced, 0 not checked, 0 invalid"


def test_leaderboard_check_needs_runs(capsys, tmp_path):
    assert main(["leaderboard", "check", "--leaderboard", str(tmp_path)]) == 2
    assert "leaderboard check needs --runs DIR" in capsys.readouterr().err
    assert main(["leaderboard", "--write", "--leaderboard", str(tmp_path)]) == 2
    assert "--write: options of `thyroid-bench leaderboard check`" in capsys.readouterr().err


# --------------------------------------------------------------------------- run folders on the Hub
def fake_snapshot(repo: Path, calls: list):
    """A stand-in for huggingface_hub.snapshot_download over the local folder ``repo``, matching
    patterns with huggingface_hub's own filter."""
    def snapshot_download(*, repo_id, repo_type, revision, local_dir, allow_patterns):
        files = sorted(p.relative_to(repo).as_posix() for p in repo.rglob("*") if p.is_file())
        chosen = list(filter_repo_objects(files, allow_patterns=allow_patterns))
        calls.append({"repo": (repo_id, repo_type, revision), "files": chosen})
        for rel in chosen:
            (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(repo / rel, Path(local_dir) / rel)
        return str(local_dir)
    return snapshot_download


def test_a_run_folder_on_the_hub_is_fetched_without_anything_else(board, runs, tmp_path, monkeypatch):
    import huggingface_hub

    repo = tmp_path / "repo"
    fresh_copy(runs[0], repo / "baselines" / "seed0")  # with train.log, report.md, figures/
    calls: list = []
    monkeypatch.setattr(huggingface_hub, "snapshot_download", fake_snapshot(repo, calls))
    record = reproduce_run(board["stored"], "hf://datasets/org/runs@v1/baselines/seed0",
                           home=runs["home"])
    assert record.by == "evaluation" and record.max_abs_diff == {"internal": 0.0, "external": 0.0}
    (call,) = calls
    assert call["repo"] == ("org/runs", "dataset", "v1")
    assert call["files"] == ["baselines/seed0/config.json", "baselines/seed0/entry.json",
                             "baselines/seed0/model.safetensors",
                             "baselines/seed0/predictions/external.csv",
                             "baselines/seed0/predictions/internal.csv"]
    # leaderboard check over the repository: the small files first, then one checkpoint
    calls.clear()
    result = check_leaderboard(board["lb"], "hf://datasets/org/runs", home=runs["home"])
    (checked,) = result.entries
    assert checked.run_folder == "hf://datasets/org/runs/baselines/seed0" and checked.record
    assert [c["repo"] for c in calls] == [("org/runs", "dataset", None)] * 2
    assert not any(f.endswith(".safetensors") for f in calls[0]["files"])
    assert "baselines/seed0/model.safetensors" in calls[1]["files"]


def test_hub_locations_are_parsed_or_refused(monkeypatch, tmp_path):
    import huggingface_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    loc = parse_hub_location("hf://org/model-runs/a/b")
    assert (loc.repo_id, loc.repo_type, loc.revision, loc.path) == ("org/model-runs", "model", None, "a/b")
    assert str(parse_hub_location("hf://spaces/o/r@main")) == "hf://spaces/o/r@main"
    for bad in ("hf://org", "hf://org/repo/../etc", "hf://datasets/org/re po/x"):
        with pytest.raises(ReproductionError, match="is not a Hub location; write hf://ORG/REPO"):
            parse_hub_location(bad)

    def offline(**kwargs):
        raise LocalEntryNotFoundError("offline mode is enabled")

    monkeypatch.setattr(huggingface_hub, "snapshot_download", offline)
    with pytest.raises(ReproductionError, match="could not download hf://org/runs/x from the Hugging "
                       "Face Hub .*download the run folder and give its path"):
        check_leaderboard(tmp_path, "hf://org/runs/x")


@pytest.mark.parametrize("text", ["[" * 100_000, "{\"run_id\": ", "\ud800", "[]"],
                         ids=["deep nesting", "truncated", "not UTF-8", "not an object"])
def test_a_run_config_that_is_not_one_is_one_line(tmp_path, text):
    (tmp_path / "config.json").write_bytes(text.encode("utf-8", "surrogatepass"))
    with pytest.raises(ReproductionError, match=r"config.json: "):
        read_run_config(tmp_path)
