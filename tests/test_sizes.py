"""No empty datasets (thyroid_bench/data/sizes.py, data/dicom/split_sizes.py): prepare refuses a
version with an empty split or an empty train fold, whatever the source, naming the counts and
what to do, and writes nothing; verify reports one as a problem; an evaluation split without a
case of some class is a warning in info and verify."""

from __future__ import annotations

import csv
import io
import shutil
from pathlib import Path

import huggingface_hub
import numpy as np
import pytest

from conftest import make_rows
from test_run_residual import residual_rows
from thyroid_bench.cli import main
from thyroid_bench.data import format as fmt
from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.dicom.report import organiser_report_path
from thyroid_bench.data.format import dataset_info, write_dataset
from thyroid_bench.data.hub import prepare_hub
from thyroid_bench.data.verify import verify_dataset, verify_or_raise
from thyroid_bench.errors import DatasetError, VerificationError
from thyroid_bench.testing.dicom_writer import write_archive


def _written_before_the_rule(monkeypatch, *args, **kwargs) -> Path:
    """A version with an empty split or fold, as a thyroid-bench that did not refuse them wrote."""
    with monkeypatch.context() as m:
        m.setattr(fmt, "check_split_sizes", lambda *a, **k: None)
        return write_dataset(*args, **kwargs)


# --------------------------------------------------------------------------- the writer
def test_an_empty_split_is_refused_naming_the_counts_and_nothing_is_written(tiny_splits, tmp_path):
    with pytest.raises(DatasetError) as info:
        write_dataset("tiny", "1.0.0", {**tiny_splits, "internal": []}, home=tmp_path)
    assert str(info.value).startswith("dataset tiny 1.0.0: not written (nothing was): split "
                                      "internal is empty (studies per split: train 20, internal 0, "
                                      "external 8).")
    assert list(tmp_path.iterdir()) == []


def test_a_train_fold_without_a_study_is_refused(tiny_splits, tmp_path):
    train = [dict(r, fold=r["fold"] % 3) for r in tiny_splits["train"]]  # folds 0-2 only
    with pytest.raises(DatasetError, match=r"split train has 20 studies but fold\(s\) 3, 4 of its 5 "
                                           r"hold none: .*at least 5 patients"):
        write_dataset("tiny", "1.0.0", {**tiny_splits, "train": train}, home=tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_a_refused_rebuild_leaves_the_version_as_it_was(tiny_splits, tmp_path):
    path = write_dataset("tiny", "1.0.0", tiny_splits, home=tmp_path)
    before = {p.name: p.read_bytes() for p in path.rglob("*") if p.is_file()}
    with pytest.raises(DatasetError, match="split external is empty"):
        write_dataset("tiny", "1.0.0", {**tiny_splits, "external": []}, home=tmp_path, force=True)
    assert {p.name: p.read_bytes() for p in path.rglob("*") if p.is_file()} == before
    assert verify_dataset(path).ok


# --------------------------------------------------------------------------- verify, info, hub
def test_verify_and_info_report_an_empty_split_and_the_hub_installs_nothing(
        tiny_splits, tmp_path, monkeypatch, capsys):
    old = _written_before_the_rule(monkeypatch, "old", "1.0.0", {**tiny_splits, "internal": []},
                                   root=tmp_path / "repo")
    report = verify_dataset(old)
    assert report.problems == ["split internal is empty"]
    with pytest.raises(VerificationError, match="split internal is empty"):
        verify_or_raise(old)
    assert main(["verify", str(old)]) == 1
    assert "  - split internal is empty" in capsys.readouterr().out
    assert "WARNING split internal is empty" in dataset_info(old)
    monkeypatch.setattr(huggingface_hub, "snapshot_download",
                        lambda *, local_dir, **kw: shutil.copytree(old, local_dir, dirs_exist_ok=True))
    with pytest.raises(VerificationError, match=r"(?s)org/old failed verification, so nothing was "
                                                r"installed.*split internal is empty"):
        prepare_hub("org/old", home=tmp_path / "home")
    assert list((tmp_path / "home").iterdir()) == []


def test_verify_reports_an_empty_train_fold(tiny_splits, tmp_path, monkeypatch):
    train = [dict(r, fold=0) for r in tiny_splits["train"]]
    old = _written_before_the_rule(monkeypatch, "old", "1.0.0", {**tiny_splits, "train": train},
                                   root=tmp_path / "old")
    assert verify_dataset(old).problems == [
        "split train has 20 studies but fold(s) 1, 2, 3, 4 of its 5 hold none: the folds are cut "
        "by patient (fold 0 is held out for model selection), so train needs studies of at least 5 "
        "patients"]


@pytest.mark.parametrize("task", ["four-pattern", "residual-tissue"])
def test_an_evaluation_split_without_a_class_is_a_warning(tmp_path, task):
    if task == "four-pattern":
        splits = {"train": make_rows("train", 20), "internal": make_rows("internal", 8),
                  "external": make_rows("external", 8, matrix=16)}
        absent = "focal_increased"
    else:
        splits = {s: residual_rows(s, n, seed) for seed, (s, n) in enumerate(
            (("train", 20), ("internal", 8), ("external", 8)))}
        absent = "moderate"
    full = write_dataset("full", "1.0.0", splits, home=tmp_path, task=task)
    assert verify_dataset(full).warnings == [] and "WARNING" not in dataset_info(full)
    splits["external"] = [r for r in splits["external"] if r["label"] != 2]
    path = write_dataset("gap", "1.0.0", splits, home=tmp_path, task=task)
    report = verify_dataset(path)
    warning = (f"split external has no case of class {absent}: the per-class figures of that class "
               "(sensitivity, PPV, F1, AUC) are undefined there and macro averages run over the "
               "other classes")
    assert report.ok and report.warnings == [warning]
    assert dataset_info(path).endswith(f"\nWARNING {warning}")


# --------------------------------------------------------------------------- DICOM (issue 16)
def _rows(n, rng, **kw):
    return [{"image": rng.poisson(6.0, (8, 8)).astype(np.uint16), "label": i % 4,
             "patient": f"p{i}", **kw} for i in range(n)]


def _report(key: Path, name: str) -> list[dict]:
    return list(csv.DictReader(io.StringIO(organiser_report_path(key, name, "1.0.0").read_text())))


def test_an_archive_where_every_file_is_rejected_writes_nothing(tmp_path):
    """The issue's first case: nothing can be ingested (six CT files, four cut short)."""
    rng = np.random.default_rng(0)
    archive = write_archive(tmp_path / "a", _rows(6, rng, overrides={"Modality": "CT"}) + _rows(4, rng))
    for s in archive.studies[6:]:
        (archive.root / s.path).write_bytes((archive.root / s.path).read_bytes()[:200])
    key, home = tmp_path / "keys" / "k.key", tmp_path / "home"
    with pytest.raises(DatasetError) as info:
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="none",
                      version="1.0.0", key_file=key, home=home, workers=1)
    message = str(info.value)
    assert message.startswith("dataset none 1.0.0: not written (nothing was): split train is "
                              "empty; split internal is empty; split external is empty (studies "
                              "per split: train 0, internal 0, external 0). DICOM files: 10 seen = "
                              "0 ingested + 10 rejected (modality CT, not NM: 6, SOP class is "
                              "missing, not NM Image Storage or Secondary Capture: 4)")
    report = organiser_report_path(key, "none", "1.0.0")
    assert f"every rejected file and its reason: {report} (the organiser's report" in message
    assert "Nothing could be ingested: fix the rejected files" in message
    assert sorted(r["file"] for r in _report(key, "none")) == sorted(s.path for s in archive.studies)
    assert not home.exists() or list(home.rglob("*")) == []


