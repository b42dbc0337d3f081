"""DICOM ingestion end to end: a generated archive with planted identifiers and bad files,
pydicom's own test files, the split rules, pseudonym stability, errors and the CLI."""

from __future__ import annotations

import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from conftest import output_haystacks
from thyroid_bench.data.dicom.deid import Pseudonymizer
from thyroid_bench.data.dicom.ingest import list_archive, prepare_dicom, read_archive, stratified_group_bins
from thyroid_bench.data.dicom.report import organiser_report_path
from thyroid_bench.data.format import read_split
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import (
    MainScore,
    Reference,
    Target,
    Task,
    TaskClass,
    get_task,
    register_task,
    unregister_task,
)
from thyroid_bench.testing.dicom_writer import (
    CANARY_PREFIX,
    FILLER_CENTERS,
    filler_rows,
    make_identity,
    write_archive,
)

SEED = 11
#: Studies filler_rows() adds to a small archive so that every split and fold has one.
FILL = len(filler_rows())
SR_TEXT = "ZZCANARYZZSRTEXT"
FOUR = get_task("four-pattern")
# A two-class task defined here alone: ingestion must need no change to serve it.
TOY = Task(
    name="toy-residual",
    description="residual thyroid tissue after thyroidectomy, yes or no (a test task)",
    reference=Reference(citation="tests/test_dicom.py"),
    modality="test phantoms",
    target=Target(kind="binary", classes=(
        TaskClass(index=0, name="no_residue", code="R0"),
        TaskClass(index=1, name="residue", code="R1"),
    )),
    main_score=MainScore(metric="macro_f1", split="external"),
)


def _image(rng, n=32, level=6.0):
    return rng.poisson(level, (n, n)).astype(np.uint16)


def _rows():
    """44 good studies (30 patients, 6 with 3 studies) + one of each kind of bad file."""
    rng = np.random.default_rng(SEED)
    rows = []
    for p in range(24):  # centre 1
        for k in range(3 if p < 6 else 1):
            rows.append({"image": _image(rng), "label": (p + k) % 4, "center": "center1",
                         "patient": f"c1-{p}", "sex": "FM"[p % 2], "age": 30 + p})
    for p in range(8):  # centre 2, the external one
        rows.append({"image": _image(rng, 16), "label": p % 4, "center": "center2",
                     "patient": f"c2-{p}", "sex": "F", "age": None})
    ant, post = _image(rng, level=9.0), _image(rng, level=2.0)
    named = make_identity(SEED, "named", "center1").patient_name.split("^")[0]
    rows += [
        {"image": post, "frames": [(post, "posterior"), (ant, "anterior")], "label": 2,
         "center": "center1", "patient": "multi", "kind": "anterior"},
        {"image": _image(rng), "label": 1, "center": "center1", "patient": "rle",
         "transfer_syntax": "1.2.840.10008.1.2.5", "kind": "rle"},
        {"image": _image(rng), "label": 3, "center": "center1", "patient": "slope",
         "overrides": {"RescaleSlope": "2", "RescaleIntercept": "0"}, "kind": "slope"},
        {"image": rows[0]["image"], "label": 0, "center": "center1", "patient": "dup",
         "bad": "duplicate image"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "nolabel",
         "labelled": False, "bad": "no label row"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "ct",
         "overrides": {"Modality": "CT"}, "bad": "modality CT, not NM"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "burned",
         "overrides": {"BurnedInAnnotation": "YES"}, "bad": "Burned In Annotation is YES"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "negative",
         "overrides": {"RescaleIntercept": "-100"}, "bad": "outside 0-65535"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "postonly",
         "frames": [(_image(rng), "posterior"), (_image(rng), "posterior")],
         "bad": "no anterior view"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "named",
         "path": f"{named}/scan.dcm", "overrides": {"Modality": "US"}, "bad": "modality US"},
        {"image": _image(rng), "label": 0, "center": "center1", "patient": "truncated",
         "bad": "truncated"},
    ]
    return rows


