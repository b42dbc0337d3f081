"""End to end: a real `run` on a tiny generated dataset with a tiny timm model."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from sklearn.metrics import accuracy_score, f1_score

from thyroid_bench.data.format import read_split
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import ThyroidBenchError, VerificationError
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.evaluation.suites import evaluate_task
from thyroid_bench.harness.run import read_checkpoint_metadata, run
from thyroid_bench.hashing import sha256_file
from thyroid_bench.models import ModelError

MODEL = "timm:test_resnet"
FAST = dict(protocol="quick", epochs=1, batch_size=8, num_threads=1, bootstrap=50, progress=False)


@pytest.fixture(scope="module")
def tiny(tiny_run_dataset):
    return tiny_run_dataset


@pytest.fixture(scope="module")
def task(tiny):
    return read_manifest(tiny).get_task()


@pytest.fixture(scope="module")
def first_run(tiny, tmp_path_factory):
    out = tmp_path_factory.mktemp("runs") / "a"
    return run(MODEL, dataset=tiny, out=out, seed=3, **FAST)


def test_run_folder_is_complete(first_run):
    d = first_run.run_dir
    for rel in ("entry.json", "config.json", "metrics.json", "report.md", "train.log",
                "model.safetensors", "predictions/internal.csv", "predictions/external.csv",
                "figures/roc_internal.png", "figures/confusion_external.png"):
        assert (d / rel).is_file(), rel
    assert not (d / "INCOMPLETE").exists()
    config = json.loads((d / "config.json").read_text())
    assert config["protocol"]["epochs"] == 1 and config["overrides"] == {"epochs": 1, "batch_size": 8}
    assert config["selection"]["fold"] == 0 and config["selection"]["best_epoch"] == 1
    assert "epoch   1/1" in (d / "train.log").read_text()


def test_predictions_rescore_to_metrics_and_entry(first_run, tiny, task):
    d = first_run.run_dir
    metrics = json.loads((d / "metrics.json").read_text())
    entry = read_entry(d / "entry.json")
    for split in ("internal", "external"):
        table = read_split(tiny, split, columns=["case_id", "label"])
        preds = read_predictions(d / f"predictions/{split}.csv", task,
                                 expected_case_ids=table["case_id"]).align(table["case_id"])
        rescored = evaluate_task(task, table["label"].to_numpy(), preds.probs, bootstrap=50, seed=0)
        assert rescored == metrics[split] == entry.metrics[split]
    assert entry.model.name == MODEL and entry.seed == 3 and entry.pretrained == "none"
    assert entry.protocol.name == "quick" and entry.protocol.parameters["epochs"] == 1
    assert entry.environment.device == "cpu" and entry.environment.num_threads == 1


def test_same_seed_same_results_bit_for_bit(first_run, tiny, tmp_path):
    again = run(MODEL, dataset=tiny, out=tmp_path / "b", seed=3, **FAST)
    for split in ("internal", "external"):
        a = (first_run.run_dir / f"predictions/{split}.csv").read_bytes()
        b = (again.run_dir / f"predictions/{split}.csv").read_bytes()
        assert a == b
    assert again.metrics == first_run.metrics
    other = run(MODEL, dataset=tiny, out=tmp_path / "c", seed=4, **FAST)
    assert (other.run_dir / "predictions/internal.csv").read_bytes() != \
        (first_run.run_dir / "predictions/internal.csv").read_bytes()


def test_eval_only_from_checkpoint_gives_same_predictions(first_run, tiny, tmp_path):
    ckpt = first_run.run_dir / "model.safetensors"
    meta = read_checkpoint_metadata(ckpt)
    assert meta["model"] == MODEL and meta["seed"] == "3"
    res = run(MODEL, dataset=tiny, out=tmp_path / "eval", checkpoint=ckpt, eval_only=True,
              num_threads=1, bootstrap=50, progress=False)
    for split in ("internal", "external"):
        assert (res.run_dir / f"predictions/{split}.csv").read_bytes() == \
            (first_run.run_dir / f"predictions/{split}.csv").read_bytes()
    assert res.entry.seed == 3 and res.entry.protocol.parameters["epochs"] == 1
    assert not (res.run_dir / "model.safetensors").exists()


def test_unknown_model_lists_close_matches(tiny, tmp_path):
    with pytest.raises(ModelError, match="did you mean densenet169"):
        run("densenet16", dataset=tiny, out=tmp_path / "x", **FAST)
    assert not (tmp_path / "x").exists()  # nothing written before the checks pass


def test_failed_verification_stops_before_training(tiny, tmp_path):
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(tiny, bad)
    manifest = json.loads((bad / "manifest.json").read_text())
    manifest["splits"]["internal"]["fingerprint"] = "0" * 64
    (bad / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(VerificationError, match="failed verification"):
        run(MODEL, dataset=bad, out=tmp_path / "y", **FAST)
    assert not (tmp_path / "y").exists()


def test_keyboard_interrupt_leaves_incomplete(tiny, tmp_path, monkeypatch):
    import thyroid_bench.harness.train as train

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "fit", interrupted)
    with pytest.raises(KeyboardInterrupt):
        run(MODEL, dataset=tiny, out=tmp_path / "z", **FAST)
    assert "interrupted" in (tmp_path / "z" / "INCOMPLETE").read_text()
    assert not (tmp_path / "z" / "entry.json").exists()


def test_hub_unreachable_warns_once_and_records_none(tiny, tmp_path, capsys):
    # conftest sets HF_HUB_OFFLINE=1; linear-probe asks for ImageNet weights.
    res = run(MODEL, dataset=tiny, out=tmp_path / "lp", protocol="linear-probe", epochs=5,
              num_threads=1, bootstrap=0, progress=True)
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and "HF_HUB_OFFLINE" in warnings[0] and "--weights" in warnings[0]
    assert res.entry.pretrained == "none"
    assert (res.run_dir / "features.safetensors").is_file()
    with pytest.raises(ThyroidBenchError, match="require-pretrained"):
        run(MODEL, dataset=tiny, out=tmp_path / "lp2", protocol="linear-probe",
            require_pretrained=True, **{k: v for k, v in FAST.items() if k != "protocol"})


def test_weights_file_is_loaded_and_recorded(tiny, tmp_path):
    import timm
    import torch
    from safetensors.torch import save_file

    src = timm.create_model("test_resnet", num_classes=0, in_chans=1)
    with torch.no_grad():
        for p in src.parameters():
            p.fill_(0.01)
    f = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))
    res = run(MODEL, dataset=tiny, out=tmp_path / "w", weights=f, protocol="linear-probe", epochs=2,
              num_threads=1, bootstrap=0, progress=False)
    assert res.entry.pretrained == "file:w.safetensors"
    assert res.entry.pretrained_sha256 == sha256_file(f)
    from safetensors.torch import load_file

    state = load_file(str(res.run_dir / "model.safetensors"))
    assert torch.all(state["backbone.conv1.0.weight"] == 0.01)  # the frozen backbone kept the file's weights


def test_metrics_are_scikit_learns_figures_of_the_written_predictions(first_run, tiny, task):
    d = first_run.run_dir
    metrics = json.loads((d / "metrics.json").read_text())
    assert list(metrics) == list(task.eval_splits) == ["internal", "external"]
    for split in task.eval_splits:
        frame = pd.read_csv(d / f"predictions/{split}.csv")
        labels = read_split(tiny, split, columns=["case_id", "label"]).set_index("case_id")["label"]
        y_true = labels.loc[frame["case_id"]].to_numpy()
        y_pred = frame[list(task.prob_columns)].to_numpy().argmax(axis=1)
        assert metrics[split]["n"] == len(frame) == len(labels) == 16
        assert metrics[split]["accuracy"] == pytest.approx(accuracy_score(y_true, y_pred), abs=1e-12)
        assert metrics[split]["macro_f1"] == pytest.approx(
            f1_score(y_true, y_pred, average="macro", zero_division=0), abs=1e-12)
        # The CSV's label column is the dataset's label, by class name.
        assert frame["label"].tolist() == [task.class_names[y] for y in y_true]


def test_entry_names_the_task_dataset_and_files_on_disk(first_run, tiny, task):
    d = first_run.run_dir
    entry = read_entry(d / "entry.json")
    manifest = json.loads((tiny / "manifest.json").read_text())
    assert entry.task == manifest["task"] == task.name == "four-pattern"
    on_disk = verify_dataset(tiny)  # the fingerprint recomputed from the shards
    assert on_disk.ok and on_disk.fingerprint == manifest["fingerprint"]
    assert (entry.dataset.name, entry.dataset.version, entry.dataset.fingerprint) == \
        ("tiny", "1.0.0", on_disk.fingerprint)
    assert entry.dataset.synthetic is manifest["synthetic"] is False
    assert sorted(entry.predictions) == sorted(task.eval_splits)
    for split, pf in entry.predictions.items():
        data = (d / pf.path).read_bytes()
        assert pf.path == f"predictions/{split}.csv"
        assert pf.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(d / pf.path)
        assert pf.rows == data.count(b"\n") - 1 == manifest["splits"][split]["rows"]
    assert entry.metrics == json.loads((d / "metrics.json").read_text())
    config = json.loads((d / "config.json").read_text())
    assert config["task"] == task.name and config["dataset"]["fingerprint"] == manifest["fingerprint"]


def test_class_columns_follow_the_task(first_run, task):
    header = (first_run.run_dir / "predictions/internal.csv").read_text().splitlines()[0].split(",")
    assert header == ["case_id", *task.prob_columns, "label"]
    assert task.prob_columns == ("prob_diffusely_increased", "prob_diffusely_decreased",
                                 "prob_focal_increased", "prob_heterogeneous_uptake")
