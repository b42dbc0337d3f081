"""The residual-tissue task through the harness: two views as two channels, labels of unknown
grade trained on P(present), the ordinal suite's figures in the entry and the report.

A tiny residual dataset (40/12/12 cases of 32x32, anterior and posterior views) is written
here and run end to end with a tiny timm model for one epoch on one CPU thread.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn import metrics as skm

from thyroid_bench.cli import main
from thyroid_bench.data.format import read_split, write_dataset
from thyroid_bench.data.images import decode_image
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.harness.preprocess import load_split, prepare_images, scale_counts
from thyroid_bench.harness.run import run
from thyroid_bench.harness.train import task_loss
from thyroid_bench.leaderboard.checks import protocol_problem
from thyroid_bench.models import ModelError, create_model, describe_model
from thyroid_bench.tasks import UNKNOWN_GRADE, get_task

TASK = get_task("residual-tissue")
MODEL = "timm:test_resnet"
FAST = dict(protocol="quick", epochs=1, batch_size=8, num_threads=1, bootstrap=20, progress=False,
            device="cpu")


def residual_rows(split: str, n: int, seed: int, unknown: tuple[int, ...] = ()) -> list[dict]:
    """Two views of Poisson background with a thyroid-bed spot whose brightness follows the
    grade (dimmer on the posterior view); rows in ``unknown`` are labelled present, grade
    unknown (-1); every third case has no measured uptake."""
    rng = np.random.default_rng([seed, n])
    rows = []
    for i in range(n):
        grade = i % 4
        anterior = rng.poisson(3.0, (32, 32))
        posterior = rng.poisson(2.0, (32, 32))
        if grade:
            anterior[18:24, 13:19] += 15 * grade
            posterior[18:24, 13:19] += 6 * grade
        rows.append({
            "case_id": f"{split}-{i:03d}", "patient_id": f"{split}-p{i:03d}",
            "image": anterior.astype(np.uint16), "image_posterior": posterior.astype(np.uint16),
            "label": UNKNOWN_GRADE if i in unknown else grade,
            "center": "neck-static" if split == "external" else "wholebody",
            "fold": i % 5 if split == "train" else -1, "matrix": 32, "pixel_spacing_mm": 4.4,
            "total_counts": int(anterior.sum()), "acquisition_s": 600.0, "sex": "F", "age": 40 + i,
            "uptake_pct": None if i % 3 == 2 else [0.0, 0.5, 1.5, 3.0][grade],
        })
    return rows


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    root = tmp_path_factory.mktemp("residual") / "tiny-residual" / "0.1.0"
    return write_dataset("tiny-residual", "0.1.0", {
        "train": residual_rows("train", 40, 0, unknown=(5, 13, 22)),
        "internal": residual_rows("internal", 12, 1),
        "external": residual_rows("external", 12, 2, unknown=(3, 7))},
        task=TASK, root=root, provenance={"made_by": "tests"}, licence="cc0-1.0")


@pytest.fixture(scope="module")
def residual_run(residual, tmp_path_factory):
    return run(MODEL, dataset=residual, out=tmp_path_factory.mktemp("runs") / "r", seed=0, **FAST)


# --------------------------------------------------------------------------- input
def test_load_split_stacks_the_two_views_as_channels(residual):
    data = load_split(residual, "train", 16, TASK, progress=False)
    table = read_split(residual, "train")
    assert data.x.shape == (40, 2, 16, 16) and data.x.dtype == torch.float32
    for c, column in enumerate(("image", "image_posterior")):  # anterior, then posterior
        expected = prepare_images([decode_image(b) for b in table[column]], 16)
        assert torch.equal(data.x[:, c:c + 1], expected)
    assert data.y.tolist() == table["label"].tolist() and data.y.tolist().count(-1) == 3
    uptake = data.values["uptake_pct"]
    np.testing.assert_array_equal(np.isnan(uptake), table["uptake_pct"].isna().to_numpy())
    assert np.isnan(uptake[2]) and uptake[1] == 0.5
    sub = data.subset(data.folds == 0)
    assert sub.x.shape[1] == 2 and len(sub.values["uptake_pct"]) == len(sub) == 8


def test_four_pattern_load_split_is_todays(tiny_run_dataset):
    """Single view: the tensors of the code before views were stacked, bit for bit."""
    task = get_task("four-pattern")
    table = read_split(tiny_run_dataset, "internal", columns=["case_id", "image", "label", "fold"])
    for size in (32, 20):  # as stored, and resized
        before = torch.empty((len(table), 1, size, size), dtype=torch.float32)
        for i, b in enumerate(table["image"]):  # the former prepare_images, line by line
            x = torch.from_numpy(scale_counts(decode_image(b)).astype(np.float32) / 255.0)[None, None]
            if x.shape[-2:] != (size, size):
                x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                                  antialias=True).clamp_(0.0, 1.0)
            before[i] = x[0]
        data = load_split(tiny_run_dataset, "internal", size, task, progress=False)
        assert data.x.shape == (16, 1, size, size) and torch.equal(data.x, before)
        assert data.y.tolist() == table["label"].tolist() and data.values == {}


# --------------------------------------------------------------------------- loss
def test_loss_of_unknown_grade_is_the_binary_log_loss_on_p_present():
    logits = torch.tensor([[1.0, 2.0, 0.0, -1.0], [0.5, 0.0, 0.0, 0.0], [0.0, 1.0, -2.0, 0.5]])
    target = torch.tensor([[0.0, 0.0, 1.0, 0.0, 0.0],   # grade 2 (moderate)
                           [0.0, 0.0, 0.0, 0.0, 1.0],   # present, grade unknown
                           [0.3, 0.0, 0.0, 0.0, 0.7]])  # mix-up of absent (0.3) and unknown (0.7)
    p = [[math.exp(v) / sum(math.exp(u) for u in row) for v in row] for row in logits.tolist()]
    by_hand = [-math.log(p[0][2]),
               -math.log(1 - p[1][0]),
               -0.3 * math.log(p[2][0]) - 0.7 * math.log(1 - p[2][0])]
    loss = task_loss(logits, target, negative_index=0)
    assert float(loss) == pytest.approx(sum(by_hand) / 3, rel=1e-6)
    # Known grades only: the cross-entropy; without a detection reading: F.cross_entropy itself.
    known = target[:1]
    assert float(task_loss(logits[:1], known, negative_index=0)) == pytest.approx(by_hand[0], rel=1e-6)
    assert torch.equal(task_loss(logits[:1], known[:, :4]), F.cross_entropy(logits[:1], known[:, :4]))
    # An unknown-grade case pulls P(absent) down and leaves the grades' ratios to the model.
    x = logits[1:2].clone().requires_grad_(True)
    task_loss(x, target[1:2], negative_index=0).backward()
    assert float(x.grad[0, 0]) > 0
    g = x.grad[0, 1:]
    present = torch.softmax(x.detach()[0], 0)[1:]
    torch.testing.assert_close(g / g.sum(), present / present.sum())


# --------------------------------------------------------------------------- models
def test_models_take_one_channel_per_view():
    for name in ("resnet50", MODEL):
        meta = describe_model(name, num_classes=4, in_chans=2)
        assert (meta.in_chans, meta.channel_policy) == (2, "views")
    net, meta = create_model("resnet50", num_classes=4, in_chans=2)
    assert net.backbone.conv1.weight.shape[1] == 2 and meta.in_chans == 2
    assert net(torch.rand(2, 2, 32, 32)).shape == (2, 4)
    four = describe_model("resnet50", num_classes=4)  # four-pattern: as before
    assert (four.in_chans, four.channel_policy) == (3, "replicate")


def test_pretrained_first_convolution_is_adapted_to_two_views(tmp_path):
    import timm
    from safetensors.torch import save_file
    from timm.models import adapt_input_conv

    src = timm.create_model("test_resnet", num_classes=0, in_chans=3)  # RGB weights
    f = tmp_path / "w.safetensors"
    save_file({k: v.contiguous() for k, v in src.state_dict().items()}, str(f))
    net, _ = create_model(MODEL, num_classes=4, in_chans=2, pretrained=True, pretrained_file=str(f))
    rgb = src.state_dict()["conv1.0.weight"]
    got = net.backbone.state_dict()["conv1.0.weight"]
    # timm repeats the RGB kernels to 2 channels and scales them by 3/2
    assert got.shape[1] == 2 and torch.equal(got, adapt_input_conv(2, rgb))
    torch.testing.assert_close(got, rgb[:, :2] * 1.5)


def test_a_factory_without_in_chans_is_refused(tmp_path):
    f = tmp_path / "net.py"
    f.write_text("import torch\n\ndef build(num_classes):\n"
                 "    return torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.Flatten(),\n"
                 "                               torch.nn.LazyLinear(num_classes))\n")
    with pytest.raises(ModelError, match="no in_chans keyword"):
        create_model(f"{f}:build", num_classes=4, in_chans=2)


def test_models_command_shows_the_tasks_channels(capsys):
    assert main(["models", "--task", "residual-tissue"]) == 0
    out = capsys.readouterr().out
    assert "| `densenet169` | thyroid-bench |" in out and "| 2 (views) |" in out
    assert "3 (replicate)" not in out and "2 input channels, one per view" in out


# --------------------------------------------------------------------------- the run
def _rows(path):
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def test_run_trains_two_channels_and_names_the_task(residual_run):
    d = residual_run.run_dir
    entry = read_entry(d / "entry.json")
    assert entry.task == "residual-tissue"
    assert (entry.model.in_chans, entry.model.channel_policy) == (2, "views")
    assert entry.selection["metric"] == "detection_balanced_accuracy"
    from safetensors.torch import load_file

    assert load_file(str(d / "model.safetensors"))["backbone.conv1.0.weight"].shape[1] == 2
    config = json.loads((d / "config.json").read_text())
    assert config["in_chans"] == 2 and config["selection"]["best_epoch"] == 1
    log = (d / "train.log").read_text()
    assert "input 64x64x2" in log and "detection_balanced_accuracy" in log
    epoch = next(line for line in log.splitlines() if "epoch   1/1" in line)
    loss = float(epoch.split("loss ")[1].split()[0])  # labels -1 in train: a finite loss
    assert math.isfinite(loss) and loss > 0
    # the selection fold holds labels of unknown grade: its line shows the selection metric
    assert "fold0 detection_balanced_accuracy " in epoch and "macro-F1" not in epoch
    internal = log.split("internal: n 12")[1].splitlines()[0]
    assert "detection_balanced_accuracy" in internal and "quadratic_kappa" in internal


def test_quick_2_trains_residual_tissue_as_quick_1(residual_run, residual, tmp_path):
    """residual-tissue takes no class weights (Task.class_weighting), so quick@2 computes
    what quick@1 does: no weights in the log, the same predictions byte for byte, and an entry
    whose record (version 2, class_weight_power 0) passes the leaderboard's protocol check."""
    log = (residual_run.run_dir / "train.log").read_text()
    assert "protocol quick@2" in log and "class weights" not in log
    entry = read_entry(residual_run.run_dir / "entry.json")
    assert entry.protocol.parameters["version"] == 2
    assert entry.protocol.parameters["class_weight_power"] == 0.0
    assert protocol_problem(entry) is None
    q1 = run(MODEL, dataset=residual, out=tmp_path / "q1", seed=0, **{**FAST, "protocol": "quick@1"})
    for split in ("internal", "external"):
        rel = Path("predictions") / f"{split}.csv"
        assert (q1.run_dir / rel).read_bytes() == (residual_run.run_dir / rel).read_bytes()


