"""Private evaluation labels: a dataset version that withholds the labels of its external split,
for both tasks. The public folder and the leaderboard never hold a withheld label; `run` predicts
the split without scoring it; `submit` scores it only from the organisers' labels file, and the
leaderboard ranks and re-renders from the figures it stored at submission.

Each task gets a tiny dataset whose external labels (and, for residual-tissue, uptake values)
are distinctive, one `thyroid-bench run` of a tiny timm model, and made-up run folders where a
second row is needed.
"""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
import stat
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from sklearn import metrics as skm

from conftest import make_rows, output_haystacks
from test_leaderboard import build_entry
from test_run_residual import residual_rows
from thyroid_bench.cli import main
from thyroid_bench.data.card import counts_table
from thyroid_bench.data.format import read_manifest, read_split, write_dataset
from thyroid_bench.data.private import private_splits, read_labels_file
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError
from thyroid_bench.evaluation.entry import PredictionsFile, read_entry, write_entry
from thyroid_bench.evaluation.predictions import read_predictions, write_predictions
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.evaluation.withheld import withheld_metrics
from thyroid_bench.hashing import sha256_file
from thyroid_bench.leaderboard import LeaderboardError, SubmissionError, render_leaderboard, submit
from thyroid_bench.tasks import UNKNOWN_GRADE, get_task

RUN = ["--model", "timm:test_resnet", "--epochs", "1", "--num-threads", "1", "--quiet",
       "--device", "cpu"]
N_EXT = 16


def _four_pattern_splits() -> dict[str, list[dict]]:
    """train 40 / internal 16 / external 16; the external labels are a shuffled sequence (not
    the cycle every split of make_rows has), so that a leak of them is recognisable."""
    external = make_rows("external", N_EXT, start=200)
    labels = np.random.default_rng(7).permutation(np.arange(N_EXT) % 4)
    for row, label in zip(external, labels):
        row["label"] = int(label)
    return {"train": make_rows("train", 40), "internal": make_rows("internal", 16, start=100),
            "external": external}


def _residual_splits() -> dict[str, list[dict]]:
    """Two views per case; external has two present-of-unknown-grade cases and uptake values
    (distinctive decimals, so that a leaked value would be found as text)."""
    external = residual_rows("external", N_EXT, 2, unknown=(3, 7))
    for i, row in enumerate(external):
        row["uptake_pct"] = None if i % 5 == 4 else round(0.1234567 + 0.7071067 * (i % 4), 7)
    return {"train": residual_rows("train", 40, 0, unknown=(5, 13)),
            "internal": residual_rows("internal", 12, 1), "external": external}


TASKS = {"four-pattern": ("tiny-four", _four_pattern_splits),
         "residual-tissue": ("tiny-res", _residual_splits)}


@pytest.fixture(scope="module", params=list(TASKS))
def case(request, tmp_path_factory):
    """A task's dataset with external labels withheld, the organisers' labels file, one harness
    run on it, and the external split's true labels and values (what must never leak)."""
    name, make = TASKS[request.param]
    task = get_task(request.param)
    tmp = tmp_path_factory.mktemp(name)
    home = tmp / "home"
    splits = make()
    path = write_dataset(name, "1.0.0", splits, task=task, home=home, private_labels=["external"],
                         provenance={"made_by": "tests"}, licence="cc0-1.0")
    run_dir = tmp / "runs" / "r0"
    assert main(["run", *RUN, "--dataset", str(path), "--out", str(run_dir)]) == 0
    truth = {r["case_id"]: (r["label"], r.get("uptake_pct")) for r in splits["external"]}
    return {"task": task, "name": name, "home": home, "path": path, "run": run_dir, "tmp": tmp,
            "truth": truth, "labels_file": home / "private" / f"{name}@1.0.0" / "labels.csv"}


def _label_text(task, label: int) -> str:
    return task.detection.present_label if label == UNKNOWN_GRADE else task.class_names[label]


