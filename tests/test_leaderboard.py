"""Leaderboard: every submit check, storage, grouping of seeds, ranking, rendering, Hub PR."""

from __future__ import annotations

import csv
import json
import re
import shutil
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pytest

from conftest import make_rows
from thyroid_bench.cli import main
from thyroid_bench.data import official
from thyroid_bench.data.format import read_manifest, read_split, write_dataset
from thyroid_bench.evaluation.entry import (
    Entry,
    Environment,
    PredictionsFile,
    ProtocolRecord,
    read_entry,
    write_entry,
)
from thyroid_bench.evaluation.metrics import evaluate, paired_bootstrap
from thyroid_bench.evaluation.predictions import write_predictions
from thyroid_bench.hashing import sha256_file
from thyroid_bench.harness.protocols import get_protocol
from thyroid_bench.leaderboard import (
    HubError,
    LeaderboardError,
    SubmissionError,
    build_board,
    entry_json_schema,
    first_difference,
    load_entries,
    markdown_table,
    render_leaderboard,
    render_text,
    submit,
)
from thyroid_bench.models.registry import ModelMeta
from thyroid_bench.tasks.four_pattern import FOUR_PATTERN

CLASS_NAMES = FOUR_PATTERN.class_names

REPO = Path(__file__).resolve().parents[1]
DATASET = ("tiny-lb", "1.0.0")
N_EVAL = 40  # cases per evaluation split: enough for a paired bootstrap to separate good from bad


# --------------------------------------------------------------------------- helpers
def make_dataset(home: Path) -> Path:
    """A small format-v1 dataset (train 8, internal 40, external 40) under ``home``."""
    splits = {"train": make_rows("train", 8), "internal": make_rows("internal", N_EVAL),
              "external": make_rows("external", N_EVAL, matrix=16)}
    return write_dataset(*DATASET, splits, home=home, synthetic=True, provenance={"test": True})


def predictions_for(labels: np.ndarray, skill: float, seed: int, k: int = 4) -> np.ndarray:
    """Probabilities over ``k`` classes that put ``skill`` of the mass on the true class, the rest random."""
    rng = np.random.default_rng(seed)
    noise = rng.dirichlet(np.ones(k), size=len(labels))
    onehot = np.eye(k)[labels]
    p = skill * onehot + (1 - skill) * noise
    return p / p.sum(axis=1, keepdims=True)


def make_run(run_dir: Path, dataset: Path, *, model: str = "toy-a", seed: int = 0,
             skill: float = 0.25, noise_seed: int | None = None, protocol: str = "quick@1",
             parameters: int = 1_000_000, bootstrap: int = 1000, probs: dict | None = None) -> Path:
    """A run folder as ``thyroid-bench run`` leaves it: predictions, metrics, entry.json."""
    manifest = read_manifest(dataset)
    task = manifest.get_task()
    metrics, files = {}, {}
    for k, split in enumerate(("internal", "external")):
        truth = read_split(dataset, split, columns=["case_id", "label"])
        ids = [str(c) for c in truth["case_id"]]
        y = truth["label"].to_numpy(dtype=np.int64)
        p = probs[split] if probs else predictions_for(
            y, skill, (noise_seed if noise_seed is not None else seed) * 10 + k, task.num_classes)
        rel = f"predictions/{split}.csv"
        write_predictions(run_dir / rel, task, ids, p, labels=y)
        metrics[split] = evaluate(y, p, task.class_names, bootstrap=bootstrap, seed=0)
        files[split] = PredictionsFile(path=rel, sha256=sha256_file(run_dir / rel), rows=len(ids))
    write_entry(run_dir / "entry.json", build_entry(run_dir, manifest, model=model, seed=seed,
                                                    protocol=protocol, parameters=parameters,
                                                    metrics=metrics, files=files))
    return run_dir


