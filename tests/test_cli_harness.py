"""`thyroid-bench models` and `thyroid-bench run` through the real CLI entry point."""

from __future__ import annotations

import json

from conftest import make_rows

from thyroid_bench.cli import main
from thyroid_bench.data.format import write_dataset


def test_models_lists_the_registry(capsys):
    assert main(["models"]) == 0
    out = capsys.readouterr().out
    for name, params in [("resnet50", "25.9 M"), ("densenet169", "14.5 M"),
                         ("inception_v3", "24.1 M"), ("inception_resnet_v2", "56.1 M")]:
        line = next(line for line in out.splitlines() if f"`{name}`" in line)
        assert params in line
    assert "299x299" in out and "timm:<name>" in out


def test_models_sizes_heads_by_the_task(capsys):
    assert main(["models", "--task", "four-pattern", "--json"]) == 0
    models = {m["name"]: m for m in json.loads(capsys.readouterr().out)}
    # ResNet-50 without its ImageNet FC (23,508,032 parameters), then the paper's head
    # FC 2048->1024, FC 1024->256 and FC 256->4, weights and biases.
    head = (2048 * 1024 + 1024) + (1024 * 256 + 256) + (256 * 4 + 4)
    assert models["resnet50"]["parameters"] == 23_508_032 + head
    assert models["resnet50"]["head"].endswith("FC 256->4")
    assert main(["models", "--task", "no-such-task"]) == 2
    assert "unknown task 'no-such-task'" in capsys.readouterr().err


def test_run_unknown_model_exits_2(capsys, tmp_path):
    assert main(["run", "--model", "resnet05", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err
    assert "unknown model 'resnet05'" in err and "resnet50" in err


def test_run_smoke_prints_table2(capsys, tmp_path):
    root = write_dataset("tiny", "1.0.0", {"train": make_rows("train", 20),
                                           "internal": make_rows("internal", 8, start=50),
                                           "external": make_rows("external", 8, start=80)},
                         root=tmp_path / "ds", provenance={}, licence="cc0-1.0")
    code = main(["run", "--model", "timm:test_resnet", "--epochs", "1", "--batch-size", "4",
                 "--dataset", str(root), "--out", str(tmp_path / "r"), "--num-threads", "1",
                 "--bootstrap", "0", "--quiet"])
    out = capsys.readouterr().out
    assert code == 0 and (tmp_path / "r" / "entry.json").is_file()
    assert "internal (n = 8)" in out and "external (n = 8)" in out and "Sensitivity" in out
    assert "type III, n=2" in out  # the task's class codes head the columns