def _needles(case) -> list[bytes]:
    """What a leak of the withheld labels would look like: the labels file's bytes, each case's
    ``case_id,label`` line, the label sequence, and every uptake value as text."""
    task, truth = case["task"], case["truth"]
    ids = sorted(truth)
    needles = [case["labels_file"].read_bytes()]
    needles += [f"{c},{_label_text(task, truth[c][0])}".encode() for c in ids]
    needles.append(",".join(_label_text(task, truth[c][0]) for c in ids).encode())
    needles.append(json.dumps([truth[c][0] for c in ids]).encode())
    needles += [repr(float(v)).encode() for _, v in truth.values() if v is not None]
    return needles


def _assert_no_leak(folder: Path, case) -> None:
    haystacks = output_haystacks(folder)
    assert len(haystacks) > 3
    for needle in _needles(case):
        hits = [i for i, h in enumerate(haystacks) if needle in h]
        assert not hits, (needle[:80], folder)


def _submit(case, leaderboard: Path, *runs: Path, labels: Path | None = None) -> int:
    extra = [] if labels is None else ["--private-labels", str(labels)]
    return main(["submit", *map(str, runs or [case["run"]]), "--leaderboard", str(leaderboard),
                 "--home", str(case["home"]), *extra])


@pytest.fixture(scope="module")
def board(case):
    """The leaderboard after the organisers submitted the harness run with their labels file."""
    leaderboard = case["tmp"] / "leaderboard"
    assert _submit(case, leaderboard, labels=case["labels_file"]) == 0
    return leaderboard


# --------------------------------------------------------------------------- the dataset
def test_public_folder_has_no_withheld_label_and_verifies(case, capsys):
    path, task = case["path"], case["task"]
    _assert_no_leak(path, case)
    for shard in (path / "data").glob("external-*.parquet"):  # the sentinel, not the truth
        table = pq.read_table(shard).to_pydict()
        assert set(table["label"]) == {-1}
        if task.regression_target:
            assert set(table[task.regression_target]) == {None}
    manifest = read_manifest(path)
    assert manifest.splits["external"].class_counts == {}
    assert manifest.splits["internal"].class_counts  # public splits keep theirs
    assert "## Private evaluation labels" in (path / "README.md").read_text()
    external_row = counts_table(manifest).splitlines()[-1].split(" | ")
    assert external_row[0] == "| external" and set(external_row[2:-1]) == {"withheld"}
    assert main(["verify", str(path)]) == 0
    out = capsys.readouterr().out
    assert "result    OK" in out and "labels of external withheld" in out
    assert main(["info", str(path)]) == 0
    info = capsys.readouterr().out
    external = next(line for line in info.splitlines() if line.startswith("external"))
    assert external.split()[-2:] == [str(N_EXT), str(N_EXT)]  # all under "withheld", and total


def test_labels_file_is_outside_private_and_pinned_by_the_manifest(case):
    labels_file, task, truth = case["labels_file"], case["task"], case["truth"]
    assert not labels_file.resolve().is_relative_to(case["path"].resolve())
    assert stat.S_IMODE(labels_file.stat().st_mode) == 0o600
    manifest = read_manifest(case["path"])
    assert manifest.private_labels.sha256 == hashlib.sha256(labels_file.read_bytes()).hexdigest()
    with open(labels_file, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["case_id"] for r in rows] == sorted(truth)
    assert [task.parse_label(r["label"]) if r["label"] != "present" else UNKNOWN_GRADE
            for r in rows] == [truth[c][0] for c in sorted(truth)]
    if task.regression_target:
        assert [float(r["uptake_pct"]) if r["uptake_pct"] else None for r in rows] == [
            truth[c][1] for c in sorted(truth)]
    back = read_labels_file(labels_file, task, sha256=manifest.private_labels.sha256,
                            splits=["external"], what="the manifest")
    assert back.labels["external"] == {c: y for c, (y, _) in truth.items()}