def _write_sr(path: Path, identity) -> str:
    """A Basic Text SR (a non-image object) with an identity and a canary; returns its UID."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"
    ds.file_meta.MediaStorageSOPInstanceUID = uid = generate_uid()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID, ds.SOPInstanceUID, ds.Modality = "1.2.840.10008.5.1.4.1.1.88.11", uid, "SR"
    ds.PatientName, ds.PatientID = identity.patient_name, identity.patient_id
    item = Dataset()
    item.ValueType, item.TextValue = "TEXT", f"Report for {identity.patient_name}: {SR_TEXT}"
    ds.ContentSequence = Sequence([item])
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    return uid


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The generated archive, ingested once (two worker processes)."""
    tmp = tmp_path_factory.mktemp("dicom")
    rows = _rows()
    archive = write_archive(tmp / "archive", rows, seed=SEED)
    studies = {s.path: (s, r) for s, r in zip(archive.studies, rows)}
    truncated = next(s for s, r in studies.values() if r.get("bad") == "truncated")
    data = (archive.root / truncated.path).read_bytes()
    (archive.root / truncated.path).write_bytes(data[: len(data) * 2 // 3])
    sr_identity = make_identity(SEED, "sr", "center1")
    _write_sr(archive.root / "reports" / "sr.dcm", sr_identity)
    (archive.root / "README.txt").write_text("exported by the PACS\n")
    with open(archive.labels_csv, "a", newline="") as fh:
        csv.writer(fh).writerow(["reports/sr.dcm", "I", "center1"])
    expected_bad = {s.path: r["bad"] for s, r in studies.values() if "bad" in r}
    expected_bad["reports/sr.dcm"] = "SOP class is Basic Text SR Storage"
    expected_bad["README.txt"] = "not a DICOM file"
    key_file = tmp / "secret" / "pseudonym.key"
    home = tmp / "home"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="westchina-test",
                         version="1.0.0", key_file=key_file, external_centers=["center2"],
                         home=home, workers=2)
    planted = archive.planted() | {sr_identity.patient_name, sr_identity.patient_id, SR_TEXT,
                                   *sr_identity.patient_name.split("^")}
    return {"tmp": tmp, "archive": archive, "rows": rows, "studies": studies, "path": path,
            "key_file": key_file, "home": home, "bad": expected_bad, "planted": planted}


def _table(path: Path):
    import pandas as pd

    frames = []
    for split in ("train", "internal", "external"):
        t = read_split(path, split)
        t["split"] = split
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _own(table):
    """The rows of a test's own studies, without filler_rows()."""
    return table[~table["center"].isin(FILLER_CENTERS)].reset_index(drop=True)


def _filler_into(archive: Path):
    """filler_rows() written as DICOM files under ``<archive>/filler/`` (their labels CSV
    outside it); returns the written archive (paths relative to ``filler/``)."""
    filler = write_archive(archive.parent / "filler-src" / "filler", filler_rows())
    shutil.copytree(filler.root, archive / "filler")
    return filler


def _rejected(path: Path, key_file: Path) -> list[dict]:
    """The organiser's report beside the key: real paths (the dataset's rejected.csv names
    files by pseudonym only)."""
    report = organiser_report_path(key_file, path.parent.name, path.name)
    return list(csv.DictReader(io.StringIO(report.read_text())))


# --------------------------------------------------------------------------- the generated archive
def test_every_file_is_ingested_or_rejected_with_its_reason(built):
    files = list_archive(built["archive"].root)
    table, rejected = _table(built["path"]), _rejected(built["path"], built["key_file"])
    assert len(table) + len(rejected) == len(files)
    reasons = {r["file"]: r["reason"] for r in rejected}
    assert len(reasons) == len(built["bad"])
    for file, why in built["bad"].items():
        if why == "truncated":
            assert "does not decode" in reasons[file] or "unreadable" in reasons[file]
        else:
            assert why in reasons[file], (file, reasons[file])
    manifest = read_manifest(built["path"])
    ingest = manifest.provenance["ingest"]
    assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"]) == \
        (len(files), len(table), len(rejected))


def test_pixels_labels_and_fields_round_trip(built):
    key = built["key_file"].read_bytes()
    pseud = Pseudonymizer(key)
    table = _table(built["path"]).set_index("case_id")
    good = [(s, r) for s, r in built["studies"].values() if "bad" not in r]
    assert len(table) == len(good) == 44 + 3
    for s, r in good:
        row = table.loc[pseud.case(s.uids[2])]
        image = np.asarray(Image.open(io.BytesIO(row["image"])))
        expected = s.image.astype(np.int64)
        if r.get("kind") == "anterior":
            expected = r["frames"][1][0]
        elif r.get("kind") == "slope":
            expected = 2 * s.image.astype(np.int64)
        np.testing.assert_array_equal(image, expected)
        assert row["label"] == s.label and row["center"] == s.center
        assert row["total_counts"] == int(np.sum(expected)) and row["matrix"] == expected.shape[0]
        assert row["patient_id"] == pseud.patient(s.center, s.identity.issuer, s.identity.patient_id)
        assert row["sex"] == {"F": "F", "M": "M"}.get(s.sex, "unknown")
        assert (None if np.isnan(row["age"]) else int(row["age"])) == s.age
        assert row["pixel_spacing_mm"] == pytest.approx(2.21)
        assert row["acquisition_s"] == pytest.approx(300.0)


def test_dataset_verifies(built):
    report = verify_dataset(built["path"])
    assert report.ok, report.render()
    assert report.rows["external"] == 8




def test_no_identifier_or_canary_anywhere_in_the_output(built):
    hay = [h.lower() for h in output_haystacks(built["path"])]
    planted = {p for p in built["planted"] if len(p) >= 4}
    assert any(built["archive"].studies[0].canary in p for p in planted)
    assert len(planted) > 200
    leaks = sorted(p for p in planted if any(p.lower().encode() in h for h in hay))
    assert leaks == []
    assert not any(CANARY_PREFIX.lower().encode() in h for h in hay)
    # The search does find what is there: a pseudonym and a column value.
    assert any(b"center2" in h for h in hay)


def test_patients_stay_in_one_split_and_external_is_its_centre(built):
    table = _table(built["path"])
    splits_per_patient = table.groupby("patient_id")["split"].nunique()
    assert (splits_per_patient == 1).all()
    assert (table.groupby("patient_id").size() == 3).sum() == 6  # the multi-study patients
    assert set(table.loc[table["split"] == "external", "center"]) == {"center2"}
    assert set(table.loc[table["split"] != "external", "center"]) == {"center1"}
    train = table[table["split"] == "train"]
    assert set(train["fold"]) == set(range(FOUR.folds))
    assert (train.groupby("patient_id")["fold"].nunique() == 1).all()
    assert (table.loc[table["split"] != "train", "fold"] == -1).all()
    # 20% of each class of centre 1's 39 studies held out, whole patients at a time.
    centre1 = table[table["center"] == "center1"]
    for k in range(4):
        n_k = int((centre1["label"] == k).sum())
        held = int(((centre1["label"] == k) & (centre1["split"] == "internal")).sum())
        assert abs(held - 0.2 * n_k) <= 1.0, (k, held, n_k)


def test_same_key_same_pseudonyms_other_key_different(built):
    archive = built["archive"]
    again = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="westchina-test",
                          version="1.0.1", key_file=built["key_file"], external_centers=["center2"],
                          home=built["home"], workers=1)
    assert read_manifest(again).fingerprint == read_manifest(built["path"]).fingerprint
    other = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="westchina-test",
                          version="2.0.0", key_file=built["tmp"] / "other.key",
                          external_centers=["center2"], home=built["home"], workers=1)
    first, second = _table(built["path"]), _table(other)
    assert len(first) == len(second)
    assert not set(first["case_id"]) & set(second["case_id"])
    assert not set(first["patient_id"]) & set(second["patient_id"])
    assert sorted(first["total_counts"]) == sorted(second["total_counts"])