def test_predictions_carry_the_tasks_columns_and_labels(residual_run, residual):
    for split in ("internal", "external"):
        rows = _rows(residual_run.run_dir / f"predictions/{split}.csv")
        assert list(rows[0]) == ["case_id", "prob_absent", "prob_low", "prob_moderate", "prob_high",
                                 "label"]
        labels = read_split(residual, split, columns=["case_id", "label"])
        expected = ["present" if y == UNKNOWN_GRADE else TASK.class_names[y] for y in labels["label"]]
        assert [r["label"] for r in rows] == expected
        assert [r["case_id"] for r in rows] == labels["case_id"].tolist()


def test_entry_metrics_are_scikit_learns(residual_run, residual):
    entry = read_entry(residual_run.run_dir / "entry.json")
    for split in ("internal", "external"):
        rows = _rows(residual_run.run_dir / f"predictions/{split}.csv")
        y = read_split(residual, split, columns=["label"])["label"].to_numpy()
        p = np.array([[float(r[c]) for c in TASK.prob_columns] for r in rows])
        m = entry.metrics[split]
        present, called = y != 0, 1 - p[:, 0] >= 0.5
        assert m["detection_balanced_accuracy"] == pytest.approx(
            skm.balanced_accuracy_score(present, called), abs=1e-12)
        assert m["detection_auc"] == pytest.approx(skm.roc_auc_score(present, 1 - p[:, 0]), abs=1e-12)
        assert m["uptake_n"] == 0 and m["uptake_mae"] is None  # the model predicts no uptake
        if split == "internal":
            assert m["grades_known"] is True
            assert m["quadratic_kappa"] == pytest.approx(
                skm.cohen_kappa_score(y, p.argmax(1), labels=range(4), weights="quadratic"), abs=1e-12)
        else:  # two cases of unknown grade: grade figures undefined
            assert m["grades_known"] is False and m["quadratic_kappa"] is None
    assert entry.metrics == json.loads((residual_run.run_dir / "metrics.json").read_text())