def test_plain_load_dataset_reads_the_withheld_split_as_no_label(case):
    import datasets

    ds = datasets.load_dataset(str(case["path"]))
    assert ds["external"]["label"] == [-1] * N_EXT
    assert len(ds["train"]) == 40


def test_score_refuses_a_withheld_split(case, capsys):
    preds = case["run"] / "predictions" / "external.csv"
    assert main(["score", str(preds), "--dataset", str(case["path"]), "--split", "external",
                 "--no-figures"]) == 2
    assert "are withheld by its organisers" in capsys.readouterr().err


# --------------------------------------------------------------------------- the run
def test_run_predicts_the_withheld_split_without_scoring_it(case):
    run_dir, task = case["run"], case["task"]
    entry = read_entry(run_dir / "entry.json")
    assert entry.metrics["external"] == withheld_metrics(N_EXT, bootstrap=1000)
    assert "macro_f1" in entry.metrics["internal"]
    preds = read_predictions(run_dir / "predictions" / "external.csv", task)
    assert preds.labels is None and sorted(preds.case_ids) == sorted(case["truth"])
    assert json.loads((run_dir / "metrics.json").read_text())["external"]["withheld"] is True
    report = (run_dir / "report.md").read_text()
    assert "## Withheld labels" in report and "external: labels withheld" in report
    assert not (run_dir / "figures" / "confusion_external.png").exists()
    _assert_no_leak(run_dir, case)


def test_run_says_it_did_not_score(case, tmp_path, capsys):
    assert main(["run", "--model", "timm:test_resnet", "--num-threads", "1", "--quiet", "--device",
                 "cpu", "--dataset", str(case["path"]), "--out", str(tmp_path / "r"), "--bootstrap",
                 "0", "--eval-only", "--checkpoint", str(case["run"] / "model.safetensors")]) == 0
    out = capsys.readouterr().out
    assert f"external (n = {N_EXT})\nlabels withheld by the dataset's organisers" in out


# --------------------------------------------------------------------------- submit
def test_submit_without_the_organisers_file_refuses(case, tmp_path, capsys):
    assert _submit(case, tmp_path / "lb") == 2
    err = capsys.readouterr().err
    assert "rejected by check 'private labels'" in err and "--private-labels FILE" in err
    assert not (tmp_path / "lb").exists()


def test_submit_with_a_wrong_file_refuses(case, tmp_path, capsys):
    edited = tmp_path / "labels.csv"
    text = case["labels_file"].read_text().splitlines()
    first = text[1].split(",")
    other = next(n for n in case["task"].class_names if n != first[2])
    edited.write_text("\n".join([text[0], ",".join([*first[:2], other, *first[3:]]), *text[2:]]) + "\n")
    for wrong in (edited, case["path"] / "manifest.json", tmp_path / "missing.csv"):
        assert _submit(case, tmp_path / "lb", labels=wrong) == 2
        err = capsys.readouterr().err
        assert "rejected by check 'private labels'" in err, err
    assert "is not the" in _refusal(case, edited) and "organisers' labels file" in _refusal(case, edited)
    assert not (tmp_path / "lb").exists()


def _refusal(case, labels: Path) -> str:
    with pytest.raises(SubmissionError) as info:
        submit(case["run"], leaderboard=case["tmp"] / "never", home=case["home"], private_labels=labels)
    return str(info.value)