def test_split_column_overrides_the_seeded_split(built, tmp_path):
    archive = built["archive"]
    lines = list(csv.reader(archive.labels_csv.open()))
    by_path = {s.path: s for s in archive.studies}
    wanted = {}
    with open(tmp_path / "official.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(lines[0] + ["split"])
        for path, label, center in lines[1:]:
            study = by_path.get(path)
            patient = study.patient if study else "sr"
            split = ("external" if center == "center2" else
                     "internal" if patient.endswith(("1", "3")) else "train")
            wanted[path] = split
            w.writerow([path, label, center, split])
    out = prepare_dicom(dicom_dir=archive.root, labels=tmp_path / "official.csv", name="official",
                        version="1.0.0", key_file=built["key_file"], home=tmp_path / "home", workers=1)
    pseud = Pseudonymizer(built["key_file"].read_bytes())
    table = _table(out).set_index("case_id")
    checked = 0
    for path, split in wanted.items():
        study = by_path.get(path)
        case = pseud.case(study.uids[2]) if study else None
        if case in table.index:
            assert table.loc[case, "split"] == split
            checked += 1
    assert checked == len(table) == 47
    assert read_manifest(out).provenance["split"]["method"] == "official split column"


def test_split_column_must_keep_a_patient_together(built, tmp_path):
    archive = built["archive"]
    lines = list(csv.reader(archive.labels_csv.open()))
    with open(tmp_path / "bad.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(lines[0] + ["split"])
        for i, (path, label, center) in enumerate(lines[1:]):
            w.writerow([path, label, center, "train" if i != 1 else "internal"])
    with pytest.raises(DatasetError, match=r"lines 2 and 3: the same patient"):
        prepare_dicom(dicom_dir=archive.root, labels=tmp_path / "bad.csv", name="bad",
                      version="1.0.0", key_file=built["key_file"], home=tmp_path / "home", workers=1)


def test_provenance_lists_technical_fields_but_withholds_rare_text(built):
    tech = read_manifest(built["path"]).provenance["technical"]
    # Every file's manufacturer/model/collimator is its own canary: one patient each, withheld.
    assert tech["manufacturers"] == {"[rare values withheld]": 47}
    assert tech["collimator_types"] == {"PARA": 47}
    assert tech["energy_windows_kev"] == {"126-154": 47}
    assert tech["matrices"] == {"16": 8, "32": 39}
    assert tech["frame_choice"] == {"anterior view": 1, "single frame": 46}
    assert tech["transfer_syntaxes"] == {"Explicit VR Little Endian": 46, "RLE Lossless": 1}
    # Counts Accumulated equals the pixel sum except where the slope doubles the counts.
    assert tech["counts_accumulated"] == {"stated": 47, "equal_to_pixel_sum": 45}


def test_realistic_technical_values_are_reported(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"image": _image(rng, 8), "label": i % 4, "patient": f"p{i}"} for i in range(6)]
    name = make_identity(0, "p5", "center1").patient_name
    rows[5]["overrides"] = {"ManufacturerModelName": f"Gammascope {name}"}
    archive = write_archive(tmp_path / "a", rows + filler_rows(), canary_technical=False)
    out = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="tech",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                        external_centers=[FILLER_CENTERS[1]])
    tech = read_manifest(out).provenance["technical"]
    assert tech["manufacturers"] == {"ACME Medical Systems": 6 + FILL}
    assert tech["models"] == {"Gammascope 3000": 5 + FILL, "[rare values withheld]": 1}
    assert tech["collimators"] == {"LEHR": 6 + FILL}