def test_pydicom_test_files_alone_are_refused_with_every_file_accounted_for(tmp_path):
    """The issue's case verbatim: pydicom's own test files (all correctly rejected)."""
    from pydicom.data.data_manager import DATA_ROOT

    from thyroid_bench.data.dicom.ingest import list_archive

    root = Path(DATA_ROOT) / "test_files"
    if not root.is_dir() or len(list(root.rglob("*.dcm"))) < 50:
        pytest.skip("pydicom's test files are not installed")
    shutil.copytree(root, tmp_path / "a", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    rels = list_archive(tmp_path / "a")
    (tmp_path / "labels.csv").write_text("path,label,center\n" + "".join(f"{r},III,c1\n" for r in rels))
    with pytest.raises(DatasetError) as info:
        prepare_dicom(dicom_dir=tmp_path / "a", labels=tmp_path / "labels.csv", name="pydicom",
                      version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=2)
    assert f"DICOM files: {len(rels)} seen = 0 ingested + {len(rels)} rejected" in str(info.value)
    assert len(_report(tmp_path / "k", "pydicom")) == len(rels) and not (tmp_path / "h").exists()


def test_three_files_one_a_duplicate_leave_internal_empty_and_are_refused(tmp_path, capsys):
    """The issue's second case: three NM files (one a duplicate) from two centres."""
    rng = np.random.default_rng(1)
    rows = _rows(3, rng)
    rows[1]["image"] = rows[0]["image"].copy()
    rows[2]["center"] = "center2"
    archive = write_archive(tmp_path / "a", rows)
    rc = main(["prepare", "--source", "dicom", "--dicom-dir", str(archive.root), "--labels",
               str(archive.labels_csv), "--name", "three", "--version", "1.0.0", "--key-file",
               str(tmp_path / "k"), "--home", str(tmp_path / "h"), "--external-center", "center2",
               "--workers", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and "Traceback" not in err and err.count("\n") == 1
    assert ("split internal is empty; split train has 1 study but fold(s) 1, 2, 3, 4 of its 5 hold "
            "none" in err)
    assert "(studies per split: train 1, internal 0, external 1)" in err
    assert "DICOM files: 3 seen = 2 ingested + 1 rejected (duplicate image: 1)" in err
    assert "train and internal need more studies, of more patients" in err
    assert [r["reason"][:15] for r in _report(tmp_path / "k", "three")] == ["duplicate image"]
    assert not (tmp_path / "h" / "three").exists()


def test_a_single_centre_archive_is_told_to_name_an_external_centre(tmp_path):
    archive = write_archive(tmp_path / "a", _rows(12, np.random.default_rng(2)))
    with pytest.raises(DatasetError) as info:
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="one",
                      version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1)
    message = str(info.value)
    assert "not written (nothing was): split external is empty (studies per split: train " in message
    assert message.endswith("To build it: name the centre whose studies form the external split "
                            "with --external-center (the labels CSV's centres: center1).")