def test_submit_with_the_organisers_file_ranks_the_entry(case, board):
    task, truth = case["task"], case["truth"]
    section = board / "entries" / task.name / f"{case['name']}@1.0.0"
    record = json.loads((section / "dataset.json").read_text())
    assert record["splits"]["external"] == {
        "rows": N_EXT, "sha256": sha256_file(case["labels_file"]), "private": True}
    assert "private" not in record["splits"]["internal"]
    assert sorted(p.name for p in (section / "labels").iterdir()) == ["internal.csv"]
    (entry_dir,) = [p for p in section.iterdir() if p.is_dir() and p.name != "labels"]
    scores = json.loads((entry_dir / "scores.json").read_text())
    assert scores["entry_sha256"] == sha256_file(entry_dir / "entry.json")
    assert scores["labels_sha256"] == sha256_file(case["labels_file"])
    figures = scores["splits"]["external"]
    preds = read_predictions(entry_dir / "predictions" / "external.csv", task)
    y = np.array([truth[c][0] for c in preds.case_ids])
    if task.detection is None:  # macro F1 as scikit-learn computes it
        assert figures["macro_f1"] == pytest.approx(
            skm.f1_score(y, preds.probs.argmax(1), average="macro", labels=range(4), zero_division=0))
    else:  # detection on P(present) = 1 - P(absent) >= 0.5; -1 is present
        assert figures["detection_balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(
            y != 0, 1 - preds.probs[:, 0] >= 0.5))
    assert figures["n"] == N_EXT
    readme = (board / "README.md").read_text()
    assert "The labels of external are withheld by the organisers" in readme
    _assert_no_leak(board, case)


def test_leaderboard_rerenders_without_the_labels(case, board, capsys):
    before = {p: (board / p).read_bytes() for p in ("README.md", "index.html")}
    assert main(["leaderboard", "--leaderboard", str(board), "--render"]) == 0
    assert {p: (board / p).read_bytes() for p in before} == before
    shown = capsys.readouterr().out
    # The organisers recompute the withheld figures from their file: the same ranking, and
    # the pages (never rendered from those labels) stay as they were.
    assert main(["leaderboard", "--leaderboard", str(board), "--private-labels",
                 str(case["labels_file"]), "--render"]) == 0
    assert capsys.readouterr().out == shown
    assert {p: (board / p).read_bytes() for p in before} == before
    other = case["tmp"] / "other-labels.csv"
    other.write_text("split,case_id,label\n")
    assert main(["leaderboard", "--leaderboard", str(board), "--private-labels", str(other)]) == 2
    assert "the labels file of no section" in capsys.readouterr().err


def test_stored_scores_are_checked(case, board, tmp_path):
    copy = tmp_path / "board"
    shutil.copytree(board, copy)
    (scores,) = copy.rglob("scores.json")
    record = json.loads(scores.read_text())
    metric = case["task"].main_score.metric
    record["splits"]["external"][metric] = 0.999
    scores.write_text(json.dumps(record))
    # Without the labels the stored figures stand (they cannot be recomputed), but they show
    # as stored; with the organisers' labels the edit is found.
    with pytest.raises(LeaderboardError, match="scores.json stores 0.999"):
        render_leaderboard(copy, write=False, private_labels=case["labels_file"])
    # Made-up figures that do not fit the public predictions are found without the labels: the
    # confusion matrix's column sums are the predicted-class counts of the stored predictions.
    task = case["task"]
    (predictions,) = copy.rglob("predictions/external.csv")
    probs = np.loadtxt(predictions, delimiter=",", skiprows=1, usecols=range(1, 1 + task.num_classes),
                       ndmin=2)
    key = "confusion_matrix" if task.detection is None else "detection_confusion_matrix"
    if task.detection is None:
        called = np.bincount(probs.argmax(axis=1), minlength=task.num_classes).tolist()
    else:  # called present when P(present) = 1 - P(absent) >= 0.5
        present = int((1 - probs[:, 0] >= 0.5).sum())
        called = [len(probs) - present, present]
    matrix = record["splits"]["external"][key]
    original = [row[:] for row in matrix]
    assert [sum(col) for col in zip(*original)] == called  # worked out from the file itself
    top = max(range(len(called)), key=called.__getitem__)
    matrix[top][top] -= 1
    matrix[top][(top + 1) % len(called)] += 1  # one case moved to another predicted class
    scores.write_text(json.dumps(record))
    with pytest.raises(LeaderboardError, match="do not fit the entry's own predictions"):
        render_leaderboard(copy, write=False)
    record["splits"]["external"][key] = original
    record["splits"]["external"]["n"] += 1
    scores.write_text(json.dumps(record))
    with pytest.raises(LeaderboardError, match="do not fit the entry's own predictions"):
        render_leaderboard(copy, write=False)
    record["splits"]["external"]["n"] -= 1
    record["entry_sha256"] = "0" * 64
    scores.write_text(json.dumps(record))
    with pytest.raises(LeaderboardError, match="not the scores of this entry"):
        render_leaderboard(copy, write=False)
    scores.unlink()
    with pytest.raises(LeaderboardError, match="missing or not a scores record"):
        render_leaderboard(copy, write=False)