def test_burned_in_annotation_is_ingested_only_when_allowed(tmp_path):
    rng = np.random.default_rng(5)
    rows = [{"image": _image(rng, 8), "label": i % 4, "patient": f"p{i}",
             "overrides": {"BurnedInAnnotation": "YES"} if i == 0 else {}} for i in range(5)]
    archive = write_archive(tmp_path / "a", rows + filler_rows())
    common = dict(dicom_dir=archive.root, labels=archive.labels_csv, name="burn",
                  key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                  external_centers=[FILLER_CENTERS[1]])
    refused = prepare_dicom(version="1.0.0", **common)
    allowed = prepare_dicom(version="1.0.1", allow_burned_in=True, **common)
    assert len(_own(_table(refused))) == 4 and len(_rejected(refused, tmp_path / "k")) == 1
    assert len(_own(_table(allowed))) == 5 and _rejected(allowed, tmp_path / "k") == []
    assert read_manifest(allowed).provenance["burned_in_allowed"] is True


def test_same_pixel_sum_is_not_a_duplicate(tmp_path):
    rng = np.random.default_rng(4)
    image = _image(rng, 8)
    rows = [{"image": image, "label": 0, "patient": "a"},
            {"image": image[::-1].copy(), "label": 1, "patient": "b"},  # same sum, other pixels
            {"image": image.copy(), "label": 2, "patient": "c"}]        # the same pixels
    archive = write_archive(tmp_path / "a", rows + filler_rows())
    out = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="dups",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                        external_centers=[FILLER_CENTERS[1]])
    assert sorted(_own(_table(out))["label"]) == [0, 1]
    assert [(r["file"], r["reason"]) for r in _rejected(out, tmp_path / "k")] == [
        (archive.studies[2].path, "duplicate image: identical pixels to the study of labels line 2")]


