"""No person and no study in two splits (issue 18, item 1): patient identity across centres,
studies kept whole, the explicit split column, ``verify``'s re-check from the stored columns, and
near-duplicate images across splits. Archives come from the project's DICOM writer."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from conftest import make_rows
from thyroid_bench.data import format as fmt
from thyroid_bench.data.dicom.identity import STUDY_PATIENTS_DIFFER, isolation_groups
from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.format import dataset_info, read_split
from thyroid_bench.data.isolation import NEAR_DUPLICATE_CORRELATION, near_duplicates, thumbnails
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import SPLITS, get_task
from thyroid_bench.testing.dicom_writer import make_identity, write_archive

SEED = 5


def _img(rng, n=32, level=6.0):
    return rng.poisson(level, (n, n)).astype(np.uint16)


def _archive_rows():
    """12 centre-1 patients, 4 external (centre 2) ones, and three planted cases:
    ``twin``: a centre-2 file with the Issuer of Patient ID and Patient ID of centre-1 patient
    c1-0; ``split-study``: two centre-1 files of one Study Instance UID naming two patients;
    ``resampled``: a centre-2 file whose image is centre-1 patient c1-1's binned 2x2."""
    rng = np.random.default_rng(SEED)
    rows = [{"image": _img(rng), "label": p % 4, "center": "center1", "patient": f"c1-{p}"}
            for p in range(12)]
    rows += [{"image": _img(rng, 16), "label": p % 4, "center": "center2", "patient": f"c2-{p}"}
             for p in range(4)]
    twin = make_identity(SEED, "c1-0", "center1")
    rows.append({"image": _img(rng, 16), "label": 1, "center": "center2", "patient": "twin",
                 "overrides": {"PatientID": twin.patient_id, "IssuerOfPatientID": twin.issuer}})
    rows += [{"image": _img(rng), "label": 2, "center": "center1", "patient": f"mixed-{k}",
              "study": "split-study"} for k in range(2)]
    binned = rows[1]["image"].reshape(16, 2, 16, 2).sum(axis=(1, 3), dtype=np.uint16)
    rows.append({"image": binned, "label": 1, "center": "center2", "patient": "resampled"})
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("isolation")
    rows = _archive_rows()
    archive = write_archive(tmp / "archive", rows, seed=SEED)
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="iso",
                         version="1.0.0", key_file=tmp / "secret" / "key", home=tmp / "home",
                         external_centers=["center2"], workers=1, internal_fraction=0.5)
    table = _table(path)
    by_case = {case: i for i, case in enumerate(table["case_id"])}
    from thyroid_bench.data.dicom.deid import Pseudonymizer

    pseud = Pseudonymizer((tmp / "secret" / "key").read_bytes())
    table["file"] = None
    for s in archive.studies:
        case = pseud.case(s.uids[2])
        if case in by_case:
            table.loc[by_case[case], "file"] = s.patient
    return {"tmp": tmp, "archive": archive, "path": path, "table": table}


def _table(path):
    import pandas as pd

    frames = []
    for split in SPLITS:
        t = read_split(path, split)
        t["split"] = split
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def test_same_issuer_and_patient_id_at_two_centres_is_one_patient_in_one_split(built):
    table = built["table"]
    twin = table[table["file"].isin(["c1-0", "twin"])]
    assert len(twin) == 2
    assert twin["patient_id"].nunique() == 1          # one person, whichever centre filed it
    assert set(twin["split"]) == {"external"}         # never trained on: external whole
    assert set(twin["center"]) == {"center1", "center2"}
    assert (table.groupby("patient_id")["split"].nunique() == 1).all()
    assert (table.groupby("study_id")["split"].nunique() == 1).all()
    # Other centre-1 patients stay out of external.
    others = table[(table["center"] == "center1") & (table["file"] != "c1-0")]
    assert "external" not in set(others["split"])


def test_patient_without_issuer_is_keyed_by_centre():
    from thyroid_bench.data.dicom.deid import Pseudonymizer

    p = Pseudonymizer(b"k" * 32)
    assert p.patient("center1", "ISS", "1001") == p.patient("center2", "ISS", "1001")
    assert p.patient("center1", "", "1001") != p.patient("center2", "", "1001")
    assert p.patient("ISS", "", "1001") != p.patient("x", "ISS", "1001")  # centre vs issuer
    assert p.study("1.2.3", "9.9") == p.study("1.2.3", "8.8") != p.study(None, "1.2.3")


