"""`thyroid-bench models` and `thyroid-bench run` through the real CLI entry point."""

from __future__ import annotations

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