def test_another_tasks_archive_is_labelled_counted_and_stratified_by_its_classes(tmp_path):
    register_task(TOY)
    try:
        rng = np.random.default_rng(6)
        rows = [{"image": _image(rng, 8), "label": i % 2, "center": "center1" if i < 16 else "center2",
                 "patient": f"p{i}"} for i in range(20)]
        archive = write_archive(tmp_path / "a", rows, task=TOY, label_style="mixed")
        with open(archive.labels_csv) as fh:  # names and codes of the toy task, alternately
            assert [r[1] for r in list(csv.reader(fh))[1:5]] == ["no_residue", "R1", "no_residue", "R1"]
        out = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="toy",
                            version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h",
                            external_centers=["center2"], workers=1, task="toy-residual")
        manifest = read_manifest(out)
        assert manifest.task == "toy-residual" and manifest.get_task() == TOY
        assert [c["name"] for c in manifest.label_schema["classes"]] == ["no_residue", "residue"]
        # 8 studies of each class at centre 1, one patient each: 20% held out is 1.6 -> 2 per class.
        assert {s: m.class_counts for s, m in manifest.splits.items()} == {
            "train": {"no_residue": 6, "residue": 6}, "internal": {"no_residue": 2, "residue": 2},
            "external": {"no_residue": 2, "residue": 2}}
        table = _table(out)
        train = table[table["split"] == "train"]
        # 6 train studies per class over 5 folds: every fold holds 1 or 2 of each class.
        per_fold = train.groupby(["fold", "label"]).size()
        assert len(per_fold) == TOY.folds * 2 and set(per_fold) <= {1, 2}
        pseud = Pseudonymizer((tmp_path / "k").read_bytes())
        labels = dict(zip(table["case_id"], table["label"]))
        assert {pseud.case(s.uids[2]): s.label for s in archive.studies} == labels
        assert verify_dataset(out).ok
        # The four-pattern labels of the same archive are refused for the toy task.
        four = write_archive(tmp_path / "b", rows[:4], labels_name="four.csv")
        with pytest.raises(DatasetError, match=r"line 3: label 'II' is not a class; expected one "
                                               r"of no_residue \(R0\), residue \(R1\)"):
            prepare_dicom(dicom_dir=four.root, labels=four.labels_csv, name="toy", version="1.0.1",
                          key_file=tmp_path / "k", home=tmp_path / "h", workers=1, task=TOY.name)
    finally:
        unregister_task(TOY.name)


# --------------------------------------------------------------------------- errors
def _small_archive(tmp_path, n=4, fill=False):
    """``n`` studies at centre 1 (with ``fill``, filler_rows() after them)."""
    rng = np.random.default_rng(9)
    rows = [{"image": _image(rng, 8), "label": i % 4, "patient": f"p{i}"} for i in range(n)]
    return write_archive(tmp_path / "a", rows + (filler_rows() if fill else []))