def test_report_has_the_detection_and_grade_tables(residual_run):
    d = residual_run.run_dir
    text = (d / "report.md").read_text()
    m = residual_run.metrics["internal"]
    internal = text.split("## internal")[1].split("## external")[0]
    assert "called when P(present) = 1 - P(absent) >= 0.5" in internal and "| Detection (n=" in internal
    sens, (lo, hi) = m["detection_sensitivity"], m["ci"]["detection_sensitivity"]
    assert f"| Sensitivity (%) | {100 * sens:.1f} ({100 * lo:.1f}-{100 * hi:.1f}) |" in internal
    for row in ("Specificity (%)", "PPV (%)", "NPV (%)", "Balanced accuracy (%)", "F1 (%)", "AUC (%)"):
        assert f"| {row} | " in internal
    assert f"| Quadratic-weighted kappa | {m['quadratic_kappa']:.3f}" in internal
    assert "| MAE (grades) | " in internal
    cm = m["confusion_matrix"]
    assert "| true \u2193 predicted \u2192 | absent | low | moderate | high |" in internal
    assert "| high | " + " | ".join(str(v) for v in cm[3]) + " |" in internal
    assert "![ROC curve of detection, internal](figures/roc_internal.png)" in internal
    assert (d / "figures" / "roc_internal.png").stat().st_size > 5000
    external = text.split("## external")[1]
    assert "not known for every case" in external and "Sensitivity (%)" in external
    assert not (d / "figures" / "confusion_external.png").exists()
    assert "Uptake (n=" not in text  # no uptake predicted
    assert "## Internal-to-external gap" in text