def build_entry(run_dir: Path, manifest, *, model: str, seed: int, metrics: dict, files: dict,
                protocol: str = "quick@1", parameters: int = 1_000_000, in_chans: int = 1) -> Entry:
    """The entry.json of a test run on ``manifest``'s dataset version."""
    return Entry(
        run_id=run_dir.name, task=manifest.task, dataset=manifest.dataset_ref(),
        model=ModelMeta(name=model, source="thyroid-bench", architecture=model, head="fc",
                        parameters=parameters, input_size=64, in_chans=in_chans,
                        channel_policy="single" if in_chans == 1 else "views"),
        protocol=ProtocolRecord(name=get_protocol(protocol).name, parameters=get_protocol(
            protocol).for_task(manifest.get_task()).to_dict()),
        pretrained="none", seed=seed, metrics=metrics, predictions=files,
        environment=Environment(thyroid_bench="0.1.0", python="3.11", torch="2", timm="1",
                                numpy="2", platform="linux", device="cpu",
                                device_name="Test CPU (2 logical cores)", num_threads=2,
                                deterministic=True, amp=False),
        wall_time_s=12.0, submitter="tester",
        date=datetime(2025, 1, 1 + seed, 12, 0, tzinfo=timezone.utc),
    )


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` with its bytes (empty when the folder does not exist)."""
    if not folder.exists():
        return {}
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def edit_entry(run: Path, change) -> None:
    data = json.loads((run / "entry.json").read_text())
    change(data)
    (run / "entry.json").write_text(json.dumps(data, indent=2))


def rewrite_rows(run: Path, split: str, change, *, update_hash: bool = True) -> None:
    """Edit a predictions CSV's rows; with ``update_hash`` also fix the entry's SHA-256 and rows."""
    path = run / "predictions" / f"{split}.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    rows = change(rows)
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    if update_hash:
        def fix(d):
            d["predictions"][split]["sha256"] = sha256_file(path)
            d["predictions"][split]["rows"] = len(rows) - 1
        edit_entry(run, fix)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset home with tiny-lb 1.0.0 and a pristine run folder to copy."""
    base = tmp_path_factory.mktemp("lb-world")
    home = base / "home"
    dataset = make_dataset(home)
    run = make_run(base / "runs" / "toy-a-s0", dataset)
    return {"home": home, "dataset": dataset, "run": run}


@pytest.fixture
def run(world, tmp_path) -> Path:
    """A fresh copy of the pristine run folder, free to tamper with."""
    return Path(shutil.copytree(world["run"], tmp_path / "run"))


# --------------------------------------------------------------------------- accepted
def test_submit_stores_entry_predictions_labels_and_renders(world, run, tmp_path):
    lb = tmp_path / "lb"
    result = submit(run, leaderboard=lb, home=world["home"])

    digest = sha256_file(run / "entry.json")
    assert result.entry_ids == [f"toy-a-quick-seed0-{digest[:8]}"]
    stored = lb / "entries" / "four-pattern" / "tiny-lb@1.0.0" / result.entry_ids[0]
    assert result.paths == [stored]
    # entry and predictions are stored byte for byte
    for rel in ("entry.json", "predictions/internal.csv", "predictions/external.csv"):
        assert (stored / rel).read_bytes() == (run / rel).read_bytes()
    # the labels the entries were scored on are stored beside them, equal to the dataset's
    section = stored.parent
    truth = read_split(world["dataset"], "external", columns=["case_id", "label"])
    with open(section / "labels" / "external.csv", newline="") as f:
        stored_labels = {r["case_id"]: CLASS_NAMES.index(r["label"]) for r in csv.DictReader(f)}
    assert stored_labels == dict(zip(truth["case_id"], truth["label"].astype(int)))
    info = json.loads((section / "dataset.json").read_text())
    assert info["fingerprint"] == read_manifest(world["dataset"]).fingerprint
    # rendered pages and the schema were written; no staging folder is left behind
    assert "toy-a" in (lb / "README.md").read_text()
    assert "toy-a" in (lb / "index.html").read_text()
    assert (lb / "schema" / "entry-v1.json").read_text() == entry_json_schema()
    assert not [p for p in lb.iterdir() if p.name.startswith(".")]
    assert [s.entry_id for s in load_entries(lb)] == result.entry_ids


def test_submit_real_harness_run_folder_layout_accepted(world, run, tmp_path):
    """A run folder with the harness's extra files (metrics.json, report, checkpoint) is fine."""
    (run / "metrics.json").write_text("{}")
    (run / "report.md").write_text("# report")
    (run / "model.safetensors").write_bytes(b"\0" * 16)
    result = submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    stored = result.paths[0]
    assert sorted(p.relative_to(stored).as_posix() for p in stored.rglob("*") if p.is_file()) == [
        "entry.json", "predictions/external.csv", "predictions/internal.csv"]


# --------------------------------------------------------------------------- rejections
def _unknown_field(run):
    edit_entry(run, lambda d: d.update(favourite_colour="blue"))


def _wrong_type(run):
    edit_entry(run, lambda d: d.update(seed="zero"))


def _unknown_fingerprint(run):
    edit_entry(run, lambda d: d["dataset"].update(fingerprint="0" * 64))


def _metric_edited(run):
    edit_entry(run, lambda d: d["metrics"]["external"].update(
        macro_f1=d["metrics"]["external"]["macro_f1"] + 0.001))


def _ci_edited(run):
    edit_entry(run, lambda d: d["metrics"]["internal"]["ci"]["accuracy"].__setitem__(0, 0.0))


def _row_removed(run):
    rewrite_rows(run, "external", lambda rows: rows[:-1])


def _case_id_changed(run):
    def change(rows):
        rows[3][0] = "external-9999"
        return rows
    rewrite_rows(run, "external", change)


def _probability_nan(run):
    def change(rows):
        rows[2][1] = "nan"
        return rows
    rewrite_rows(run, "internal", change)


def _hash_mismatch(run):
    def change(rows):  # swap two probabilities of one row: still a valid probability vector
        rows[1][1], rows[1][2] = rows[1][2], rows[1][1]
        return rows
    rewrite_rows(run, "external", change, update_hash=False)


def _path_escapes(run):
    edit_entry(run, lambda d: d["predictions"]["external"].update(path="../outside.csv"))


def _synthetic_flag(run):
    edit_entry(run, lambda d: d["dataset"].update(synthetic=False))


def _missing_split(run):
    edit_entry(run, lambda d: (d["predictions"].pop("external"), d["metrics"].pop("external")))


def _unknown_task(run):
    edit_entry(run, lambda d: d.update(task="no-such-task"))


@pytest.mark.parametrize("tamper, check, says", [
    (_unknown_field, "schema", "favourite_colour"),
    (_wrong_type, "schema", "seed"),
    (_unknown_fingerprint, "dataset fingerprint", "0" * 64),
    (_metric_edited, "metrics", "metrics.external.macro_f1"),
    (_ci_edited, "metrics", "metrics.internal.ci.accuracy[0]"),
    (_row_removed, "predictions", "have no row"),
    (_case_id_changed, "predictions", "'external-9999' is not a case of the split"),
    (_probability_nan, "predictions", "NaN"),
    (_hash_mismatch, "predictions hash", "the file changed after the run"),
    (_path_escapes, "predictions path", "../outside.csv"),
    (_missing_split, "splits", "external"),
    (_unknown_task, "task", "unknown task 'no-such-task'"),
    (_synthetic_flag, "dataset synthetic", "synthetic=False"),
], ids=lambda v: getattr(v, "__name__", None))
def test_each_tampering_is_refused_and_nothing_written(world, run, tmp_path, tamper, check, says):
    lb = tmp_path / "lb"
    submit(make_run(tmp_path / "other", world["dataset"], model="toy-b"), leaderboard=lb,
           home=world["home"])
    before = snapshot(lb)
    tamper(run)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=lb, home=world["home"])
    assert info.value.check == check
    assert says in str(info.value)
    assert f"rejected by check '{check}'" in str(info.value)
    assert snapshot(lb) == before


def test_metric_error_names_both_values(world, run, tmp_path):
    claimed = json.loads((run / "entry.json").read_text())["metrics"]["external"]["macro_f1"]
    _metric_edited(run)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    assert repr(claimed + 0.001) in str(info.value) and repr(claimed) in str(info.value)


def test_duplicate_refused_on_resubmit_and_within_one_call(world, run, tmp_path):
    lb = tmp_path / "lb"
    submit(run, leaderboard=lb, home=world["home"])
    before = snapshot(lb)
    # the same model, protocol, seed and dataset from a different run (other predictions)
    again = make_run(tmp_path / "again", world["dataset"], skill=0.4)
    with pytest.raises(SubmissionError) as info:
        submit(again, leaderboard=lb, home=world["home"])
    assert info.value.check == "duplicate"
    assert "model toy-a, protocol quick@1, seed 0 on tiny-lb@1.0.0" in str(info.value)
    assert snapshot(lb) == before

    fresh = tmp_path / "fresh"
    with pytest.raises(SubmissionError) as info:
        submit([again, run], leaderboard=fresh, home=world["home"])
    assert info.value.check == "duplicate"
    assert snapshot(fresh) == {}


def test_one_bad_run_in_a_batch_writes_nothing(world, run, tmp_path):
    good = make_run(tmp_path / "good", world["dataset"], model="toy-b")
    _metric_edited(run)
    lb = tmp_path / "lb"
    with pytest.raises(SubmissionError):
        submit([good, run], leaderboard=lb, home=world["home"])
    assert [p for p in lb.rglob("*") if p.is_file()] == []


def test_too_few_bootstrap_resamples_refused(world, tmp_path):
    run = make_run(tmp_path / "r", world["dataset"], bootstrap=50)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    assert info.value.check == "bootstrap" and "--bootstrap 1000" in str(info.value)


def test_dataset_absent_locally_is_unknown(world, run, tmp_path):
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb", home=tmp_path / "empty-home")
    assert info.value.check == "dataset fingerprint"
    assert "not a pinned official version" in str(info.value)


def test_local_dataset_with_another_fingerprint_refused(world, run, tmp_path):
    home = tmp_path / "home2"
    splits = {"train": make_rows("train", 8), "internal": make_rows("internal", N_EVAL, seed=1),
              "external": make_rows("external", N_EVAL, matrix=16)}
    write_dataset(*DATASET, splits, home=home)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb", home=home)
    assert info.value.check == "dataset fingerprint"
    assert read_manifest(home / "tiny-lb" / "1.0.0").fingerprint in str(info.value)


def test_official_pinned_version(world, run, tmp_path, monkeypatch):
    fp = read_manifest(world["dataset"]).fingerprint
    monkeypatch.setitem(official.OFFICIAL_FINGERPRINTS, DATASET, fp)
    # pinned and present: accepted
    assert submit(run, leaderboard=tmp_path / "lb", home=world["home"]).entry_ids
    # pinned but not present: the labels are needed, so say how to get them
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb2", home=tmp_path / "empty-home")
    assert info.value.check == "dataset present"
    assert "thyroid-bench prepare" in str(info.value)
    # the pin differs from the entry's fingerprint: refused before any data is read
    monkeypatch.setitem(official.OFFICIAL_FINGERPRINTS, DATASET, "f" * 64)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=tmp_path / "lb3", home=world["home"])
    assert info.value.check == "dataset fingerprint" and "pinned at " + "f" * 64 in str(info.value)


def test_load_entries_detects_a_stored_file_edited_by_hand(world, run, tmp_path):
    lb = tmp_path / "lb"
    stored = submit(run, leaderboard=lb, home=world["home"]).paths[0]
    with open(stored / "predictions" / "external.csv", "a") as f:
        f.write("\n")
    with pytest.raises(LeaderboardError, match="changed since it was submitted"):
        load_entries(lb)


def test_first_difference_paths():
    assert first_difference({"a": [1.0, {"b": None}]}, {"a": [1.0 + 1e-12, {"b": None}]}) is None
    assert first_difference({"a": [1.0, 2.0]}, {"a": [1.0, 2.001]}, "m") == ("m.a[1]", 2.0, 2.001)
    assert first_difference({"a": None}, {"a": 0.5}, "m") == ("m.a", None, 0.5)
    assert first_difference({"a": [1]}, {"a": [1, 2]}, "m") == ("m.a", [1], [1, 2])
    assert first_difference({"a": 1, "x": 2}, {"a": 1}, "m") == ("m.x", 2, "<not a figure of metrics.evaluate>")
    assert first_difference({"s": True}, {"s": 1}, "m") == ("m.s", True, 1)
    assert first_difference({"v": float("nan")}, {"v": 0.5}, "m")[0] == "m.v"


# --------------------------------------------------------------------------- grouping, ranking
@pytest.fixture(scope="module")
def board_world(world, tmp_path_factory):
    """A leaderboard with three rows: strong (3 seeds), medium (2 seeds), weak (1 seed)."""
    base = tmp_path_factory.mktemp("lb-board")
    runs = [make_run(base / f"strong-{s}", world["dataset"], model="strong", seed=s, skill=0.3 - 0.02 * s)
            for s in range(3)]
    runs += [make_run(base / f"medium-{s}", world["dataset"], model="medium", seed=s, skill=0.1)
             for s in range(2)]
    runs += [make_run(base / "weak-0", world["dataset"], model="weak", seed=0, skill=0.0)]
    lb = base / "lb"
    submit(runs, leaderboard=lb, home=world["home"])
    return {"lb": lb, "runs": runs}


def test_seeds_grouped_mean_and_sd_as_numpy(board_world):
    board = render_leaderboard(board_world["lb"], write=False)
    (section,) = board.sections
    groups = {g.model: g for g in section.groups}
    assert [len(groups[m].entries) for m in ("strong", "medium", "weak")] == [3, 2, 1]
    for model, group in groups.items():
        entries = [read_entry(r / "entry.json") for r in board_world["runs"] if r.name.startswith(model)]
        for split in ("internal", "external"):
            for fig in ("accuracy", "macro_f1", "macro_auc"):
                values = np.array([e.metrics[split][fig] for e in entries])
                stat = group.stats[split][fig]
                assert stat.mean == pytest.approx(values.mean(), abs=1e-12)
                if len(values) > 1:
                    assert stat.sd == pytest.approx(values.std(ddof=1), abs=1e-12)
                else:
                    assert stat.sd is None
        f1 = sorted((e.metrics["external"]["macro_f1"], e.seed) for e in entries)
        assert group.representative.entry.seed == f1[(len(f1) - 1) // 2][1]
        gaps = [e.metrics["internal"]["macro_f1"] - e.metrics["external"]["macro_f1"] for e in entries]
        assert group.gap["macro_f1"].mean == pytest.approx(np.mean(gaps), abs=1e-12)


def test_rows_ranked_by_external_macro_f1_with_paired_bootstrap(world, board_world):
    (section,) = render_leaderboard(board_world["lb"], write=False).sections
    means = [g.stats["external"]["macro_f1"].mean for g in section.groups]
    assert [g.model for g in section.groups] == ["strong", "medium", "weak"]
    assert means == sorted(means, reverse=True)
    assert section.groups[0].vs_above is None and section.groups[0].rank == 1
    # each row against the row above: the paired bootstrap of the two median seeds' external
    # predictions, recomputed here from the run folders with metrics.paired_bootstrap
    truth = read_split(world["dataset"], "external", columns=["case_id", "label"]).sort_values("case_id")
    y = truth["label"].to_numpy(np.int64)

    def probs(group):
        run = next(r for r in board_world["runs"] if read_entry(r / "entry.json").model.name == group.model
                   and read_entry(r / "entry.json").seed == group.representative.entry.seed)
        with open(run / "predictions" / "external.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: r["case_id"])
        return np.array([[float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in rows])

    for above, row in zip(section.groups, section.groups[1:]):
        expected = paired_bootstrap(y, probs(row), probs(above), metric="macro_f1", resamples=1000, seed=0)
        assert row.vs_above["p_value"] == expected["p_value"]
        assert row.vs_above["difference"] == pytest.approx(expected["difference"], abs=1e-12)
        assert row.tied_with_above == (expected["p_value"] >= 0.05)
        assert row.rank == (above.rank if row.tied_with_above else section.groups.index(row) + 1)
    # this board has one of each: medium is significantly below strong, weak is not below medium
    assert [(g.rank, g.tied_with_above) for g in section.groups] == [(1, False), (2, False), (2, True)]


def test_clearly_better_model_is_significant(world, tmp_path):
    good = make_run(tmp_path / "good", world["dataset"], model="good", skill=0.6)
    bad = make_run(tmp_path / "bad", world["dataset"], model="bad", skill=0.0)
    lb = tmp_path / "lb"
    submit([bad, good], leaderboard=lb, home=world["home"])
    (section,) = build_board(load_entries(lb), lb).sections
    assert [(g.model, g.rank, g.tied_with_above) for g in section.groups] == [
        ("good", 1, False), ("bad", 2, False)]
    assert section.groups[1].vs_above["p_value"] < 0.01


def test_not_significant_rows_share_rank_and_are_marked(world, tmp_path):
    labels = {s: read_split(world["dataset"], s, columns=["label"])["label"].to_numpy(np.int64)
              for s in ("internal", "external")}
    same = {s: predictions_for(labels[s], 0.2, 7) for s in labels}
    a = make_run(tmp_path / "a", world["dataset"], model="twin-a", probs=same)
    # The same predicted classes from other probabilities (flattened: the same or nearly the
    # same ones would be a copy).
    b = make_run(tmp_path / "b", world["dataset"], model="twin-b",
                 probs={s: p ** 0.5 / (p ** 0.5).sum(axis=1, keepdims=True) for s, p in same.items()})
    lb = tmp_path / "lb"
    submit([a, b], leaderboard=lb, home=world["home"])
    (section,) = build_board(load_entries(lb), lb).sections
    first, second = section.groups
    assert second.vs_above["difference"] == 0 and second.vs_above["p_value"] == 1.0
    assert (first.rank, second.rank, second.tied_with_above) == (1, 1, True)
    table = markdown_table(section).splitlines()
    assert table[3].startswith("| 1 ≈ | `twin-b` |") and "(n.s.)" in table[3]


def test_markdown_table_rows_and_order(board_world):
    lb = board_world["lb"]
    text = (lb / "README.md").read_text()
    rows = [line for line in text.splitlines() if line.startswith("| ") and "`" in line.split("|")[2]]
    assert [r.split("|")[2].strip() for r in rows] == ["`strong`", "`medium`", "`weak`"]
    assert [r.split("|")[1].strip() for r in rows] == ["1", "2", "2 ≈"]
    assert "(n.s.)" in rows[2].split("|")[13] and "(n.s.)" not in rows[1]
    assert [r.split("|")[5].strip() for r in rows] == ["3 (0, 1, 2)", "2 (0, 1)", "1 (0)"]
    # the primary column: mean ± sd over seeds (numpy), then the median seed's CI
    entries = [read_entry(r / "entry.json") for r in board_world["runs"] if r.name.startswith("strong")]
    f1 = np.array([e.metrics["external"]["macro_f1"] for e in entries])
    median = sorted(entries, key=lambda e: e.metrics["external"]["macro_f1"])[1]
    lo, hi = median.metrics["external"]["ci"]["macro_f1"]
    expected = f"**{100 * f1.mean():.1f} ± {100 * f1.std(ddof=1):.1f} [{100 * lo:.1f}, {100 * hi:.1f}]**"
    assert rows[0].split("|")[10].strip() == expected
    # the page states the primary metric, the protocol parameters, the hardware and how to submit
    assert "Primary metric: external macro F1" in text
    assert re.search(r"^- `quick@1`: CPU default: .*\. epochs=6, batch_size=32, optimizer=adamw,", text, re.M)
    assert "Test CPU (2 logical cores) (cpu, 2 threads" in text
    assert "## How to submit" in text and "thyroid-bench submit" in text