def test_labels_naming_missing_files_or_unknown_uids_are_errors(tmp_path):
    archive = _small_archive(tmp_path)
    with open(archive.labels_csv, "a", newline="") as fh:
        csv.writer(fh).writerow(["center1/99999/00.dcm", "I", "center1"])
    with pytest.raises(DatasetError, match=r"line 6: center1/99999/00.dcm"):
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="x", version="1.0.0",
                      key_file=tmp_path / "k", home=tmp_path / "h")
    (tmp_path / "uid.csv").write_text("sop_instance_uid,label,center\n1.2.3.4.999,I,center1\n")
    with pytest.raises(DatasetError, match=r"line 2: no readable file in the archive has this"):
        prepare_dicom(dicom_dir=archive.root, labels=tmp_path / "uid.csv", name="x", version="1.0.0",
                      key_file=tmp_path / "k", home=tmp_path / "h", workers=1)
    assert not (tmp_path / "h" / "x").exists()


def test_labels_by_sop_instance_uid(tmp_path):
    archive = _small_archive(tmp_path, fill=True)
    with open(tmp_path / "uid.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["sop_instance_uid", "label", "center"])
        for s in archive.studies[:3] + archive.studies[4:]:  # the fourth study unlabelled
            w.writerow([s.uids[2], s.label, s.center])
    out = prepare_dicom(dicom_dir=archive.root, labels=tmp_path / "uid.csv", name="x",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                        external_centers=[FILLER_CENTERS[1]])
    assert len(_own(_table(out))) == 3
    assert [r["reason"] for r in _rejected(out, tmp_path / "k")] == ["no label row"]


def test_key_must_live_outside_archive_and_existing_version_needs_force(tmp_path):
    archive = _small_archive(tmp_path)
    with pytest.raises(DatasetError, match="inside the archive"):
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="x", version="1.0.0",
                      key_file=archive.root / "k.key", home=tmp_path / "h")
    assert not (archive.root / "k.key").exists()
    (tmp_path / "h" / "x" / "1.0.0").mkdir(parents=True)
    with pytest.raises(DatasetError, match="already exists; pass --force"):
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="x", version="1.0.0",
                      key_file=tmp_path / "k", home=tmp_path / "h")
    with pytest.raises(DatasetError, match="not in the labels CSV"):
        prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="x", version="1.0.1",
                      key_file=tmp_path / "k", home=tmp_path / "h", external_centers=["center9"])


# --------------------------------------------------------------------------- pydicom's own files
def _pydicom_test_files() -> tuple[Path, list[Path]]:
    """The test files shipped inside the installed pydicom (no download)."""
    from pydicom.data.data_manager import DATA_ROOT

    root = Path(DATA_ROOT) / "test_files"
    return root, sorted(p for p in root.rglob("*") if p.is_file() and p.suffix != ".py")


def test_every_local_pydicom_test_file_is_ingested_or_rejected(tmp_path):
    root, files = _pydicom_test_files()
    if len(files) < 50:
        pytest.skip("pydicom's test files are not installed")
    shutil.copytree(root, tmp_path / "a", ignore=shutil.ignore_patterns("*.py", "__pycache__"))
    rels = list_archive(tmp_path / "a")
    assert len(rels) == len(files)
    # pydicom's files alone make no study, which is refused (tests/test_sizes.py): add some
    filler = _filler_into(tmp_path / "a")
    with open(tmp_path / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["path", "label", "center"])
        w.writerows([rel, "III", "c1"] for rel in rels)
        w.writerows([f"filler/{s.path}", s.label, s.center] for s in filler.studies)
    out = prepare_dicom(dicom_dir=tmp_path / "a", labels=tmp_path / "labels.csv", name="pydicom-files",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=2,
                        external_centers=[FILLER_CENTERS[1]])
    rejected = _rejected(out, tmp_path / "k")
    ingested = sum(len(read_split(out, s)) for s in ("train", "internal", "external"))
    assert ingested + len(rejected) == len(files) + FILL
    assert all(r["reason"].strip() for r in rejected)
    reasons = {r["file"]: r["reason"] for r in rejected}
    pseud = Pseudonymizer((tmp_path / "k").read_bytes())
    for file, why in [("CT_small.dcm", "SOP class is CT Image Storage"),
                      ("JPEG2000.dcm", "matrix 1024x256 is not square"),
                      ("rtplan.dump", "not a DICOM file"),
                      ("waveform_ecg.dcm", "SOP class is 12-lead ECG Waveform Storage"),
                      ("dicomdirtests/DICOMDIR", "DICOMDIR")]:
        if file in rels:
            assert reasons[file].startswith(why), (file, reasons[file])
    # pydicom's DICOMDIR example stores files under the patient ID 77654033: the dataset names
    # every rejected file by its pseudonym only.
    published = list(csv.DictReader(io.StringIO((out / "rejected.csv").read_text())))
    assert sorted(r["file"] for r in published) == sorted(pseud.path(f) for f in reasons)
    assert "77654033" not in (out / "rejected.csv").read_text()
    assert verify_dataset(out).ok