def test_eval_only_and_linear_probe_take_two_views(residual_run, residual, tmp_path):
    ckpt = residual_run.run_dir / "model.safetensors"
    again = run(MODEL, dataset=residual, out=tmp_path / "eval", checkpoint=ckpt, eval_only=True,
                num_threads=1, bootstrap=20, progress=False, device="cpu")
    for split in ("internal", "external"):
        assert (again.run_dir / f"predictions/{split}.csv").read_bytes() == \
            (residual_run.run_dir / f"predictions/{split}.csv").read_bytes()
    # linear probing: cached 2-channel features, the head trained with labels -1 in train
    probe = run(MODEL, dataset=residual, out=tmp_path / "lp", protocol="linear-probe", epochs=2,
                num_threads=1, bootstrap=0, progress=False, device="cpu")
    assert probe.entry.model.in_chans == 2
    assert probe.entry.selection["best_epoch"] in (1, 2)
    assert probe.metrics["internal"]["detection_balanced_accuracy"] is not None


def test_a_checkpoint_of_other_input_channels_is_refused_before_anything_runs(residual_run, residual,
                                                                              tmp_path):
    """A checkpoint trained on one view (a four-pattern run) cannot seed a two-view run: one
    line says so, naming the checkpoint and both channel counts, and no run folder is made."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from thyroid_bench.errors import ThyroidBenchError

    ckpt = residual_run.run_dir / "model.safetensors"
    with safe_open(str(ckpt), framework="pt") as f:
        meta = dict(f.metadata())
    assert meta["in_chans"] == "2"
    other = tmp_path / "four.safetensors"
    save_file(load_file(str(ckpt)), str(other), metadata={**meta, "in_chans": "1", "dataset": "tsb-synthetic"})
    for eval_only in (True, False):
        with pytest.raises(ThyroidBenchError, match=r"four\.safetensors was trained with 1 input channel\(s\) "
                           r"\(on dataset 'tsb-synthetic'\), but on this dataset \(task residual-tissue, "
                           r"2 view\(s\)\) the model takes 2") as info:
            run(MODEL, dataset=residual, out=tmp_path / "out", checkpoint=other, eval_only=eval_only,
                num_threads=1, bootstrap=0, progress=False, device="cpu")
        assert "\n" not in str(info.value)
    assert not (tmp_path / "out").exists()
