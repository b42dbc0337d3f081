"""``score_predictions`` and ``thyroid-bench score``: against a file's labels and a dataset split."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image
from sklearn import metrics as skm

from conftest import make_rows
from thyroid_bench.cli import main
from thyroid_bench.errors import PredictionsError, ThyroidBenchError
from thyroid_bench.evaluation.metrics import evaluate as _evaluate
from thyroid_bench.evaluation import predictions


def write_predictions(task, path, *args, **kw):
    return predictions.write_predictions(path, task, *args, **kw)
from thyroid_bench.tasks import get_task

TASK = get_task("four-pattern")
CLASS_NAMES = TASK.class_names


def evaluate(y, p, **kw):
    return _evaluate(y, p, CLASS_NAMES, **kw)
from thyroid_bench.evaluation.scoring import score_predictions


def _probs(y: np.ndarray, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = rng.normal(size=(len(y), 4))
    logits[np.arange(len(y)), y] += 1.5
    p = np.exp(logits)
    return p / p.sum(axis=1, keepdims=True)


@pytest.fixture
def toy_dataset(tmp_path):
    """A tiny dataset version written with the format's writer: internal has 40 cases."""
    from thyroid_bench.data.format import read_split, write_dataset

    splits = {"train": make_rows("train", 8), "internal": make_rows("internal", 40, matrix=8),
              "external": make_rows("external", 8, matrix=8)}
    path = write_dataset("toy", "1.2.0", splits, home=tmp_path / "home", card="# toy\n")
    truth = read_split(path, "internal", columns=["case_id", "label"])
    return path, list(truth["case_id"]), truth["label"].to_numpy().astype(int)


def test_score_against_a_dataset_split(toy_dataset, tmp_path):
    path, ids, y = toy_dataset
    p = _probs(y, 0)
    perm = np.random.default_rng(1).permutation(len(ids))  # the file's row order is irrelevant
    preds = write_predictions(TASK, tmp_path / "internal.csv", [ids[i] for i in perm], p[perm])
    res = score_predictions(preds, dataset="toy", split="internal", home=tmp_path / "home",
                            bootstrap=100, json_out=tmp_path / "out" / "scores.json")
    from thyroid_bench.data.manifest import read_manifest

    manifest = read_manifest(path)
    assert res["labels_from"] == "dataset" and res["split"] == "internal"
    assert res["dataset"]["fingerprint"] == manifest.fingerprint and res["task"] == "four-pattern"
    assert res["dataset"]["version"] == "1.2.0"
    m = res["metrics"]
    assert m["n"] == 40
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    assert m["macro_auc"] == pytest.approx(skm.roc_auc_score(y, p, multi_class="ovr"))
    # the same as scoring in memory in case-id order (what the leaderboard recomputes)
    order = np.argsort(ids)
    assert m == evaluate(y[order], p[order], bootstrap=100)
    assert json.loads((tmp_path / "out" / "scores.json").read_text()) == res
    # a label column that agrees with the dataset is accepted, one that disagrees is not
    write_predictions(TASK, tmp_path / "with_labels.csv", ids, p, labels=y)
    assert score_predictions(tmp_path / "with_labels.csv", dataset=path, split="internal",
                             bootstrap=100)["metrics"] == m
    wrong = y.copy()
    wrong[3] = (wrong[3] + 1) % 4
    write_predictions(TASK, tmp_path / "wrong.csv", ids, p, labels=wrong)
    with pytest.raises(PredictionsError, match=f"disagrees with toy 1.2.0 split 'internal' on 1 case.*{ids[3]}"):
        score_predictions(tmp_path / "wrong.csv", dataset=path, split="internal", bootstrap=0)