def test_pydicom_images_rebadged_as_nm_exercise_every_decoder(tmp_path):
    """pydicom's MR_small in several transfer syntaxes, re-labelled as NM secondary captures."""
    import pydicom
    from pydicom.uid import generate_uid

    root, _ = _pydicom_test_files()
    names = ["MR_small.dcm", "MR_small_RLE.dcm", "MR_small_implicit.dcm", "MR_small_bigendian.dcm",
             "MR_small_jp2klossless.dcm", "MR_small_jpeg_ls_lossless.dcm", "MR_truncated.dcm",
             "CT_small.dcm"]
    names = [n for n in names if (root / n).is_file()]
    if len(names) < 6:
        pytest.skip("pydicom's test files are not installed")
    (tmp_path / "a").mkdir()
    for i, name in enumerate(names):
        ds = pydicom.dcmread(root / name)
        ds.SOPClassUID = ds.file_meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.7"
        ds.SOPInstanceUID = ds.file_meta.MediaStorageSOPInstanceUID = generate_uid()
        ds.Modality, ds.PatientID = "NM", f"ID{i:04d}"
        ds.save_as(tmp_path / "a" / name)
    filler = _filler_into(tmp_path / "a")
    (tmp_path / "labels.csv").write_text("path,label,center\n" + "".join(f"{n},I,c1\n" for n in names)
                                         + "".join(f"filler/{s.path},{s.label},{s.center}\n"
                                                   for s in filler.studies))
    out = prepare_dicom(dicom_dir=tmp_path / "a", labels=tmp_path / "labels.csv", name="rebadged",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                        external_centers=[FILLER_CENTERS[1]])
    reasons = {r["file"]: r["reason"] for r in _rejected(out, tmp_path / "k")}
    table = _own(_table(out))
    decodable = [n for n in names if n.startswith("MR_small") and "jpeg_ls" not in n]
    # The same pixels through every decoder: one is kept, the others are duplicates of it.
    assert len(table) == 1
    assert sorted(n for n in decodable if n not in reasons) == ["MR_small.dcm"]
    for n in decodable[1:]:
        assert reasons[n].startswith("duplicate image"), (n, reasons[n])
    reference = pydicom.dcmread(root / "MR_small.dcm").pixel_array
    np.testing.assert_array_equal(np.asarray(Image.open(io.BytesIO(table["image"][0]))), reference)
    from pydicom.pixels import get_decoder
    if "MR_small_jpeg_ls_lossless.dcm" in names and not get_decoder(
            "1.2.840.10008.1.2.4.80").is_available:
        assert reasons["MR_small_jpeg_ls_lossless.dcm"].startswith(
            "transfer syntax JPEG-LS Lossless Image Compression: no installed handler")
    if "MR_truncated.dcm" in names:
        assert "does not decode" in reasons["MR_truncated.dcm"]
    if "CT_small.dcm" in names:  # Rescale Intercept -1024 gives negative values
        assert "outside 0-65535 after rescale" in reasons["CT_small.dcm"]


# --------------------------------------------------------------------------- splitting
def test_stratified_group_bins_hits_the_targets_by_class():
    labels = np.repeat([0, 1, 2, 3], [100, 50, 10, 40])
    groups = [f"g{i}" for i in range(len(labels))]
    bins = stratified_group_bins(labels, groups, [0.8, 0.2], seed=0)
    # One row per group: exactly 20% of each class (100 -> 20, 50 -> 10, 10 -> 2, 40 -> 8).
    assert [int(((bins == 1) & (labels == k)).sum()) for k in range(4)] == [20, 10, 2, 8]
    folds = stratified_group_bins(labels, groups, [1.0] * 5, seed=0)
    assert [int(((folds == f) & (labels == 0)).sum()) for f in range(5)] == [20] * 5


