"""Entries from predictions made anywhere (``thyroid-bench entry new``, issue 14 part 1).

Predictions are made here outside the package: a scikit-learn logistic regression on 8x8
downsampled pixels read from the datasets' parquet shards with pandas (not through the
harness), and a hand-made "reader" that calls a class per case. They go through the documented
commands `thyroid-bench entry new` -> `thyroid-bench submit` -> the leaderboard, for both tasks
(four-pattern and residual-tissue, whose predictions also carry uptake_pct), and the pages mark
them; a tampered copy is refused; bad input is refused before anything is written.
"""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from test_leaderboard import (N_EVAL, edit_entry, make_dataset, make_run, residual_rows, rewrite_rows,
                              snapshot)
from thyroid_bench.cli import main
from thyroid_bench.data.format import write_dataset
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.leaderboard import SubmissionError, submit
from thyroid_bench.leaderboard.checks import protocol_problem
from thyroid_bench.leaderboard.external import ExternalModel, new_entry
from thyroid_bench.leaderboard.ranking_csv import NUMBER

CODE_URL = "https://example.org/lab/logreg?rev=1&view=(src)"
WEIGHTS_URL = "https://example.org/lab/logreg.joblib"


# --------------------------------------------------------------------------- predictions made outside
def _read_split(folder: Path, split: str) -> pd.DataFrame:
    """A split of a dataset folder, read from its parquet shards with pandas alone."""
    shards = sorted((folder / "data").glob(f"{split}-*.parquet"))
    return pd.concat([pd.read_parquet(s) for s in shards], ignore_index=True)


def _pixels(cell: dict) -> np.ndarray:
    """An 8x8 block mean of a stored 16-bit PNG, as fractions of the image's counts."""
    img = np.asarray(Image.open(io.BytesIO(cell["bytes"])), dtype=np.float64)
    n = img.shape[0] // 8
    small = img.reshape(8, n, 8, n).mean(axis=(1, 3))
    return (small / max(small.sum(), 1.0)).ravel()


def _features(frame: pd.DataFrame) -> np.ndarray:
    views = [c for c in ("image", "image_posterior") if c in frame.columns]
    return np.stack([np.concatenate([_pixels(row[v]) for v in views]) for _, row in frame.iterrows()])


def sklearn_predictions(folder: Path, out: Path) -> dict[str, pd.DataFrame]:
    """LogisticRegression on 8x8 pixels (and, with an uptake column, a ridge regression of it),
    trained on the train split; one CSV per evaluation split in ``out``."""
    from sklearn.linear_model import LogisticRegression, Ridge

    schema = json.loads((folder / "manifest.json").read_text())["label_schema"]
    classes = [c["name"] for c in schema["classes"]]
    train = _read_split(folder, "train")
    clf = LogisticRegression(max_iter=2000, C=10.0).fit(_features(train), train["label"])
    assert list(clf.classes_) == list(range(len(classes)))
    uptake = "uptake_pct" in train.columns
    if uptake:
        known = train["uptake_pct"].notna()
        reg = Ridge().fit(_features(train[known]), train.loc[known, "uptake_pct"])
    out.mkdir(parents=True)
    frames = {}
    for split in ("internal", "external"):
        data = _read_split(folder, split)
        frame = pd.DataFrame(clf.predict_proba(_features(data)), columns=[f"prob_{c}" for c in classes])
        frame.insert(0, "case_id", data["case_id"])
        if uptake:
            frame["uptake_pct"] = np.clip(reg.predict(_features(data)), 0, 100)
        frame.to_csv(out / f"{split}.csv", index=False)
        frames[split] = frame.assign(truth=data["label"], true_uptake=data.get("uptake_pct"))
    return frames