def _made_up_run(case, run_dir: Path, *, model: str, seed: int) -> Path:
    """A run folder as the harness leaves it on this dataset: internal scored, external marked
    withheld, random probabilities."""
    task, path = case["task"], case["path"]
    manifest = read_manifest(path)
    metrics, files = {}, {}
    for k, split in enumerate(task.eval_splits):
        table = read_split(path, split, columns=["case_id", "label"])
        ids = [str(c) for c in table["case_id"]]
        probs = np.random.default_rng([seed, k]).dirichlet(np.ones(task.num_classes), len(ids))
        rel = f"predictions/{split}.csv"
        withheld = split == "external"
        y = table["label"].to_numpy(dtype=np.int64)
        write_predictions(run_dir / rel, task, ids, probs, labels=None if withheld else y)
        if withheld:
            metrics[split] = withheld_metrics(len(ids), bootstrap=1000)
        else:
            values = read_split(path, split, columns=[task.regression_target]) if task.regression_target else None
            true_values = {} if values is None else {task.regression_target: values[task.regression_target].to_numpy(np.float64)}
            metrics[split] = evaluate_task(task, y, probs, bootstrap=1000, seed=0, values={},
                                           true_values=true_values)
        files[split] = PredictionsFile(path=rel, sha256=sha256_file(run_dir / rel), rows=len(ids))
    in_chans = len(task.image_columns)
    write_entry(run_dir / "entry.json", build_entry(run_dir, manifest, model=model, seed=seed,
                                                    metrics=metrics, files=files, in_chans=in_chans))
    return run_dir


def test_ties_on_a_withheld_main_split_are_not_computed(case, tmp_path, capsys):
    leaderboard = tmp_path / "lb"
    runs = [_made_up_run(case, tmp_path / f"run{i}", model=f"toy-{i}", seed=i) for i in range(2)]
    assert _submit(case, leaderboard, *runs, labels=case["labels_file"]) == 0
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard", str(leaderboard)]) == 0
    text = capsys.readouterr().out
    assert text.count("not computed (labels withheld)") == 1  # the second row; the first has none
    readme = (leaderboard / "README.md").read_text()
    assert f"Paired-bootstrap ties on {case['task'].main_score.split}: not computed (labels withheld)" in readme
    assert "not computed (labels withheld)" in (leaderboard / "index.html").read_text()
    _assert_no_leak(leaderboard, case)


def test_an_entry_claiming_figures_for_a_withheld_split_is_refused(case, tmp_path):
    run_dir = _made_up_run(case, tmp_path / "run", model="toy-claims", seed=5)
    entry = read_entry(run_dir / "entry.json")
    metrics = dict(entry.metrics, external=dict(entry.metrics["internal"]))
    write_entry(run_dir / "entry.json", entry.model_copy(update={"metrics": metrics}))
    with pytest.raises(SubmissionError, match="check 'metrics'.*labels are withheld"):
        submit(run_dir, leaderboard=tmp_path / "lb", home=case["home"], private_labels=case["labels_file"])
    assert not (tmp_path / "lb").exists()