def test_render_is_deterministic(board_world, tmp_path):
    lb = board_world["lb"]
    before = (lb / "README.md").read_text(), (lb / "index.html").read_text()
    render_leaderboard(lb)
    assert ((lb / "README.md").read_text(), (lb / "index.html").read_text()) == before


def test_empty_leaderboard_renders(tmp_path):
    (tmp_path / "lb").mkdir()
    board = render_leaderboard(tmp_path / "lb")
    assert board.sections == []
    assert "No entries yet" in (tmp_path / "lb" / "README.md").read_text()


# --------------------------------------------------------------------------- the committed pages
def test_committed_pages_are_the_rendered_ones(tmp_path):
    """Rendering the repository's stored entries rewrites its pages byte for byte."""
    copy = Path(shutil.copytree(REPO / "leaderboard", tmp_path / "lb"))
    render_leaderboard(copy)
    csvs = sorted(p.name for p in copy.glob("ranking-*.csv"))
    assert csvs == ["ranking-four-pattern.csv", "ranking-residual-tissue.csv"]
    for name in ("README.md", "index.html", "schema/entry-v1.json", *csvs):
        assert (copy / name).read_bytes() == (REPO / "leaderboard" / name).read_bytes(), (
            f"leaderboard/{name} is not what the stored entries render to: run "
            "`thyroid-bench leaderboard --render`")