def reader_predictions(folder: Path, out: Path) -> dict[str, tuple[list[str], list[int]]]:
    """A reader's calls: the true class, but the next one on every 7th case; spelt as class
    names, the paper's codes and indices in turn. Returns per split (case ids, called class)."""
    schema = json.loads((folder / "manifest.json").read_text())["label_schema"]["classes"]
    out.mkdir(parents=True)
    calls = {}
    for split in ("internal", "external"):
        data = _read_split(folder, split)
        ids, called = [], []
        lines = ["case_id,prediction"]
        for i, (cid, y) in enumerate(zip(data["case_id"], data["label"])):
            k = 2 if y < 0 else int(y)  # present, grade unknown: the reader calls grade 2
            k = (k + 1) % len(schema) if i % 7 == 0 else k
            spelling = (schema[k]["name"], f"type {schema[k]['paper_type']}", str(k))[i % 3]
            lines.append(f"{cid},{spelling}")
            ids.append(cid)
            called.append(k)
        (out / f"{split}.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
        calls[split] = (ids, called)
    return calls


# --------------------------------------------------------------------------- the world
def _entry_new(*args: str) -> int:
    return main(["entry", "new", *args])


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Both tasks' tiny datasets, each with a scikit-learn entry and a reader entry made by the
    documented commands, and a harness run; all submitted to one leaderboard."""
    from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

    base = tmp_path_factory.mktemp("external")
    home = base / "home"
    four = make_dataset(home)
    residual = write_dataset("tiny-residual", "1.0.0", {
        "train": residual_rows("train", 16), "internal": residual_rows("internal", N_EVAL),
        "external": residual_rows("external", N_EVAL, unknown=4, matrix=16)},
        task=RESIDUAL_TISSUE, home=home, synthetic=True)
    made = {}
    for name, folder, spec in (("four", four, "tiny-lb@1.0.0"),
                               ("residual", residual, "tiny-residual@1.0.0")):
        frames = sklearn_predictions(folder, base / f"{name}-sklearn-preds")
        calls = reader_predictions(folder, base / f"{name}-reader-preds")
        assert _entry_new("--predictions", str(base / f"{name}-sklearn-preds"), "--dataset", spec,
                          "--model-name", "sklearn-logreg-8x8", "--parameters", str(4 * 65),
                          "--input-size", "8", "--architecture", "logistic regression",
                          "--training-data", "the train split", "--code-url", CODE_URL,
                          "--weights-url", WEIGHTS_URL, "--licence", "MIT", "--submitter", "Lab A",
                          "--notes", "scikit-learn 1.x", "--out", str(base / f"{name}-sklearn"),
                          "--home", str(home)) == 0
        assert _entry_new("--predictions", str(base / f"{name}-reader-preds"), "--dataset", spec,
                          "--model-name", "reader-1", "--kind", "human reader",
                          "--training-data", "10 years of thyroid scintigraphy", "--submitter",
                          "Dr. B", "--out", str(base / f"{name}-reader"), "--home", str(home)) == 0
        made[name] = {"folder": folder, "frames": frames, "calls": calls,
                      "sklearn": base / f"{name}-sklearn", "reader": base / f"{name}-reader"}
    harness_run = make_run(base / "harness-run", four, model="toy-a", skill=0.3)
    lb = base / "lb"
    runs = [made[t][k] for t in ("four", "residual") for k in ("sklearn", "reader")]
    assert main(["submit", *map(str, runs), str(harness_run), "--leaderboard", str(lb),
                 "--home", str(home)]) == 0
    return {"base": base, "home": home, "lb": lb, "harness": harness_run, **made}


# --------------------------------------------------------------------------- accepted and marked
def test_entry_records_origin_and_what_the_submitter_said(world):
    e = read_entry(world["four"]["sklearn"] / "entry.json")
    assert (e.origin, e.environment, e.protocol.name, e.protocol.parameters, e.protocol.overrides) == (
        "external", None, "external", {}, {})
    m = e.model
    assert (m.name, m.source, m.kind, m.parameters, m.input_size, m.in_chans) == (
        "sklearn-logreg-8x8", "external", "model", 260, 8, 1)
    assert (m.code_url, m.weights_url, m.licence, m.architecture) == (
        CODE_URL, WEIGHTS_URL, "MIT", "logistic regression")
    assert (e.training_data, e.notes, e.submitter, e.pretrained, e.seed) == (
        "the train split", "scikit-learn 1.x", "Lab A", "not given", 0)
    r = read_entry(world["residual"]["reader"] / "entry.json")
    assert (r.model.kind, r.model.parameters, r.model.input_size, r.model.in_chans, r.pretrained) == (
        "human reader", 0, 32, 2, "none")  # a reader sees the largest matrix, both views


def test_metrics_are_those_of_the_predictions_by_scikit_learn(world):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    for split in ("internal", "external"):
        f = world["four"]["frames"][split]
        probs = f[[c for c in f.columns if c.startswith("prob_")]].to_numpy()
        metrics = read_entry(world["four"]["sklearn"] / "entry.json").metrics[split]
        assert metrics["accuracy"] == pytest.approx(accuracy_score(f["truth"], probs.argmax(1)), abs=1e-12)
        assert metrics["macro_f1"] == pytest.approx(f1_score(
            f["truth"], probs.argmax(1), average="macro", labels=range(4), zero_division=0), abs=1e-12)
        assert metrics["bootstrap"]["resamples"] == 1000 and metrics["n"] == N_EVAL
    f = world["residual"]["frames"]["external"]
    metrics = read_entry(world["residual"]["sklearn"] / "entry.json").metrics["external"]
    present = (1 - f["prob_absent"]) >= 0.5
    assert metrics["detection_balanced_accuracy"] == pytest.approx(
        balanced_accuracy_score(f["truth"] != 0, present), abs=1e-12)
    both = f["true_uptake"].notna()
    assert metrics["uptake_n"] == int(both.sum()) > 0
    assert metrics["uptake_mae"] == pytest.approx(
        float(np.mean(np.abs(f.loc[both, "uptake_pct"] - f.loc[both, "true_uptake"]))), abs=1e-9)


def test_reader_calls_become_one_hot_rows_and_score_by_hand(world):
    ids, called = world["four"]["calls"]["external"]
    with open(world["four"]["reader"] / "predictions" / "external.csv", newline="") as fh:
        rows = {r["case_id"]: r for r in csv.DictReader(fh)}
    for cid, k in zip(ids, called):
        probs = [float(v) for key, v in rows[cid].items() if key.startswith("prob_")]
        assert probs == [1.0 if j == k else 0.0 for j in range(4)]
    wrong = len(range(0, N_EVAL, 7))  # every 7th call is the next class
    metrics = read_entry(world["four"]["reader"] / "entry.json").metrics["external"]
    assert metrics["accuracy"] == pytest.approx((N_EVAL - wrong) / N_EVAL, abs=1e-12)


def test_pages_mark_external_rows_and_readers_and_link_code(world):
    lb = world["lb"]
    readme = (lb / "README.md").read_text()
    assert (f"| `sklearn-logreg-8x8` · *external* · [code](<{CODE_URL}>) · [weights](<{WEIGHTS_URL}>) |"
            in readme)
    assert "| `reader-1` · *human reader* |" in readme and "| `toy-a` |" in readme
    assert readme.count("*human reader*: a person's reads") == 2  # the legend, per section
    assert readme.count("| external | not given |") == 2 and readme.count("| external | none |") == 2
    page = (lb / "index.html").read_text()
    assert page.count('data-mark="external"') == 2 and page.count('data-mark="human reader"') == 2
    assert page.count('<span class="badge reader">human reader</span>') == 2
    link = f'<a class="link" href="{CODE_URL.replace("&", "&amp;")}" rel="noopener noreferrer">code</a>'
    assert page.count(link) == 2  # escaped
    # the Reproduced column, per row and per seed in the row's details
    assert page.count('<td class="text mark">external predictions</td>') == 4
    assert page.count('<td class="text mark">not reproduced</td>') == 1
    assert page.count("<td>external predictions</td>") == 4 and readme.count("| external predictions |") == 4


def test_cli_prints_marks_and_csv_holds_the_rows(world, capsys):
    assert main(["leaderboard", "--leaderboard", str(world["lb"])]) == 0
    out = capsys.readouterr().out
    assert "sklearn-logreg-8x8 [external]" in out and "reader-1 [human reader]" in out
    with open(world["lb"] / "ranking-four-pattern.csv", newline="") as fh:
        rows = {r["model"]: r for r in csv.DictReader(fh)}
    assert set(rows) == {"sklearn-logreg-8x8", "reader-1", "toy-a"}
    assert (rows["reader-1"]["kind"], rows["reader-1"]["origin"], rows["reader-1"]["reproduced"]) == (
        "human reader", "external", "external predictions")
    assert rows["sklearn-logreg-8x8"]["code_url"] == CODE_URL
    assert (rows["toy-a"]["origin"], rows["toy-a"]["reproduced"]) == ("harness", "not reproduced")
    e = read_entry(world["four"]["reader"] / "entry.json")
    assert float(rows["reader-1"]["external_accuracy_mean"]) == pytest.approx(
        e.metrics["external"]["accuracy"], rel=1e-5)


# --------------------------------------------------------------------------- refused
def _row_swapped(run: Path, *, update_hash: bool) -> None:
    """Swap the first two probabilities of the first case: still a valid probability row."""
    def change(rows):
        rows[1][1], rows[1][2] = rows[1][2], rows[1][1]
        return rows
    rewrite_rows(run, "external", change, update_hash=update_hash)


@pytest.mark.parametrize("tamper, check", [
    (lambda run: _row_swapped(run, update_hash=False), "predictions hash"),
    (lambda run: _row_swapped(run, update_hash=True), "metrics"),
    (lambda run: edit_entry(run, lambda d: d["metrics"]["external"].update(accuracy=0.99)), "metrics"),
])
def test_a_tampered_copy_is_refused(world, tmp_path, tamper, check):
    run = Path(shutil.copytree(world["four"]["sklearn"], tmp_path / "copy"))
    tamper(run)
    with pytest.raises(SubmissionError) as err:
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    assert err.value.check == check
    assert not (tmp_path / "lb").exists()
    before = snapshot(world["lb"])
    with pytest.raises(SubmissionError):  # and by the leaderboard holding the original
        submit(run, leaderboard=world["lb"], home=world["home"])
    assert snapshot(world["lb"]) == before


def _args(world, preds: Path, out: Path, *extra: str) -> list[str]:
    return ["--predictions", str(preds), "--dataset", "tiny-lb@1.0.0", "--model-name", "m",
            "--parameters", "10", "--input-size", "8", "--out", str(out), "--home",
            str(world["home"]), *extra]


def _copy_preds(world, tmp_path: Path, which: str = "four-sklearn-preds") -> Path:
    return Path(shutil.copytree(world["base"] / which, tmp_path / "preds"))


def _missing_split(preds, base):
    (preds / "external.csv").unlink()
    return "external.csv: no such predictions file"


def _wrong_case_id(preds, base):
    text = (preds / "internal.csv").read_text().replace("internal-0003,", "internal-9999,")
    (preds / "internal.csv").write_text(text)
    return "case_id 'internal-9999' is not a case of the split"


def _other_task(preds, base):
    for split in ("internal", "external"):
        shutil.copy(base / "residual-sklearn-preds" / f"{split}.csv", preds / f"{split}.csv")
    return "are the classes of task residual-tissue, but dataset tiny-lb@1.0.0 is for task four-pattern"


def _not_a_class(preds, base):
    (preds / "internal.csv").write_text("case_id,prediction\ninternal-0000,maybe\n")
    return "row 1 (line 2): prediction 'maybe' is not a class of task four-pattern"


def _label_disagrees(preds, base):
    frame = pd.read_csv(preds / "external.csv")
    frame["label"] = "focal_increased"
    frame.to_csv(preds / "external.csv", index=False)
    return "its label column disagrees with tiny-lb@1.0.0"


@pytest.mark.parametrize("spoil, extra", [
    (_missing_split, ()), (_wrong_case_id, ()), (_other_task, ()), (_not_a_class, ()),
    (_label_disagrees, ()),
    (lambda p, b: "--code-url 'javascript:alert(1)': not an http:// or https:// address",
     ("--code-url", "javascript:alert(1)")),
    (lambda p, b: "--weights-url 'https://x.org/a b': not an http:// or https:// address",
     ("--weights-url", "https://x.org/a b")),
    (lambda p, b: "--model-name 'bad<name>': not a name", ("--model-name", "bad<name>")),
])
def test_bad_input_is_one_line_naming_the_file_and_writes_nothing(world, tmp_path, capsys, spoil, extra):
    preds = _copy_preds(world, tmp_path)
    (tmp_path / "runs").mkdir()
    says = spoil(preds, world["base"])
    out = tmp_path / "runs" / "entry"
    assert _entry_new(*_args(world, preds, out, *extra)) == 2
    err = capsys.readouterr().err
    assert says in err and "Traceback" not in err, err
    assert err.startswith("thyroid-bench entry: error: ")
    assert list((tmp_path / "runs").iterdir()) == []  # no folder, no temporary left behind


def test_an_existing_out_is_refused_and_kept(world, tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("mine")
    assert _entry_new(*_args(world, world["base"] / "four-sklearn-preds", out)) == 2
    assert "--out " + str(out) + " already exists" in capsys.readouterr().err
    assert [p.name for p in out.iterdir()] == ["keep.txt"]


def test_a_model_needs_its_size_and_a_reader_does_not(world, tmp_path):
    with pytest.raises(Exception, match="--parameters N and --input-size N are required"):
        new_entry(world["base"] / "four-sklearn-preds", dataset="tiny-lb@1.0.0",
                  model=ExternalModel(name="m"), out=tmp_path / "a", home=world["home"])
    assert not (tmp_path / "a").exists()
    entry = new_entry(world["base"] / "four-reader-preds", dataset="tiny-lb@1.0.0",
                      model=ExternalModel(name="r", kind="human reader"), out=tmp_path / "b",
                      home=world["home"], seed=3)
    assert (entry.seed, entry.model.parameters, entry.model.input_size) == (3, 0, 32)
    assert sorted(p.name for p in (tmp_path / "b").rglob("*")) == [
        "entry.json", "external.csv", "internal.csv", "predictions"]


# --------------------------------------------------------------------------- the protocol rule
def test_protocol_external_is_for_external_entries_only(world):
    ext = read_entry(world["four"]["sklearn"] / "entry.json")
    harness = read_entry(world["harness"] / "entry.json")
    assert protocol_problem(ext) is None and protocol_problem(harness) is None
    claims = harness.model_copy(update={"protocol": ext.protocol})
    assert "protocol 'external' is for entries made from predictions" in protocol_problem(claims)
    reader = harness.model_copy(update={"model": harness.model.model_copy(update={"kind": "human reader"})})
    assert "model kind 'human reader' is for entries made from predictions" in protocol_problem(reader)
    for protocol in (harness.protocol, ext.protocol.model_copy(update={"parameters": {"epochs": 1}}),
                     ext.protocol.model_copy(update={"overrides": {"epochs": 1}})):
        problem = protocol_problem(ext.model_copy(update={"protocol": protocol}))
        assert "names protocol 'external' with no parameters and no overrides" in problem


def test_submit_refuses_a_harness_run_claiming_protocol_external(world, tmp_path):
    run = Path(shutil.copytree(world["harness"], tmp_path / "run"))
    edit_entry(run, lambda d: d.update(protocol={"name": "external", "parameters": {}}))
    with pytest.raises(SubmissionError) as err:
        submit(run, leaderboard=tmp_path / "lb", home=world["home"])
    assert err.value.check == "protocol"


def test_csv_cells_cannot_start_a_formula(world, tmp_path):
    """A pretrained label such as '=HYPERLINK(...)' is written as text; numbers stay numbers."""
    preds = world["base"] / "four-sklearn-preds"
    new_entry(preds, dataset="tiny-lb@1.0.0", home=world["home"], out=tmp_path / "run",
              model=ExternalModel(name="@evil", parameters=1, input_size=8,
                                  pretrained='=HYPERLINK("http://x","y")'), seed=7)
    submit(tmp_path / "run", leaderboard=tmp_path / "lb", home=world["home"])
    with open(tmp_path / "lb" / "ranking-four-pattern.csv", newline="") as fh:
        rows = list(csv.reader(fh))
    cells = [c for row in rows[1:] for c in row]
    assert "'@evil" in cells and "'=HYPERLINK(\"http://x\",\"y\")" in cells
    assert all(not c.startswith(("=", "+", "-", "@")) or NUMBER.match(c) for c in cells)


def test_withheld_split_is_predicted_not_scored_and_the_organisers_score_it(tmp_path):
    """On a version whose external labels are withheld, `entry new` writes the marker for that
    split (as `thyroid-bench run` does) and `submit` with the organisers' file scores it."""
    from conftest import make_rows
    from thyroid_bench.evaluation.withheld import withheld_metrics

    home = tmp_path / "home"
    splits = {"train": make_rows("train", 8), "internal": make_rows("internal", 12),
              "external": make_rows("external", 12, matrix=16)}
    write_dataset("tiny-priv", "1.0.0", splits, home=home, private_labels=["external"])
    preds = tmp_path / "preds"
    preds.mkdir()
    for split in ("internal", "external"):  # a reader right on every case but the first
        lines = [f"{r['case_id']},{(r['label'] + (i == 0)) % 4}" for i, r in enumerate(splits[split])]
        (preds / f"{split}.csv").write_text("case_id,prediction\n" + "\n".join(lines) + "\n")
    entry = new_entry(preds, dataset="tiny-priv@1.0.0", home=home, out=tmp_path / "run",
                      model=ExternalModel(name="reader-2", kind="human reader"))
    assert entry.metrics["external"] == withheld_metrics(12, bootstrap=1000)
    assert entry.metrics["internal"]["accuracy"] == pytest.approx(11 / 12, abs=1e-12)
    assert "label" not in (tmp_path / "run" / "predictions" / "external.csv").read_text().splitlines()[0]
    with pytest.raises(SubmissionError):
        submit(tmp_path / "run", leaderboard=tmp_path / "lb", home=home)
    submit(tmp_path / "run", leaderboard=tmp_path / "lb", home=home,
           private_labels=home / "private" / "tiny-priv@1.0.0" / "labels.csv")
    assert "`reader-2` · *human reader*" in (tmp_path / "lb" / "README.md").read_text()


def test_reproduced_column_summarises_the_seeds(world, tmp_path, monkeypatch):
    """A row's Reproduced cell is its seeds' one mark, or each mark with its seeds; the row's
    details mark every seed (row_mark stood in for: the records are reproduce.py's)."""
    import thyroid_bench.leaderboard.marks as marks
    from thyroid_bench.leaderboard import render_leaderboard

    runs = [make_run(tmp_path / f"s{s}", world["four"]["folder"], model="toy-b", seed=s, skill=0.3)
            for s in range(3)]
    submit(runs, leaderboard=tmp_path / "lb", home=world["home"])
    by_seed = {0: "reproduced by retraining", 1: "reproduced by retraining", 2: "not reproduced"}
    monkeypatch.setattr(marks, "row_mark", lambda stored: by_seed[stored.entry.seed])
    render_leaderboard(tmp_path / "lb")
    summary = "reproduced by retraining: seeds 0, 1; not reproduced: seed 2"
    assert f"| 3 (0, 1, 2) | {summary} |" in (tmp_path / "lb" / "README.md").read_text()
    page = (tmp_path / "lb" / "index.html").read_text().replace("<wbr>", "")  # break points
    assert f'<td class="text mark">{summary}</td>' in page
    assert page.count("<td>reproduced by retraining</td>") == 2 and page.count("<td>not reproduced</td>") == 1
    monkeypatch.setattr(marks, "row_mark", lambda stored: "reproduced by evaluation")
    render_leaderboard(tmp_path / "lb")
    assert "| 3 (0, 1, 2) | reproduced by evaluation |" in (tmp_path / "lb" / "README.md").read_text()