# --------------------------------------------------------------------------- the sources
def test_private_splits_name_evaluation_splits_only():
    task = get_task("four-pattern")
    assert private_splits("external", task) == ("external",)
    assert private_splits(" external,internal ", task) == ("internal", "external")
    with pytest.raises(DatasetError, match="what users train on"):
        private_splits("train", task)
    with pytest.raises(DatasetError, match="distinct evaluation splits"):
        private_splits("external,test", task)


def test_labels_file_inside_the_dataset_folder_is_refused(tmp_path):
    splits = _four_pattern_splits()
    with pytest.raises(DatasetError, match="which is published"):
        write_dataset("tiny", "1.0.0", splits, home=tmp_path, private_labels=["external"],
                      labels_file=tmp_path / "tiny" / "1.0.0" / "labels.csv")
    assert not (tmp_path / "tiny").exists()


def test_labels_file_never_overwrites_another_file_nor_follows_a_loop(tmp_path):
    splits = _four_pattern_splits()
    key = tmp_path / "site.key"
    key.write_bytes(b"k" * 32)  # a pseudonym key: losing it loses the pseudonyms
    with pytest.raises(DatasetError, match="exists and is not an organisers' labels file"):
        write_dataset("tiny", "1.0.0", splits, home=tmp_path / "home", private_labels=["external"],
                      labels_file=key)
    assert key.read_bytes() == b"k" * 32 and not (tmp_path / "home" / "tiny").exists()
    loop = tmp_path / "loop"
    loop.symlink_to(loop)
    with pytest.raises(DatasetError, match="cannot be resolved"):
        write_dataset("tiny", "1.0.0", splits, home=tmp_path / "home", private_labels=["external"],
                      labels_file=loop / "labels.csv")
    with pytest.raises(DatasetError, match="is a file, not a folder"):
        write_dataset("tiny", "1.0.0", splits, home=tmp_path / "home", private_labels=["external"],
                      labels_file=key / "labels.csv")
    # an earlier labels file is replaced when the version is rebuilt
    labels = tmp_path / "labels.csv"
    write_dataset("tiny", "1.0.0", splits, home=tmp_path / "home", private_labels=["external"],
                  labels_file=labels)
    first = labels.read_bytes()
    write_dataset("tiny", "1.0.0", splits, home=tmp_path / "home", private_labels=["external"],
                  labels_file=labels, force=True)
    assert labels.read_bytes() == first and first.startswith(b"split,case_id,label")


@pytest.mark.parametrize("task", ["four-pattern", "residual-tissue"])
def test_prepare_synthetic_builds_an_unofficial_private_variant(task, tmp_path, monkeypatch, capsys):
    import thyroid_bench.data.synthetic.prepare as prep

    cohort = prep.COHORTS[prep.cohort_for_task(task)].module
    real = cohort.cohort_rows
    mini = {s: (2, 1, 1, 1) for s in ("train", "internal", "external")}
    mini["train"] = (5, 5, 5, 5)
    monkeypatch.setattr(cohort, "cohort_rows",
                        lambda seed, counts=None, progress=True, workers=1: real(
                            seed, counts=mini, progress=False, workers=1))
    assert main(["prepare", "--task", task, "--home", str(tmp_path), "--private-labels", "external",
                 "--preview", str(tmp_path / "p.png")]) == 0
    name = f"{cohort.NAME}-private"
    path = tmp_path / name / "1.0.0"
    labels_file = tmp_path / "private" / f"{name}@1.0.0" / "labels.csv"
    captured = capsys.readouterr()
    assert f"dataset ready: {path}" in captured.out
    assert f"the organisers' labels file is {labels_file} (PRIVATE: never publish it" in captured.err
    report = verify_dataset(path)
    assert report.ok and report.official is None  # not the pinned official build
    manifest = read_manifest(path)
    counts_key = "table1_counts" if "table1_counts" in manifest.provenance else "counts"
    assert manifest.provenance[counts_key]["external"] == "withheld"
    assert manifest.provenance[counts_key]["train"] != "withheld"
    labels = {r["case_id"]: r["label"] for r in csv.DictReader(open(labels_file, newline=""))}
    external = read_split(path, "external", columns=["case_id", "label"])
    assert sorted(labels) == sorted(external["case_id"]) and set(external["label"]) == {-1}
    text = (path / "README.md").read_text() + (path / "manifest.json").read_text()
    assert labels_file.read_text() not in text
    assert main(["prepare", "--task", task, "--home", str(tmp_path), "--private-labels", "train"]) == 2
    assert "what users train on" in capsys.readouterr().err


