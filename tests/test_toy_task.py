"""A task is data: a new task defined in this file alone goes through every stage.

The toy task ``toy-hotspot`` (two classes, its own tiny generator, ranked by external
balanced accuracy rather than four-pattern's macro F1) is registered here and taken through
prepare -> verify -> run (a tiny timm model, one epoch) -> score -> submit -> render with
no change to any package module.
"""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
from sklearn import metrics as skm

from thyroid_bench.cli import main
from thyroid_bench.data.format import write_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.tasks import MainScore, Reference, Target, Task, TaskClass, register_task, unregister_task

TOY = Task(
    name="toy-hotspot",
    description="is there a hot spot in the square?",
    reference=Reference(citation="thyroid-bench tests"),
    modality="simulated counts",
    target=Target(kind="binary", classes=(
        TaskClass(index=0, name="cold", code="C", reading="flat background"),
        TaskClass(index=1, name="hot", code="H", reading="a bright 4x4 spot"),
    )),
    main_score=MainScore(metric="balanced_accuracy", split="external"),
    selection_metric="balanced_accuracy",
    datasets=("toy-hotspot",),
)


def toy_rows(split: str, n: int, matrix: int, seed: int) -> list[dict]:
    """The toy task's generator: Poisson background, plus a hot spot for class 1."""
    rng = np.random.default_rng([seed, len(split)])
    rows = []
    for i in range(n):
        label = i % 2
        image = rng.poisson(5.0, (matrix, matrix))
        if label:
            r, c = rng.integers(0, matrix - 4, 2)
            image[r:r + 4, c:c + 4] += 60
        rows.append({
            "case_id": f"{split}-{i:03d}", "patient_id": f"{split}-p{i:03d}",
            "image": image.astype(np.uint16), "label": label,
            "center": "site-b" if split == "external" else "site-a",
            "fold": i % 5 if split == "train" else -1, "matrix": matrix,
            "pixel_spacing_mm": 2.0, "total_counts": int(image.sum()), "acquisition_s": 60.0,
            "sex": "unknown", "age": None,
        })
    return rows


@pytest.fixture
def toy_task():
    register_task(TOY)
    yield TOY
    unregister_task(TOY.name)


def test_a_new_task_goes_through_every_stage(toy_task, tmp_path, capsys):
    home, lb, run = tmp_path / "home", tmp_path / "leaderboard", tmp_path / "run"
    # prepare
    path = write_dataset("toy-hotspot", "0.1.0", {
        "train": toy_rows("train", 40, 32, 0), "internal": toy_rows("internal", 12, 32, 1),
        "external": toy_rows("external", 12, 16, 2)}, task=TOY, home=home, card="# toy\n")
    manifest = read_manifest(path)
    assert manifest.task == "toy-hotspot" and manifest.label_schema == TOY.label_schema()
    assert manifest.splits["train"].class_counts == {"cold": 20, "hot": 20}
    # verify (and the task listing shows the prepared version)
    assert main(["verify", str(path)]) == 0
    assert "result    OK" in capsys.readouterr().out
    assert main(["tasks", "--home", str(home)]) == 0
    listing = capsys.readouterr().out
    assert "toy-hotspot  (binary" in listing and "cold (C), hot (H)" in listing
    assert "toy-hotspot@0.1.0 (prepared)" in listing
    # run
    assert main(["run", "--model", "timm:test_resnet", "--protocol", "quick", "--epochs", "1",
                 "--dataset", str(path), "--out", str(run), "--num-threads", "1", "--quiet",
                 "--device", "cpu"]) == 0
    entry = json.loads((run / "entry.json").read_text())
    assert entry["task"] == "toy-hotspot" and entry["dataset"]["name"] == "toy-hotspot"
    # the task's selection metric picked the epoch, and the entry records it
    assert entry["selection"]["metric"] == "balanced_accuracy"
    assert entry["protocol"]["parameters"]["selection_metric"] == "balanced_accuracy"
    log = (run / "train.log").read_text()
    assert "balanced_accuracy" in log and "balanced_accuracy" in log.split("external: n 12")[1]
    with open(run / "predictions" / "external.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["case_id", "prob_cold", "prob_hot", "label"]
    y = np.array([TOY.parse_label(r["label"]) for r in rows])
    p = np.array([[float(r["prob_cold"]), float(r["prob_hot"])] for r in rows])
    ext = entry["metrics"]["external"]
    assert list(ext["per_class"]) == ["cold", "hot"]
    assert ext["balanced_accuracy"] == pytest.approx(skm.balanced_accuracy_score(y, p.argmax(1)))
    # score: the dataset's labels, the task from its manifest
    assert main(["score", str(run / "predictions" / "external.csv"), "--split", "external",
                 "--dataset", str(path), "--json", str(tmp_path / "score.json"), "--no-figures"]) == 0
    scored = json.loads((tmp_path / "score.json").read_text())
    assert scored["task"] == "toy-hotspot" and scored["metrics"] == ext
    assert main(["score", str(run / "predictions" / "external.csv"), "--split", "external",
                 "--dataset", str(path), "--task", "four-pattern", "--no-figures"]) == 2
    assert "is for task toy-hotspot" in capsys.readouterr().err
    # submit and render: a section of its own, ranked by the task's main score
    assert main(["submit", str(run), "--leaderboard", str(lb), "--home", str(home)]) == 0
    labels = (next(lb.glob("entries/toy-hotspot/toy-hotspot@0.1.0/labels")) / "external.csv")
    assert labels.read_text().splitlines()[1].split(",")[1] in ("cold", "hot")
    capsys.readouterr()
    assert main(["leaderboard", "--leaderboard", str(lb), "--render"]) == 0
    page = (lb / "README.md").read_text()
    assert "toy-hotspot" in page and "timm:test_resnet" in page
    assert "balanced accuracy" in page.lower()
    assert f"{100 * ext['balanced_accuracy']:.1f}" in page