def test_stratified_group_bins_takes_the_tasks_class_count():
    labels, groups = [0, 1, 1, 0], ["a", "b", "c", "d"]
    # Classes absent from the labels change nothing.
    assert np.array_equal(stratified_group_bins(labels, groups, [0.5, 0.5], seed=3, num_classes=4),
                          stratified_group_bins(labels, groups, [0.5, 0.5], seed=3))
    with pytest.raises(ValueError, match="class indices 0-1"):
        stratified_group_bins([0, 2], ["a", "b"], [0.5, 0.5], seed=0, num_classes=2)


def test_stratified_group_bins_never_splits_a_group_and_depends_on_seed():
    rng = np.random.default_rng(0)
    groups = [f"g{g}" for g in rng.integers(0, 60, 300)]
    labels = rng.integers(0, 4, 300)
    a = stratified_group_bins(labels, groups, [0.8, 0.2], seed=1)
    for g in set(groups):
        assert len({a[i] for i in range(300) if groups[i] == g}) == 1
    assert 0.15 < a.mean() < 0.25
    assert np.array_equal(a, stratified_group_bins(labels, groups, [0.8, 0.2], seed=1))
    assert not np.array_equal(a, stratified_group_bins(labels, groups, [0.8, 0.2], seed=2))


# --------------------------------------------------------------------------- reading and CLI
def test_read_archive_parallel_equals_serial(built):
    root = built["archive"].root
    files = list_archive(root)[:16]
    serial = read_archive(root, files, workers=1, progress=False)
    parallel = read_archive(root, files, workers=2, progress=False)
    assert [r["file"] for r in parallel] == files
    assert [r.get("total_counts") for r in serial] == [r.get("total_counts") for r in parallel]
    for a, b in zip(serial, parallel):
        assert (a.get("image") is None and b.get("image") is None) or np.array_equal(a["image"], b["image"])
    assert [r["reason"] for r in serial] == [r["reason"] for r in parallel]


def test_cli_prepare_dicom_then_verify(tmp_path, capsys):
    from thyroid_bench.cli import main

    archive = _small_archive(tmp_path, n=12, fill=True)
    (archive.root / "notes.txt").write_text("not an image")
    (archive.root / "gone.dcm").symlink_to(archive.root / "missing.dcm")  # a broken link
    (archive.root / "linked").symlink_to(archive.root / "center1")        # a link to a folder
    home = tmp_path / "home"
    rc = main(["prepare", "--source", "dicom", "--dicom-dir", str(archive.root), "--labels",
               str(archive.labels_csv), "--name", "cli-test", "--version", "1.0.0", "--key-file",
               str(tmp_path / "keys" / "k.key"), "--home", str(home),
               "--external-center", FILLER_CENTERS[1]])
    out = capsys.readouterr().out
    assert rc == 0
    assert f"{15 + FILL} files seen = {12 + FILL} ingested + 3 rejected" in out
    assert "rejected, not a regular file: 1" in out and "rejected, a link to a folder: 1" in out
    assert "created a new pseudonym key" in out
    report = tmp_path / "keys" / "rejected-cli-test-1.0.0.csv"  # beside the key, real paths
    assert f"organiser's report, real paths (private: keep it with the key): {report}" in out
    assert "notes.txt" in report.read_text() and "notes.txt" not in (
        home / "cli-test" / "1.0.0" / "rejected.csv").read_text()
    assert main(["verify", "cli-test", "--home", str(home)]) == 0
    assert "result    OK" in capsys.readouterr().out
    manifest = json.loads((home / "cli-test" / "1.0.0" / "manifest.json").read_text())
    assert manifest["provenance"]["pseudonymisation"]["method"] == "HMAC-SHA-256"
    card = (home / "cli-test" / "1.0.0" / "README.md").read_text()
    assert "How identifiers were replaced" in card and "HMAC-SHA-256" in card
    # Missing required options are a user error, not a traceback.
    assert main(["prepare", "--source", "dicom", "--dicom-dir", str(archive.root)]) == 2