def test_a_study_whose_files_name_two_patients_is_rejected(built):
    table = built["table"]
    assert not table["file"].isin(["mixed-0", "mixed-1"]).any()
    rejected = list(csv.DictReader((built["path"] / "rejected.csv").open()))
    mixed = [r for r in rejected if r["reason"] == STUDY_PATIENTS_DIFFER]
    assert len(mixed) == 2
    assert {int(r["labels_line"]) for r in mixed} == {19, 20}


def test_study_id_is_stored_listed_and_hashed(built):
    manifest = read_manifest(built["path"])
    assert manifest.optional_columns == ["study_id"]
    assert list(built["table"].columns[:-2]) == [*get_task("four-pattern").columns, "study_id"]
    assert built["table"]["study_id"].str.fullmatch(r"s-[0-9a-f]{24}").all()
    card = (built["path"] / "README.md").read_text()
    assert "- name: study_id\n    dtype: string" in card
    assert "`study_id` = `s-` + HMAC(key, Study Instance UID)" in card
    import datasets

    ds = datasets.load_dataset(str(built["path"]))
    assert ds["train"].features["study_id"].dtype == "string"


def test_dataset_without_study_id_keeps_its_columns_manifest_and_fingerprint(tmp_path):
    splits = {"train": make_rows("train", 10), "internal": make_rows("internal", 4, start=50),
              "external": make_rows("external", 4, start=90)}
    plain = fmt.write_dataset("toy", "1.0.0", splits, home=tmp_path, card="# toy\n")
    assert "optional_columns" not in json.loads((plain / "manifest.json").read_text())
    assert list(read_split(plain, "train").columns) == list(get_task("four-pattern").columns)
    with_study = {s: [{**r, "study_id": f"s-{r['case_id']}"} for r in rows]
                  for s, rows in splits.items()}
    tagged = fmt.write_dataset("toy", "2.0.0", with_study, home=tmp_path, card="# toy\n")
    assert read_manifest(tagged).fingerprint != read_manifest(plain).fingerprint
    assert verify_dataset(tagged).ok
    half = dict(with_study, train=splits["train"])
    with pytest.raises(DatasetError, match="optional column 'study_id': give it for every row"):
        fmt.write_dataset("toy", "3.0.0", half, home=tmp_path, card="# toy\n")


def _split_csv(built, tmp_path, split_of):
    lines = list(csv.reader(built["archive"].labels_csv.open()))
    out = tmp_path / "split.csv"
    with open(out, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(lines[0] + ["split"])
        for number, line in enumerate(lines[1:], start=2):
            w.writerow(line + [split_of(number, line)])
    return out


def _default_split(number, line):
    return "external" if line[2] == "center2" else ("train" if number % 2 else "internal")


def test_split_column_putting_one_patient_in_two_splits_names_both_lines(built, tmp_path):
    # Line 2 is patient c1-0 (train), line 18 its twin at centre 2 (external).
    csv_path = _split_csv(built, tmp_path, lambda n, line: "train" if n == 2 else _default_split(n, line))
    with pytest.raises(DatasetError, match=r"lines 2 and 18: the same patient .* 'train' and 'external'"):
        prepare_dicom(dicom_dir=built["archive"].root, labels=csv_path, name="bad", version="1.0.0",
                      key_file=built["tmp"] / "secret" / "key", home=tmp_path / "home", workers=1,
                      external_centers=["center2"])


def test_split_column_putting_one_study_in_two_splits_names_both_lines(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"image": _img(rng), "label": k % 4, "center": "center1", "patient": f"p{k}"}
            for k in range(6)]
    rows += [{"image": _img(rng), "label": 0, "center": "center1", "patient": "p0", "study": "S"}
             for _ in range(2)]
    rows.append({"image": _img(rng, 16), "label": 0, "center": "center2", "patient": "e"})
    archive = write_archive(tmp_path / "archive", rows, seed=3)
    built = {"archive": archive}
    csv_path = _split_csv(built, tmp_path, lambda n, line: (
        "external" if line[2] == "center2" else {8: "train", 9: "internal"}.get(n, "train")))
    with pytest.raises(DatasetError, match=r"lines 8 and 9: the same study \(Study Instance UID\)"):
        prepare_dicom(dicom_dir=archive.root, labels=csv_path, name="bad", version="1.0.0",
                      key_file=tmp_path / "key", home=tmp_path / "home", workers=1)