def test_predictions_must_cover_exactly_the_split(toy_dataset, tmp_path):
    path, ids, y = toy_dataset
    p = _probs(y, 2)
    write_predictions(TASK, tmp_path / "short.csv", ids[:-2], p[:-2])
    with pytest.raises(PredictionsError, match=f"2 case\\(s\\) of the split have no row: '{ids[-2]}'"):
        score_predictions(tmp_path / "short.csv", dataset=path, split="internal")
    write_predictions(TASK, tmp_path / "extra.csv", ids + ["stranger"], np.vstack([p, p[:1]]))
    with pytest.raises(PredictionsError, match=r"row 41 \(line 42\): case_id 'stranger' is not a case"):
        score_predictions(tmp_path / "extra.csv", dataset=path, split="internal")


def test_score_needs_labels_from_somewhere(tmp_path):
    y = np.arange(12) % 4
    write_predictions(TASK, tmp_path / "p.csv", [f"c{i}" for i in range(12)], _probs(y, 3))
    with pytest.raises(PredictionsError, match="no label column"):
        score_predictions(tmp_path / "p.csv")
    with pytest.raises(ThyroidBenchError, match="needs --split"):
        score_predictions(tmp_path / "p.csv", dataset="toy")


def test_cli_score_with_label_column(tmp_path, capsys):
    y = np.random.default_rng(4).integers(0, 4, 120)
    p = _probs(y, 4)
    ids = [f"case{i:03d}" for i in range(120)]
    csv = write_predictions(TASK, tmp_path / "model.csv", ids, p, labels=y)
    rc = main(["score", str(csv), "--json", str(tmp_path / "s.json"), "--bootstrap", "200",
               "--seed", "5"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "scored against its own label column, n = 120" in out
    for name in CLASS_NAMES:
        assert name in out
    assert "type III, n=%d" % int((y == 2).sum()) in out  # the task's paper codes, as in Table 2
    res = json.loads((tmp_path / "s.json").read_text())
    assert res["task"] == "four-pattern"  # inferred from the file's prob_<class> columns
    m = res["metrics"]
    assert m["bootstrap"] == {"resamples": 200, "seed": 5, "level": 0.95,
                              "stratified": "by true class", "method": "percentile"}
    assert m["accuracy"] == pytest.approx(skm.accuracy_score(y, p.argmax(1)))
    lo, hi = m["ci"]["accuracy"]
    assert f"{100 * m['accuracy']:.1f} ({100 * lo:.1f}-{100 * hi:.1f})" in out
    sens = m["per_class"]["focal_increased"]["sensitivity"]
    assert f"{100 * sens:.1f}" in next(ln for ln in out.splitlines() if ln.startswith("Sensitivity"))
    # figures by default beside the predictions file
    report = tmp_path / "model_report" / "report.md"
    assert f"report and figures written to {report}" in out
    for fig in ("roc_model.png", "confusion_model.png"):
        with Image.open(tmp_path / "model_report" / "figures" / fig) as im:
            assert im.format == "PNG" and im.width > 400


def test_cli_score_against_dataset(toy_dataset, tmp_path, capsys):
    path, ids, y = toy_dataset
    write_predictions(TASK, tmp_path / "ext.csv", ids, _probs(y, 6))
    rc = main(["score", str(tmp_path / "ext.csv"), "--dataset", "toy@1.2.0", "--split", "internal",
               "--home", str(tmp_path / "home"), "--bootstrap", "50", "--no-figures"])
    out = capsys.readouterr().out
    assert rc == 0
    assert "scored against toy 1.2.0 split internal (fingerprint" in out
    assert "Overall (n=40)" in out
    assert not (tmp_path / "ext_report").exists()
    # a user error: exit status 2 and a message naming the problem, no traceback
    rc = main(["score", str(tmp_path / "ext.csv"), "--split", "external", "--dataset", str(path),
               "--no-figures"])
    err = capsys.readouterr().err
    assert rc == 2
    assert "thyroid-bench score: error:" in err and "is not a case of the split" in err


def test_the_task_of_a_file_scored_on_its_own_labels(tmp_path, capsys):
    from thyroid_bench.tasks import MainScore, Reference, Target, Task, TaskClass, register_task, unregister_task

    path = tmp_path / "two.csv"
    path.write_text("case_id,prob_no,prob_yes,label\na,0.9,0.1,no\nb,0.2,0.8,yes\nc,0.6,0.4,yes\n")
    # no registered task has these columns: a clear error, exit 2
    assert main(["score", str(path), "--no-figures"]) == 2
    err = capsys.readouterr().err
    assert "its probability columns ['prob_no', 'prob_yes'] do not say which task" in err
    assert "name it with --task" in err and "four-pattern: prob_diffusely_increased" in err
    yes_no = Task(name="yes-no", description="t", reference=Reference(citation="tests"), modality="x",
                  target=Target(kind="binary", classes=(TaskClass(index=0, name="no"),
                                                         TaskClass(index=1, name="yes"))),
                  main_score=MainScore(metric="accuracy", split="external"))
    register_task(yes_no)
    try:
        res = score_predictions(path, bootstrap=0)
        assert res["task"] == "yes-no" and res["metrics"]["accuracy"] == pytest.approx(2 / 3)
        assert res["metrics"]["per_class"]["yes"]["sensitivity"] == pytest.approx(1 / 2)
        with pytest.raises(PredictionsError, match="missing column"):
            score_predictions(path, task="four-pattern", bootstrap=0)
        with pytest.raises(ThyroidBenchError, match="unknown task 'yes-nope'"):
            score_predictions(path, task="yes-nope", bootstrap=0)
    finally:
        unregister_task("yes-no")


# --------------------------------------------------------------------------- residual-tissue
RESIDUAL = get_task("residual-tissue")


def _residual_rows(split: str, n: int, unknown: tuple[int, ...] = ()) -> list[dict]:
    """Format rows of the residual task: a posterior view, a measured uptake (null now and
    then), and label -1 (present, grade unknown) at the ``unknown`` positions."""
    rows = make_rows(split, n, matrix=8)
    for i, r in enumerate(rows):
        r["image_posterior"] = r["image"][::-1].copy()
        r["uptake_pct"] = None if i % 9 == 4 else round(0.8 * r["label"] + 0.013 * i, 3)
        if i in unknown and r["label"] != 0:
            r["label"] = -1
    return rows


@pytest.fixture
def residual_dataset(tmp_path):
    from thyroid_bench.data.format import read_split, write_dataset

    splits = {"train": _residual_rows("train", 8), "internal": _residual_rows("internal", 36),
              "external": _residual_rows("external", 24, unknown=(1, 6, 11))}
    path = write_dataset("toyres", "1.0.0", splits, task=RESIDUAL, home=tmp_path / "home",
                         card="# toy residual\n")
    truth = {s: read_split(path, s, columns=["case_id", "label", "uptake_pct"])
             for s in ("internal", "external")}
    return path, {s: (list(t["case_id"]), t["label"].to_numpy().astype(int),
                      t["uptake_pct"].to_numpy(float)) for s, t in truth.items()}


def _residual_probs(y: np.ndarray, seed: int) -> np.ndarray:
    return _probs(np.where(y < 0, 2, y), seed)


def test_score_residual_against_a_dataset_split(residual_dataset, tmp_path):
    from thyroid_bench.evaluation.suites import evaluate_task
    from scipy.stats import spearmanr

    path, truth = residual_dataset
    ids, y, ut = truth["internal"]
    p = _residual_probs(y, 0)
    up = np.round(np.nan_to_num(ut, nan=1.0) * 1.1 + 0.05, 3)
    up[[2, 7]] = np.nan  # not predicted
    perm = np.random.default_rng(1).permutation(len(ids))
    preds = predictions.write_predictions(tmp_path / "internal.csv", RESIDUAL, [ids[i] for i in perm],
                                          p[perm], values={"uptake_pct": up[perm]})
    res = score_predictions(preds, dataset="toyres", split="internal", home=tmp_path / "home",
                            bootstrap=100)
    m = res["metrics"]
    assert res["task"] == "residual-tissue" and m["n"] == 36 and m["grades_known"] is True
    present, called = y != 0, 1 - p[:, 0] >= 0.5
    assert m["detection_balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(present, called))
    assert m["detection_auc"] == pytest.approx(skm.roc_auc_score(present, 1 - p[:, 0]))
    assert m["quadratic_kappa"] == pytest.approx(
        skm.cohen_kappa_score(y, p.argmax(1), labels=range(4), weights="quadratic"))
    both = np.isfinite(ut) & np.isfinite(up)
    assert m["uptake_n"] == int(both.sum()) < 36  # the dataset's nulls and the file's blanks
    assert m["uptake_mae"] == pytest.approx(skm.mean_absolute_error(ut[both], up[both]))
    assert m["uptake_spearman"] == pytest.approx(spearmanr(ut[both], up[both]).statistic)
    order = np.argsort(ids)
    assert m == evaluate_task(RESIDUAL, y[order], p[order], bootstrap=100,
                              values={"uptake_pct": up[order]}, true_values={"uptake_pct": ut[order]})


def test_score_residual_with_presence_only_labels(residual_dataset, tmp_path, capsys):
    path, truth = residual_dataset
    ids, y, _ = truth["external"]
    assert (y == -1).sum() == 3
    p = _residual_probs(y, 3)
    csv = predictions.write_predictions(tmp_path / "ext.csv", RESIDUAL, ids, p, labels=y)
    m = score_predictions(csv, dataset=path, split="external", bootstrap=50)["metrics"]
    present, called = y != 0, 1 - p[:, 0] >= 0.5
    assert m["grades_known"] is False and m["quadratic_kappa"] is None and m["accuracy"] is None
    assert m["detection_sensitivity"] == pytest.approx(skm.recall_score(present, called))
    assert m["detection_specificity"] == pytest.approx(skm.recall_score(present, called, pos_label=0))
    # a disagreeing label names both sides in the task's spelling ("present" for -1)
    wrong = y.copy()
    wrong[1] = 0
    predictions.write_predictions(tmp_path / "wrong.csv", RESIDUAL, ids, p, labels=wrong)
    with pytest.raises(PredictionsError, match=f"{ids[1]}': file absent, dataset present"):
        score_predictions(tmp_path / "wrong.csv", dataset=path, split="external", bootstrap=0)
    # on the file's own labels, the task named or inferred from its columns
    rc = main(["score", str(csv), "--task", "residual-tissue", "--bootstrap", "50", "--no-figures",
               "--json", str(tmp_path / "own.json")])
    out = capsys.readouterr().out
    assert rc == 0 and "scored against its own label column, n = 24" in out
    own = json.loads((tmp_path / "own.json").read_text())
    assert own["task"] == "residual-tissue"
    assert own["metrics"]["detection_balanced_accuracy"] == m["detection_balanced_accuracy"]
    line = next(ln for ln in out.splitlines() if ln.startswith("Balanced accuracy"))
    assert f"{100 * m['detection_balanced_accuracy']:.1f}" in line
    assert main(["score", str(csv), "--bootstrap", "0", "--no-figures"]) == 0
    assert "scored against its own label column, n = 24" in capsys.readouterr().out


def test_score_residual_default_dataset_is_the_tasks(residual_dataset, tmp_path):
    path, truth = residual_dataset
    ids, y, _ = truth["internal"]
    csv = predictions.write_predictions(tmp_path / "p.csv", RESIDUAL, ids, _residual_probs(y, 2))
    # no --dataset: the file's task's default dataset, not four-pattern's
    with pytest.raises(ThyroidBenchError, match="tsb-residual"):
        score_predictions(csv, split="internal", home=tmp_path / "home", bootstrap=0)
    with pytest.raises(ThyroidBenchError, match="is for task residual-tissue"):
        score_predictions(csv, split="internal", dataset=path, task="four-pattern", bootstrap=0)