def test_page_css_and_js_are_package_data(tmp_path):
    """index.html inlines templates/page.css and page.js, and pyproject ships every template."""
    import fnmatch
    from importlib.resources import files

    tomllib = pytest.importorskip("tomllib")
    templates = files("thyroid_bench.leaderboard") / "templates"
    (tmp_path / "lb").mkdir()
    render_leaderboard(tmp_path / "lb")
    page = (tmp_path / "lb" / "index.html").read_text()
    for name in ("page.css", "page.js"):
        text = (templates / name).read_text(encoding="utf-8")
        assert text.strip() and text in page
    config = tomllib.loads((REPO / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["thyroid_bench"]
    names = sorted(t.name for t in templates.iterdir())
    assert names == ["how-to-submit.md", "page.css", "page.html", "page.js"]
    for name in names:
        assert any(fnmatch.fnmatch(f"leaderboard/templates/{name}", p) for p in patterns), name


# --------------------------------------------------------------------------- schema file
def test_committed_schema_file_is_the_generated_one():
    committed = REPO / "leaderboard" / "schema" / "entry-v1.json"
    assert committed.read_text(encoding="utf-8") == entry_json_schema(), (
        "leaderboard/schema/entry-v1.json is stale: run `thyroid-bench leaderboard --render`")


def test_schema_file_validates_entries_as_pydantic_does(world):
    jsonschema = pytest.importorskip("jsonschema")
    schema = json.loads(entry_json_schema())
    data = json.loads((world["run"] / "entry.json").read_text())
    jsonschema.validate(data, schema)
    with pytest.raises(jsonschema.ValidationError, match="favourite_colour"):
        jsonschema.validate({**data, "favourite_colour": "blue"}, schema)


# --------------------------------------------------------------------------- hub
class FakeHfApi:
    """A stand-in for huggingface_hub.HfApi: records create_commit calls."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.calls: list[dict] = []
        self.fail = fail

    def create_commit(self, **kwargs):
        if self.fail:
            raise self.fail
        # read the files now: the staging folder is gone after submit returns
        kwargs["contents"] = {op.path_in_repo: Path(op.path_or_fileobj).read_bytes()
                              for op in kwargs["operations"]}
        self.calls.append(kwargs)

        class Info:
            pr_url = "https://huggingface.co/datasets/org/results/discussions/1"
        return Info()


def test_hub_pull_request_with_entry_and_predictions(world, run, tmp_path):
    api = FakeHfApi()
    result = submit(run, leaderboard=tmp_path / "lb", home=world["home"], hub="org/results", hub_api=api)
    assert result.pr_url.endswith("/discussions/1")
    (call,) = api.calls
    assert call["repo_id"] == "org/results"
    assert call["repo_type"] == "dataset" and call["create_pr"] is True
    prefix = f"entries/four-pattern/tiny-lb@1.0.0/{result.entry_ids[0]}"
    assert sorted(call["contents"]) == [f"{prefix}/entry.json", f"{prefix}/predictions/external.csv",
                                        f"{prefix}/predictions/internal.csv"]
    assert call["contents"][f"{prefix}/entry.json"] == (run / "entry.json").read_bytes()
    assert call["contents"][f"{prefix}/predictions/external.csv"] == \
        (run / "predictions" / "external.csv").read_bytes()
    assert result.entry_ids[0] in call["commit_message"]


def test_hub_unreachable_is_a_clear_error_and_writes_nothing(world, run, tmp_path):
    lb = tmp_path / "lb"
    api = FakeHfApi(fail=ConnectionError("Failed to resolve huggingface.co"))
    with pytest.raises(HubError, match="could not open a pull request on Hub dataset repository 'org/results'"):
        submit(run, leaderboard=lb, home=world["home"], hub="org/results", hub_api=api)
    assert [p for p in lb.rglob("*") if p.is_file()] == []


def test_hub_without_token(world, run, tmp_path, monkeypatch):
    import huggingface_hub

    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    with pytest.raises(HubError, match="no Hugging Face token"):
        submit(run, leaderboard=tmp_path / "lb", home=world["home"], hub="org/results")


# --------------------------------------------------------------------------- CLI
def test_cli_submit_and_leaderboard(world, run, tmp_path, capsys):
    lb = tmp_path / "lb"
    assert main(["submit", str(run), "--leaderboard", str(lb), "--home", str(world["home"])]) == 0
    assert "accepted toy-a-quick-seed0-" in capsys.readouterr().out
    # a second submit of the same run: refused, exit status 2, the check named on stderr
    assert main(["submit", str(run), "--leaderboard", str(lb), "--home", str(world["home"])]) == 2
    assert "rejected by check 'duplicate'" in capsys.readouterr().err
    html = tmp_path / "page.html"
    assert main(["leaderboard", "--leaderboard", str(lb), "--html", str(html)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^1\s+toy-a\s+quick@1\s+1\s", out, re.M)
    assert html.read_text().startswith("<!DOCTYPE html>")


# --------------------------------------------------------------------------- end to end
def test_real_harness_run_is_accepted_and_rendered(world, tmp_path):
    """The contract with the harness: a folder from thyroid_bench.harness.run.run is accepted as is."""
    from thyroid_bench.harness.run import run as harness_run

    result = harness_run("timm:test_resnet", protocol="quick", epochs=1, batch_size=8, num_threads=1,
                         dataset=world["dataset"], out=tmp_path / "run", seed=5, progress=False)
    lb = tmp_path / "lb"
    accepted = submit(result.run_dir, leaderboard=lb, home=world["home"])
    assert accepted.entry_ids[0].startswith("timm-test_resnet-quick2-batch_size-8-epochs-1-seed5-")
    (section,) = render_leaderboard(lb, write=False).sections
    (group,) = section.groups
    assert group.protocol == "quick@2 (batch_size=8, epochs=1)" and group.seeds == [5]
    assert group.stats["external"]["macro_f1"].mean == result.metrics["external"]["macro_f1"]
    assert "`timm:test_resnet`" in (lb / "README.md").read_text()


# --------------------------------------------------------------------------- another task
@pytest.fixture(scope="module")
def three_level(tmp_path_factory):
    """A registered task with three classes (no codes) ranked by *internal accuracy*, and a
    leaderboard with two models: one strong on the internal split, one on the external."""
    from thyroid_bench.tasks import MainScore, Reference, Target, Task, TaskClass, register_task, unregister_task

    task = register_task(Task(
        name="three-level", description="grade into three levels", reference=Reference(citation="test"),
        modality="test", target=Target(kind="ordinal", classes=tuple(
            TaskClass(index=i, name=n) for i, n in enumerate(("low", "mid", "high")))),
        main_score=MainScore(metric="accuracy", split="internal")))
    base = tmp_path_factory.mktemp("lb-three")
    splits = {"train": make_rows("train", 9), "internal": make_rows("internal", N_EVAL),
              "external": make_rows("external", N_EVAL, matrix=16)}
    for rows in splits.values():
        for i, row in enumerate(rows):
            row["label"] = i % 3
    dataset = write_dataset("tiny-three", "1.0.0", splits, task=task, home=base / "home")
    y = {s: read_split(dataset, s, columns=["label"])["label"].to_numpy(np.int64)
         for s in ("internal", "external")}
    runs = [make_run(base / "int", dataset, model="int-strong", probs={
                "internal": predictions_for(y["internal"], 0.6, 1, 3),
                "external": predictions_for(y["external"], 0.0, 2, 3)}),
            make_run(base / "ext", dataset, model="ext-strong", probs={
                "internal": predictions_for(y["internal"], 0.1, 3, 3),
                "external": predictions_for(y["external"], 0.6, 4, 3)})]
    lb = base / "lb"
    submit(runs, leaderboard=lb, home=base / "home")
    yield {"task": task, "dataset": dataset, "lb": lb, "runs": runs, "y": y}
    unregister_task(task.name)


def test_other_task_labels_files_use_its_classes(three_level):
    section = three_level["lb"] / "entries" / "three-level" / "tiny-three@1.0.0"
    truth = read_split(three_level["dataset"], "internal", columns=["case_id", "label"])
    with open(section / "labels" / "internal.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert {r["label"] for r in rows} == {"low", "mid", "high"}
    assert {r["case_id"]: ("low", "mid", "high").index(r["label"]) for r in rows} == dict(
        zip(truth["case_id"], truth["label"].astype(int)))


def test_other_task_ranked_by_its_main_score(three_level):
    (section,) = render_leaderboard(three_level["lb"], write=False).sections
    assert section.task is three_level["task"]
    assert [g.model for g in section.groups] == ["int-strong", "ext-strong"]
    accuracy = {g.model: g.stats["internal"]["accuracy"].mean for g in section.groups}
    assert accuracy["int-strong"] > accuracy["ext-strong"]
    # the paired bootstrap compares internal accuracy, over the task's three classes

    def probs(model):
        run = next(r for r in three_level["runs"] if read_entry(r / "entry.json").model.name == model)
        with open(run / "predictions" / "internal.csv", newline="") as f:
            rows = sorted(csv.DictReader(f), key=lambda r: r["case_id"])
        return np.array([[float(r[f"prob_{c}"]) for c in ("low", "mid", "high")] for r in rows])

    truth = read_split(three_level["dataset"], "internal", columns=["case_id", "label"]).sort_values("case_id")
    expected = paired_bootstrap(truth["label"].to_numpy(np.int64), probs("ext-strong"), probs("int-strong"),
                                metric="accuracy", resamples=1000, seed=0)
    assert section.groups[1].vs_above["metric"] == "accuracy"
    assert section.groups[1].vs_above["p_value"] == expected["p_value"]


def test_other_task_columns_and_texts_follow_its_main_score(three_level):
    lb = three_level["lb"]
    readme = (lb / "README.md").read_text()
    assert ("| Rank | Model | Protocol | Pretrained | Seeds | Reproduced | **Int. accuracy** | Ext. accuracy | "
            "Macro AUC int. / ext. | Gap (accuracy, pp) | vs. row above | Params | Date |") in readme
    assert "**Primary metric: internal accuracy**" in readme and "macro F1" not in readme
    text = render_text(render_leaderboard(lb, write=False))
    assert re.search(r"^rank\s+model\s+protocol\s+seeds\s+int acc\s+ext acc\s+gap acc\s+vs above$", text, re.M)
    assert "ranked by mean internal accuracy" in text
    page = (lb / "index.html").read_text()
    assert 'data-key="internal.accuracy" data-type="num" data-first="descending">Int. accuracy ★</th>' in page
    assert "<td>low</td>" in page and "<td>high</td>" in page and "low (type" not in page
    assert "<thead><tr><th></th><th>low</th><th>mid</th><th>high</th></tr></thead>" in page  # confusion


# --------------------------------------------------------------------------- both tasks
RESIDUAL_DATASET = ("tiny-residual", "1.0.0")


def residual_rows(split: str, n: int, *, unknown: int = 0, matrix: int = 32) -> list[dict]:
    """Rows of task residual-tissue: grades cycling 0-3, a posterior view, an uptake (None for
    every fifth case); the last ``unknown`` present cases labelled -1 (present, grade unknown)."""
    rows = make_rows(split, n, matrix=matrix)
    present = [i for i, r in enumerate(rows) if r["label"] != 0]
    for k, row in enumerate(rows):
        row["image_posterior"] = (row["image"] // 2).astype(np.uint16)
        row["uptake_pct"] = None if k % 5 == 4 else 0.4 * row["label"] + 0.01 * k
    for i in present[len(present) - unknown:] if unknown else []:
        rows[i]["label"] = -1
    return rows


def make_residual_run(run_dir: Path, dataset: Path, *, model: str, seed: int = 0, skill: float,
                      uptake: bool = False) -> Path:
    """A residual-tissue run folder: grade probabilities with ``skill`` on the true grade (a
    present case of unknown grade gets grade 2), the uptake column when ``uptake``, and the
    ordinal suite's metrics computed by :func:`evaluate_task`."""
    from thyroid_bench.evaluation.suites import evaluate_task

    manifest = read_manifest(dataset)
    task = manifest.get_task()
    metrics, files = {}, {}
    for k, split in enumerate(task.eval_splits):
        truth = read_split(dataset, split, columns=["case_id", "label", "uptake_pct"])
        ids = [str(c) for c in truth["case_id"]]
        y = truth["label"].to_numpy(dtype=np.int64)
        true_uptake = truth["uptake_pct"].to_numpy(dtype=np.float64, na_value=np.nan)
        p = predictions_for(np.where(y < 0, 2, y), skill, seed * 10 + k + 100 * len(model))
        values = {"uptake_pct": np.nan_to_num(true_uptake, nan=1.0) + 0.1 * (seed + 1)} if uptake else {}
        rel = f"predictions/{split}.csv"
        write_predictions(run_dir / rel, task, ids, p, labels=y, values=values or None)
        metrics[split] = evaluate_task(task, y, p, bootstrap=1000, seed=0, values=values,
                                       true_values={"uptake_pct": true_uptake})
        files[split] = PredictionsFile(path=rel, sha256=sha256_file(run_dir / rel), rows=len(ids))
    write_entry(run_dir / "entry.json", build_entry(run_dir, manifest, model=model, seed=seed,
                                                    metrics=metrics, files=files, in_chans=2))
    return run_dir


@pytest.fixture(scope="module")
def two_tasks(world, tmp_path_factory):
    """One leaderboard with a four-pattern section (two models) and a residual-tissue section
    (three models, one with two seeds and an uptake column; external has grade-unknown cases)."""
    from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

    base = tmp_path_factory.mktemp("lb-two")
    home = base / "home"
    splits = {"train": residual_rows("train", 8), "internal": residual_rows("internal", N_EVAL),
              "external": residual_rows("external", N_EVAL, unknown=6, matrix=16)}
    dataset = write_dataset(*RESIDUAL_DATASET, splits, task=RESIDUAL_TISSUE, home=home, synthetic=True)
    shutil.copytree(world["dataset"], home / DATASET[0] / DATASET[1])
    residual = [make_residual_run(base / "res-good-0", dataset, model="res-good", skill=0.5, uptake=True),
                make_residual_run(base / "res-good-1", dataset, model="res-good", seed=1, skill=0.45,
                                  uptake=True),
                make_residual_run(base / "res-mid", dataset, model="res-mid", skill=0.15),
                make_residual_run(base / "res-bad", dataset, model="res-bad", skill=0.0)]
    four = [make_run(base / "fp-a", world["dataset"], model="fp-a", skill=0.4),
            make_run(base / "fp-b", world["dataset"], model="fp-b", skill=0.05)]
    lb = base / "lb"
    submit([*residual, *four], leaderboard=lb, home=home)
    return {"lb": lb, "home": home, "dataset": dataset, "residual": residual, "four": four,
            "task": RESIDUAL_TISSUE, "base": base}


def _external_ba(run: Path) -> float:
    """External detection balanced accuracy of a run, by scikit-learn, from its files."""
    from sklearn.metrics import balanced_accuracy_score

    with open(run / "predictions" / "external.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    present = np.array([r["label"] != "absent" for r in rows])
    called = np.array([1 - float(r["prob_absent"]) >= 0.5 for r in rows])
    return balanced_accuracy_score(present, called)


def test_two_tasks_two_sections_each_ranked_by_its_own_main_score(two_tasks):
    from sklearn.metrics import f1_score

    board = render_leaderboard(two_tasks["lb"], write=False)
    assert [(s.task.name, s.dataset) for s in board.sections] == [
        ("four-pattern", "tiny-lb"), ("residual-tissue", "tiny-residual")]
    four, residual = board.sections
    # residual-tissue: mean external detection balanced accuracy over seeds, by scikit-learn
    expected = {}
    for run in two_tasks["residual"]:
        expected.setdefault(read_entry(run / "entry.json").model.name, []).append(_external_ba(run))
    means = {m: float(np.mean(v)) for m, v in expected.items()}
    assert [g.model for g in residual.groups] == sorted(means, key=means.get, reverse=True)
    for g in residual.groups:
        assert g.primary == pytest.approx(means[g.model], abs=1e-12)
    assert residual.groups[0].model == "res-good" and len(residual.groups[0].entries) == 2
    # four-pattern: external macro F1, by scikit-learn
    f1 = {}
    for run in two_tasks["four"]:
        truth = read_split(two_tasks["home"] / DATASET[0] / DATASET[1], "external",
                           columns=["case_id", "label"])
        with open(run / "predictions" / "external.csv", newline="") as f:
            probs = {r["case_id"]: [float(r[f"prob_{c}"]) for c in CLASS_NAMES] for r in csv.DictReader(f)}
        pred = [int(np.argmax(probs[c])) for c in truth["case_id"]]
        f1[read_entry(run / "entry.json").model.name] = f1_score(truth["label"], pred, average="macro")
    assert [g.model for g in four.groups] == sorted(f1, key=f1.get, reverse=True)
    assert [g.primary for g in four.groups] == pytest.approx(sorted(f1.values(), reverse=True), abs=1e-12)


def test_residual_rows_compared_by_the_ordinal_suite(two_tasks):
    from thyroid_bench.evaluation.predictions import read_predictions
    from thyroid_bench.evaluation.suites import compare_task

    task = two_tasks["task"]
    (section,) = [s for s in build_board(load_entries(two_tasks["lb"]), two_tasks["lb"]).sections
                  if s.task is task]
    truth = read_split(two_tasks["dataset"], "external", columns=["case_id", "label"]).sort_values("case_id")
    ids = list(truth["case_id"])

    def probs(group):
        return read_predictions(group.representative.predictions_path("external"), task,
                                expected_case_ids=ids).align(ids).probs

    for above, row in zip(section.groups, section.groups[1:]):
        expected = compare_task(task, truth["label"].to_numpy(np.int64), probs(row), probs(above),
                                metrics=["detection_balanced_accuracy"], resamples=1000, seed=0)
        assert row.vs_above == expected["detection_balanced_accuracy"]


def test_residual_section_columns_and_published_reference_lines(two_tasks):
    lb, task = two_tasks["lb"], two_tasks["task"]
    readme = (lb / "README.md").read_text()
    residual_part = readme.split("## residual-tissue")[1].split("## How to submit")[0]
    header = next(line for line in residual_part.splitlines() if line.startswith("| Rank"))
    assert header == ("| Rank | Model | Protocol | Pretrained | Seeds | Reproduced | "
                      "Int. detection balanced accuracy | "
                      "**Ext. detection balanced accuracy** | Quadratic kappa int. / ext. | "
                      "Detection sensitivity int. / ext. | Detection specificity int. / ext. | "
                      "Detection AUC int. / ext. | Gap (detection balanced accuracy, pp) | vs. row above | "
                      "Params | Date |")
    # the four-pattern section keeps its columns
    assert ("| Rank | Model | Protocol | Pretrained | Seeds | Reproduced | Int. accuracy | Int. macro F1 | "
            "Ext. accuracy | **Ext. macro F1** | Macro AUC int. / ext. | Gap (macro F1, pp) | vs. row above | Params | Date |"
            ) in readme.split("## residual-tissue")[0]
    # reference lines: every published result, its figures in percent, marked; never a table row
    rows = [line for line in residual_part.splitlines() if line.startswith("| ") and "`" in line]
    (section,) = [s for s in render_leaderboard(lb, write=False).sections if s.task is task]
    assert [r.split("|")[2].strip() for r in rows] == [f"`{g.model}`" for g in section.groups]
    assert [r.split("|")[1].strip() for r in rows] == [
        f"{g.rank} ≈" if g.tied_with_above else str(g.rank) for g in section.groups]
    refs = [line for line in residual_part.splitlines() if "published, private data, not comparable" in line]
    assert len(refs) == len(task.published) == 2
    assert all(line.startswith("- ") for line in refs)
    assert "Lai Phu Minh et al., NICS 2022" in refs[0] and "detection sensitivity 84.85%" in refs[0]
    assert "detection specificity 89.11%" in refs[0] and "Guo et al. 2021" in refs[1]
    assert "doi 10.3389/fonc.2021.762643" in refs[1] and "detection accuracy 96.69%" in refs[1]
    assert "published, private data, not comparable" not in readme.split("## residual-tissue")[0]
    # the lead names each task's main score
    assert "`four-pattern` (Qiao et al. 2021" in readme and "ranked by **external macro F1**" in readme
    assert "ranked by **external detection balanced accuracy**" in readme
    assert "**Primary metric: external detection balanced accuracy**" in readme
    # the text view: the section's columns, then the reference lines, unranked
    text = render_text(render_leaderboard(lb, write=False))
    block = text.split("residual-tissue · tiny-residual")[1]
    assert re.search(r"^rank\s+model\s+protocol\s+seeds\s+ext det\. bal\. acc\s+int det\. bal\. acc\s+"
                     r"ext QWK\s+gap det\. bal\. acc\s+vs above$", block, re.M)
    assert re.search(r"^ref  Lai Phu Minh et al\., NICS 2022: det\. sens 84\.85, det\. spec 89\.11.*"
                     r"\[published, private data, not comparable\]$", block, re.M)
    # the HTML page: reference lines outside the ranking table
    page = (lb / "index.html").read_text()
    assert page.count("published, private data, not comparable") == 2
    for table in re.findall(r'<table class="ranking".*?</table>', page, re.S):
        assert "published" not in table and "NICS" not in table
    assert 'data-key="external.detection_balanced_accuracy" data-type="num" data-first="descending">' \
           "Ext. detection balanced accuracy ★</th>" in page
    assert "<td>absent (grade 0)</td>" in page and "External detection, median seed" in page


def test_residual_labels_stored_with_uptake_and_present(two_tasks):
    from thyroid_bench.leaderboard.store import read_label_values, read_labels

    task = two_tasks["task"]
    section = two_tasks["lb"] / "entries" / "residual-tissue" / "tiny-residual@1.0.0"
    with open(section / "labels" / "external.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["case_id", "label", "uptake_pct"]
    truth = read_split(two_tasks["dataset"], "external", columns=["case_id", "label", "uptake_pct"])
    by_id = {r[0]: r for r in rows[1:]}
    for cid, label, uptake in zip(truth["case_id"], truth["label"], truth["uptake_pct"]):
        assert by_id[cid][1] == ("present" if label == -1 else task.class_names[label])
        assert by_id[cid][2] == ("" if np.isnan(uptake) else repr(float(uptake)))
    assert sum(r[1] == "present" for r in rows[1:]) == 6
    labels, values = read_labels(section, task), read_label_values(section, task)
    assert labels["external"] == dict(zip(truth["case_id"], truth["label"].astype(int)))
    np.testing.assert_array_equal([values["external"]["uptake_pct"][c] for c in truth["case_id"]],
                                  truth["uptake_pct"].to_numpy())


def test_stored_residual_entries_rescore_from_stored_labels(two_tasks):
    """Every stored residual entry's metrics, uptake figures included, are recomputed exactly
    from its stored predictions and the labels stored beside them (no dataset needed)."""
    from thyroid_bench.evaluation.predictions import read_predictions
    from thyroid_bench.evaluation.suites import evaluate_task
    from thyroid_bench.leaderboard.store import read_label_values, read_labels

    task = two_tasks["task"]
    section = two_tasks["lb"] / "entries" / "residual-tissue" / "tiny-residual@1.0.0"
    labels, values = read_labels(section, task), read_label_values(section, task)
    stored = [s for s in load_entries(two_tasks["lb"]) if s.entry.task == task.name]
    assert len(stored) == 4
    for s in stored:
        for split in task.eval_splits:
            preds, y, _ = read_predictions(s.predictions_path(split), task,
                                           expected_case_ids=list(labels[split])).against(labels[split])
            true = {"uptake_pct": np.array([values[split]["uptake_pct"][c] for c in preds.case_ids])}
            again = evaluate_task(task, y, preds.probs, bootstrap=1000, seed=0, values=preds.values,
                                  true_values=true)
            assert first_difference(s.entry.metrics[split], again, split) is None
    # the uptake figures are there and are what they should be: each measured case is
    # predicted 0.1 (seed 0) above its true uptake
    (seed0,) = [s for s in stored if s.entry.model.name == "res-good" and s.entry.seed == 0]
    ext = seed0.entry.metrics["external"]
    measured = np.isfinite(list(values["external"]["uptake_pct"].values()))
    assert ext["uptake_n"] == measured.sum() == 32
    assert ext["uptake_mae"] == pytest.approx(0.1, abs=1e-9)


def _residual_tamper_ba(run):
    edit_entry(run, lambda d: d["metrics"]["external"].update(
        detection_balanced_accuracy=d["metrics"]["external"]["detection_balanced_accuracy"] + 0.01))


def _residual_tamper_uptake(run):
    def change(rows):
        col = rows[0].index("uptake_pct")
        rows[1][col] = repr(float(rows[1][col]) + 5.0)
        return rows
    rewrite_rows(run, "external", change)


@pytest.mark.parametrize("tamper, says", [
    (_residual_tamper_ba, "metrics.external.detection_balanced_accuracy"),
    (_residual_tamper_uptake, "metrics.external.uptake_mae"),
], ids=["balanced-accuracy-edited", "uptake-prediction-edited"])
def test_residual_submit_rescores_and_refuses_tampering(two_tasks, tmp_path, tamper, says):
    dataset = two_tasks["dataset"]
    lb = tmp_path / "lb"
    fresh = make_residual_run(tmp_path / "fresh", dataset, model="res-new", seed=3, skill=0.3, uptake=True)
    result = submit(fresh, leaderboard=lb, home=two_tasks["home"])  # re-scored, uptake included: accepted
    assert result.paths[0].parent.name == "tiny-residual@1.0.0"
    before = snapshot(lb)
    bad = make_residual_run(tmp_path / "bad", dataset, model="res-new", seed=4, skill=0.3, uptake=True)
    tamper(bad)
    with pytest.raises(SubmissionError) as info:
        submit(bad, leaderboard=lb, home=two_tasks["home"])
    assert info.value.check == "metrics" and says in str(info.value)
    assert snapshot(lb) == before


def _stored_edit_figure(lb):
    (path,) = sorted((lb / "entries" / "residual-tissue").glob("*/res-mid-*/entry.json"))
    data = json.loads(path.read_text())
    data["metrics"]["external"]["detection_sensitivity"] = 0.99
    path.write_text(json.dumps(data, indent=2))
    return path, "changed since it was submitted"


def _stored_relabel_four_pattern(lb):
    """A four-pattern entry relabelled residual-tissue, its folder renamed after the new hash and
    moved into the residual section, so that only its dataset gives it away."""
    from thyroid_bench.hashing import sha256_file

    (old,) = sorted((lb / "entries" / "four-pattern").glob("*/fp-b-*/entry.json"))
    data = json.loads(old.read_text())
    data["task"] = "residual-tissue"
    old.write_text(json.dumps(data, indent=2))
    folder = lb / "entries" / "residual-tissue" / "tiny-residual@1.0.0" / f"fp-b-quick-seed0-{sha256_file(old)[:8]}"
    shutil.move(old.parent, folder)
    return folder / "entry.json", r"task residual-tissue on tiny-lb@1\.0\.0 stored outside its section"


def _stored_labels(lb, column: int, value: str | None, *, repin: bool = True):
    """Edit a stored labels file; with ``repin`` also its pin in dataset.json, as a forger would."""
    section = lb / "entries" / "residual-tissue" / "tiny-residual@1.0.0"
    path = section / "labels" / "external.csv"
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    row = next(r for r in rows[1:] if r[1] == "low")
    row[column] = value
    with open(path, "w", newline="") as f:
        csv.writer(f, lineterminator="\n").writerows(rows)
    if repin:
        info = json.loads((section / "dataset.json").read_text())
        info["splits"]["external"]["sha256"] = sha256_file(path)
        (section / "dataset.json").write_text(json.dumps(info, indent=2))
    return path, row[0]


def _stored_uptake(value):
    def tamper(lb):
        path, _ = _stored_labels(lb, 2, value)
        return path, rf"uptake_pct = '{re.escape(value)}' is not a finite number from 0 to 100"
    return tamper


def _stored_grade(lb):
    """Recomputed from the stored predictions (whose label column their entry's hash vouches
    for) and the edited labels, the entry fails its ``predictions`` check."""
    path, case = _stored_labels(lb, 1, "high")
    return path.parent.parent, (rf"fails check 'predictions' when recomputed from its stored "
                                rf"predictions and labels: .*predictions/external\.csv: the label "
                                rf"column says low for case '{case}', the dataset says high")


def _stored_labels_unpinned(lb):
    path, _ = _stored_labels(lb, 1, "high", repin=False)
    return path, (r"external\.csv: changed since it was stored \(its SHA-256 [0-9a-f]{12}\.\.\. is "
                  r"not the one .*dataset\.json pins for split external\)")


def _stored_labels_pin_removed(lb):
    path = lb / "entries" / "residual-tissue" / "tiny-residual@1.0.0" / "dataset.json"
    info = json.loads(path.read_text())
    del info["splits"]["external"]["sha256"]
    path.write_text(json.dumps(info, indent=2))
    return path, r"dataset\.json: not a valid section record: .*a section written before labels files were pinned"


@pytest.mark.parametrize("tamper", [
    _stored_edit_figure, _stored_relabel_four_pattern, _stored_uptake("inf"), _stored_uptake("-0.5"),
    _stored_uptake("250"), _stored_uptake("nan"), _stored_grade, _stored_labels_unpinned,
    _stored_labels_pin_removed,
], ids=["entry-figure-edited", "four-pattern-entry-relabelled", "labels-uptake-inf",
        "labels-uptake-negative", "labels-uptake-250", "labels-uptake-nan", "labels-grade-edited",
        "labels-edited-unpinned", "labels-pin-removed"])
def test_stored_residual_files_edited_by_hand_are_refused(two_tasks, tmp_path, capsys, tamper):
    """``leaderboard`` (and every ``submit``, which re-renders) refuses a stored entry, label or
    uptake edited since submission, with one error line naming the file; nothing is rendered."""
    lb = Path(shutil.copytree(two_tasks["lb"], tmp_path / "lb"))
    render_leaderboard(lb, write=False)  # pristine: fine
    path, says = tamper(lb)
    with pytest.raises(LeaderboardError, match=says) as info:
        render_leaderboard(lb, write=False)
    assert str(path) in str(info.value)
    before = snapshot(lb)
    assert main(["leaderboard", "--leaderboard", str(lb), "--render"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("thyroid-bench leaderboard: error: ") and str(path) in err
    assert "Traceback" not in err and snapshot(lb) == before


def test_published_figures_are_rounded_as_a_reader_rounds():
    """Guo et al.'s derived balanced accuracy, (94.75 + 99.6) / 2 = 97.175%, reads 97.18
    (float rounding of 97.175 gives 97.17)."""
    from thyroid_bench.leaderboard.display import published_line, published_text
    from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

    guo = RESIDUAL_TISSUE.published[1]
    assert guo.figures["detection_balanced_accuracy"] == pytest.approx(
        (guo.figures["detection_sensitivity"] + guo.figures["detection_specificity"]) / 2)
    assert "detection balanced accuracy 97.18%" in published_line(guo)
    assert "det. bal. acc 97.18" in published_text(guo)
    assert "detection specificity 99.6%" in published_line(guo)


def test_leaderboard_help_names_every_tasks_main_score(capsys):
    from thyroid_bench.tasks import get_task

    with pytest.raises(SystemExit):
        main(["leaderboard", "--help"])
    text = " ".join(capsys.readouterr().out.split()).lower()
    for task in map(get_task, ("four-pattern", "residual-tissue")):  # the package's own tasks
        score = f"{task.main_score.split} {task.main_score.metric.replace('_', ' ')}"
        assert f"{task.name}: {score}" in text
    assert "reference lines, never ranked" in text