def _forged(tmp_path, monkeypatch, mutate):
    """A dataset whose fingerprints are all valid but whose ids ``mutate`` made cross splits
    (the writer's own refusal switched off, as a hand-made or older dataset would have it)."""
    splits = {"train": make_rows("train", 10), "internal": make_rows("internal", 4, start=50),
              "external": make_rows("external", 4, start=90)}
    splits = {s: [{**r, "study_id": f"s-{r['case_id']}"} for r in rows] for s, rows in splits.items()}
    mutate(splits)
    monkeypatch.setattr(fmt, "check_no_leakage", lambda tables, where: None)
    return fmt.write_dataset("forged", "1.0.0", splits, home=tmp_path, card="# forged\n")


def test_verify_reports_a_planted_cross_centre_patient(tmp_path, monkeypatch):
    def plant(splits):  # centre-1 patient Ptr0003 filed again under the external centre
        splits["external"][1]["patient_id"] = splits["train"][3]["patient_id"]
    report = verify_dataset(_forged(tmp_path, monkeypatch, plant))
    assert report.problems == ["1 patient in two splits: patient_id 'Ptr0003' is in both train "
                               "and external; splits must not share patients"]


def test_verify_reports_a_split_study(tmp_path, monkeypatch):
    def plant(splits):
        splits["internal"][0]["study_id"] = splits["train"][0]["study_id"]
        splits["external"][0]["study_id"] = splits["train"][0]["study_id"]
    report = verify_dataset(_forged(tmp_path, monkeypatch, plant))
    assert report.problems == ["1 study in two splits: study_id 's-train-0000' is in train, "
                               "internal and external; splits must not share studies"]


def test_isolation_groups_join_patients_through_shared_studies():
    studies = [{"patient_id": "p-b", "study_id": "s-1"}, {"patient_id": "p-a", "study_id": "s-2"},
               {"patient_id": "p-c", "study_id": "s-1"}, {"patient_id": "p-d", "study_id": "s-3"}]
    assert isolation_groups(studies) == ["p-b", "p-a", "p-b", "p-d"]


def test_near_duplicate_resampled_copy_across_splits_is_a_warning_listing_the_pair(built):
    report = verify_dataset(built["path"])
    assert report.ok, report.problems
    table = built["table"]
    src = table[table["file"] == "c1-1"].iloc[0]
    copy = table[table["file"] == "resampled"].iloc[0]
    assert src["split"] != copy["split"] == "external"
    assert len(report.warnings) == 1
    assert report.warnings[0].startswith("1 near-duplicate image pair(s) across splits")
    assert f"{src['split']} {src['case_id']} ~ external {copy['case_id']} (r = 1.0000)" \
        in report.warnings[0]
    assert "WARNING   1 near-duplicate" in report.render()
    assert "WARNING 1 near-duplicate" in dataset_info(built["path"])


def test_near_duplicate_measure_rescaled_and_resampled_but_not_new_noise():
    from PIL import Image

    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:64, :64]
    mean = 40 * np.exp(-((yy - 30) ** 2 + (xx - 24) ** 2) / 60) + 30 * np.exp(
        -((yy - 30) ** 2 + (xx - 40) ** 2) / 60) + 1
    scan = rng.poisson(mean).astype(np.uint16)
    rescaled = scan * 3
    resampled = np.asarray(Image.fromarray(scan.astype(np.float32)).resize((48, 48), Image.BILINEAR))
    other_patient = rng.poisson(np.roll(mean, 4, axis=1)).astype(np.uint16)
    thumbs = {"train": thumbnails([scan]), "internal": thumbnails([rescaled, other_patient]),
              "external": thumbnails([resampled])}
    ids = {"train": ["a"], "internal": ["b", "c"], "external": ["d"]}
    pairs = {(p.case_a, p.case_b) for p in near_duplicates(thumbs, ids)}
    assert pairs == {("a", "b"), ("a", "d"), ("b", "d")}
    assert NEAR_DUPLICATE_CORRELATION == 0.999


def test_clean_dataset_has_no_near_duplicate_warning(tmp_path):
    splits = {"train": make_rows("train", 10), "internal": make_rows("internal", 4, start=50),
              "external": make_rows("external", 4, start=90)}
    report = verify_dataset(fmt.write_dataset("toy", "1.0.0", splits, home=tmp_path, card="# t\n"))
    assert report.ok and report.warnings == []
