"""What a DICOM dataset publishes: no text derived from the archive's file or folder names or
from header values (planted spellings a header check cannot see), the organiser's report with
the real paths beside the key, and ages above 89 stored as 90."""

from __future__ import annotations

import csv
import io
import os
import stat

import numpy as np
import pytest

from conftest import output_haystacks
from thyroid_bench.data.dicom.deid import Pseudonymizer
from thyroid_bench.data.dicom.ingest import list_archive, prepare_dicom
from thyroid_bench.data.dicom.report import AGE_CAP, organiser_report_path
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.shards import read_split
from thyroid_bench.testing.dicom_writer import FILLER_CENTERS, filler_rows, write_archive

pytestmark = pytest.mark.filterwarnings("ignore:The value length")

BIRTH = "19350615"
BIRTH_SPELLED = "1935-06-15"      # the same date as a folder name: no header holds this spelling
PATIENT_ID = "AB-4711-9"
PATIENT_ID_FOLDER = "AB47119"     # the ID without its dashes
PHOTOMETRIC = "ZQXPLANT7"         # a header value a rejection reason used to echo
NAME = "XYLOPHANT^QUIRINA"
# 58 characters, then the name's family part: a cut at 64 characters leaves "XYLOPH".
FILLER = "Gammacorp Nuclear Imaging Systems International Division "
LONG_MANUFACTURER = FILLER + "XYLOPHANT"
ODD_NAME = b"\xff\xfe-export.dcm"  # a file name that is not UTF-8


def _rows() -> list[dict]:
    rng = np.random.default_rng(21)
    image = lambda: rng.poisson(7.0, (16, 16)).astype(np.uint16)  # noqa: E731
    rows = [{"image": image(), "label": i % 4, "patient": f"p{i}", "age": 40 + i,
             "overrides": {"Manufacturer": LONG_MANUFACTURER}} for i in range(6)]
    rows[0]["overrides"]["PatientName"] = NAME     # the name the manufacturer text ends with
    rows[1]["age"] = 95                             # stored as 90
    rows += [
        {"image": image(), "label": 0, "patient": "born", "path": f"{BIRTH_SPELLED}/scan.dcm",
         "overrides": {"PatientBirthDate": BIRTH, "Modality": "CT"}},
        {"image": image(), "label": 1, "patient": "dashed", "path": f"{PATIENT_ID_FOLDER}/img.dcm",
         "overrides": {"PatientID": PATIENT_ID}, "labelled": False},
        {"image": image(), "label": 2, "patient": "colour", "path": "odd/colourful.dcm",
         "overrides": {"PhotometricInterpretation": PHOTOMETRIC}},
    ]
    return rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("published")
    archive = write_archive(tmp / "archive", _rows() + filler_rows(), canary_technical=False)
    with open(os.path.join(os.fsencode(archive.root), ODD_NAME), "wb") as fh:
        fh.write(b"not a DICOM file")
    key = tmp / "keys" / "pseudonym.key"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="published",
                         version="1.0.0", key_file=key, home=tmp / "home", workers=1,
                         external_centers=[FILLER_CENTERS[1]])
    return {"tmp": tmp, "archive": archive, "key": key, "path": path}




def test_nothing_from_paths_or_header_text_is_published(built):
    hay = [h.lower() for h in output_haystacks(built["path"])]
    files = list_archive(built["archive"].root)
    components = {c.removesuffix(".dcm") for f in files for c in f.split("/")} - {"center1",
                                                                                 *FILLER_CENTERS}
    planted = {BIRTH, BIRTH_SPELLED, PATIENT_ID, PATIENT_ID_FOLDER, PHOTOMETRIC, "XYLOPH",
               "QUIRINA", "scan", "colourful", "export"}
    planted |= {c for c in components if len(c) >= 4 and not c.isdigit()}
    assert {BIRTH_SPELLED, PATIENT_ID_FOLDER} <= components
    leaks = sorted(p for p in planted
                   if any(p.lower().encode("utf-8", "surrogateescape") in h for h in hay))
    assert leaks == []
    assert any(b"center1" in h for h in hay)  # the search finds what is there