def test_preview_leaves_the_withheld_split_out(tmp_path):
    from thyroid_bench.data.preview import _from_dataset, render_preview

    path = write_dataset("priv", "1.0.0", _four_pattern_splits(), home=tmp_path,
                         private_labels=["external"])
    assert set(_from_dataset(path, None).rows_by_split) == {"train", "internal"}
    assert render_preview(None, tmp_path / "p.png", dataset_path=path).stat().st_size > 1000


def test_manifests_without_withheld_labels_are_as_before(tiny_splits, tmp_path):
    path = write_dataset("plain", "1.0.0", tiny_splits, home=tmp_path)
    assert "private_labels" not in json.loads((path / "manifest.json").read_text())
    assert read_manifest(path).withheld_splits == ()
    assert "Private evaluation labels" not in (path / "README.md").read_text()
    assert not (tmp_path / "private").exists()


def test_hub_pulls_the_published_private_version(tmp_path, monkeypatch):
    import huggingface_hub

    from test_hub import _fake_snapshot
    from thyroid_bench.data.hub import prepare_hub

    with pytest.raises(DatasetError, match="need a labels_file"):
        write_dataset("toy-hub", "1.0.0", _four_pattern_splits(), root=tmp_path / "repo",
                      private_labels=["external"])
    repo = write_dataset("toy-hub", "1.0.0", _four_pattern_splits(), root=tmp_path / "repo",
                         private_labels=["external"], labels_file=tmp_path / "organisers" / "l.csv")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", _fake_snapshot(repo, []))
    path = prepare_hub("org/toy-hub", home=tmp_path / "home")
    assert read_manifest(path).withheld_splits == ("external",) and verify_dataset(path).ok
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["toy-hub"]  # no labels file


def test_hub_source_takes_the_published_choice(tmp_path, capsys):
    assert main(["prepare", "--source", "hub", "--repo-id", "org/x", "--private-labels", "external",
                 "--home", str(tmp_path)]) == 2
    assert "withholds the labels its publisher withheld" in capsys.readouterr().err
    assert main(["prepare", "--private-labels-file", str(tmp_path / "l.csv"), "--home", str(tmp_path)]) == 2


def test_prepare_dicom_withholds_external_labels(tmp_path, capsys):
    from thyroid_bench.data.dicom.ingest import prepare_dicom
    from thyroid_bench.testing.dicom_writer import write_archive

    rng = np.random.default_rng(3)
    rows = [{"image": rng.poisson(6.0, (16, 16)).astype(np.uint16), "label": int(rng.integers(4)),
             "patient": f"p{i}", "center": "center2" if i >= 16 else "center1"} for i in range(24)]
    archive = write_archive(tmp_path / "archive", rows)
    home = tmp_path / "home"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="site", version="1.0.0",
                         key_file=tmp_path / "keys" / "k.key", home=home, external_centers=["center2"],
                         workers=1, private_labels="external")
    labels_file = home / "private" / "site@1.0.0" / "labels.csv"
    assert f"the organisers' labels file is {labels_file}" in capsys.readouterr().out
    assert verify_dataset(path).ok
    withheld = list(csv.DictReader(open(labels_file, newline="")))
    assert len(withheld) == 8 and read_manifest(path).splits["external"].class_counts == {}
    haystacks = output_haystacks(path)
    for r in withheld:
        assert not any(f"{r['case_id']},{r['label']}".encode() in h for h in haystacks)
    assert not any(labels_file.read_bytes() in h for h in haystacks)