def test_rejected_files_are_published_by_pseudonym_with_fixed_reasons(built):
    pseud = Pseudonymizer(built["key"].read_bytes())
    published = list(csv.DictReader(io.StringIO((built["path"] / "rejected.csv").read_text())))
    report = organiser_report_path(built["key"], "published", "1.0.0")
    private = list(csv.DictReader(io.StringIO(report.read_text(encoding="utf-8"))))
    real = {r["file"]: r for r in private}
    expected = {f"{BIRTH_SPELLED}/scan.dcm": "modality CT, not NM",
                f"{PATIENT_ID_FOLDER}/img.dcm": "no label row",
                "odd/colourful.dcm": "photometric interpretation unrecognised: counts need "
                                       "MONOCHROME2 with one sample per pixel",
                "\\xff\\xfe-export.dcm": "not a DICOM file"}
    assert {f: real[f]["reason"][:len(why)] for f, why in expected.items()} == expected
    assert len(published) == len(private) == 4
    odd = os.fsdecode(ODD_NAME)
    pseudonyms = {f: pseud.path(odd if f.startswith("\\xff") else f) for f in expected}
    assert sorted(r["file"] for r in published) == sorted(pseudonyms.values())
    assert all(real[f]["file_pseudonym"] == p for f, p in pseudonyms.items())
    assert {r["file"]: r["reason"] for r in published} == \
        {pseudonyms[f]: real[f]["reason"] for f in expected}
    assert real["odd/colourful.dcm"]["labels_line"] != "" and \
        real[f"{PATIENT_ID_FOLDER}/img.dcm"]["labels_line"] == ""


def test_organiser_report_lives_beside_the_key_outside_the_dataset(built, capsys):
    report = organiser_report_path(built["key"], "published", "1.0.0")
    assert report.parent == built["key"].parent and report.is_file()
    assert not report.resolve().is_relative_to(built["path"].parent.resolve())
    assert stat.S_IMODE(report.stat().st_mode) & 0o077 == 0  # the owner's only, like the key
    text = report.read_text(encoding="utf-8")
    assert f"{BIRTH_SPELLED}/scan.dcm" in text and f"{PATIENT_ID_FOLDER}/img.dcm" in text


def test_free_text_is_checked_before_it_is_shortened(built):
    tech = read_manifest(built["path"]).provenance["technical"]
    # Six patients share the manufacturer text, but it ends with a patient's name: withheld.
    assert tech["manufacturers"] == {"[rare values withheld]": 6,
                                     "ACME Medical Systems": len(filler_rows())}


def test_ages_above_89_are_stored_as_90_unless_kept(built):
    ages = sorted(int(a) for s in ("train", "internal", "external")
                  for a, c in zip(read_split(built["path"], s)["age"], read_split(built["path"], s)["center"])
                  if c not in FILLER_CENTERS and a == a)
    assert ages == [40, 42, 43, 44, 45, AGE_CAP]
    prov = read_manifest(built["path"]).provenance["pseudonymisation"]
    assert prov["ages_over_89"] == "stored as 90 (HIPAA Safe Harbor)"
    card = (built["path"] / "README.md").read_text()
    assert "ages above 89 are stored as 90" in card
    kept = prepare_dicom(dicom_dir=built["archive"].root, labels=built["archive"].labels_csv,
                         name="published", version="1.0.1", key_file=built["key"],
                         home=built["tmp"] / "home", workers=1, keep_ages_over_89=True,
                         external_centers=[FILLER_CENTERS[1]])
    ages = sorted(int(a) for s in ("train", "internal", "external")
                  for a in read_split(kept, s)["age"].dropna())
    assert ages[-1] == 95
    assert "kept as recorded" in (kept / "README.md").read_text()
