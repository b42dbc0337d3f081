"""The test-data writer: genuine NM Image Storage files with planted identifiers and canaries."""

from __future__ import annotations

import csv

import numpy as np
import pydicom
import pytest

from thyroid_bench.testing.dicom_writer import (
    CANARY_PREFIX,
    NM_IMAGE_STORAGE,
    canary,
    make_identity,
    write_archive,
)
from thyroid_bench.tasks import MainScore, Reference, Target, Task, TaskClass

# Coded or enumerated values that must hold their defined terms for the file to be an NM image.
STRUCTURAL = {"SpecificCharacterSet", "Modality", "ImageType", "PatientSex", "BurnedInAnnotation",
              "PhotometricInterpretation", "CollimatorType", "CodeValue", "CodeMeaning",
              "CodingSchemeDesignator", "PatientAge"}
IDENTITY = {"PatientName", "PatientID", "InstitutionName", "IssuerOfPatientID"}
TEXT_VRS = {"AE", "CS", "LO", "LT", "PN", "SH", "ST", "UC", "UT"}


def _text_elements(ds):
    for elem in ds.iterall():
        if elem.VR in TEXT_VRS:
            yield elem


def test_files_are_nm_image_storage_with_the_pixels(tmp_path):
    rng = np.random.default_rng(0)
    image = rng.poisson(7, (24, 24)).astype(np.uint16)
    archive = write_archive(tmp_path / "a", [{"image": image, "label": 2, "center": "c9",
                                              "patient": "x", "sex": "F", "age": 51}], seed=4)
    ds = pydicom.dcmread(archive.root / archive.studies[0].path)
    assert ds.SOPClassUID == ds.file_meta.MediaStorageSOPClassUID == NM_IMAGE_STORAGE
    assert ds.Modality == "NM" and ds.ImageType[2] == "STATIC"
    np.testing.assert_array_equal(ds.pixel_array, image)
    assert int(ds.CountsAccumulated) == int(image.sum())
    identity = make_identity(4, "x", "c9")
    assert str(ds.PatientName) == identity.patient_name and ds.PatientID == identity.patient_id
    assert ds.PatientAge == "051Y" and ds.PatientSex == "F"
    assert ds.InstitutionName == identity.institution
    assert ds.SOPInstanceUID == archive.studies[0].uids[2]
    with open(archive.labels_csv) as fh:
        assert list(csv.reader(fh)) == [["path", "label", "center"],
                                        [archive.studies[0].path, "focal_increased", "c9"]]


def test_every_other_text_attribute_holds_the_files_canary(tmp_path):
    rng = np.random.default_rng(1)
    rows = [{"image": rng.poisson(3, (8, 8)).astype(np.uint16), "label": 0, "patient": f"p{i}"}
            for i in range(2)]
    archive = write_archive(tmp_path / "a", rows, seed=2)
    for k, study in enumerate(archive.studies):
        ds = pydicom.dcmread(archive.root / study.path)
        assert study.canary == canary(2 * 100_000 + k) and study.canary.startswith(CANARY_PREFIX)
        checked = 0
        for elem in _text_elements(ds):
            if elem.keyword in STRUCTURAL or elem.keyword in IDENTITY:
                continue
            assert study.canary in str(elem.value) or study.identity.patient_name in str(elem.value), elem
            checked += 1
        private = [e for e in ds.iterall() if e.tag.is_private]
        assert len(private) == 7 and all(study.canary in str(e.value) or
                                         study.identity.patient_name in str(e.value) for e in private)
        assert checked >= 40
        assert study.canary in ds.file_meta.ImplementationVersionName
        # The other file's canary differs.
        assert archive.studies[1 - k].canary not in str(ds)


def test_multi_frame_views_and_realistic_technical_values(tmp_path):
    rng = np.random.default_rng(2)
    post, ant = (rng.poisson(v, (8, 8)).astype(np.uint16) for v in (2, 9))
    archive = write_archive(tmp_path / "a", [{"image": post, "frames": [(post, "posterior"), (ant, "anterior")],
                                              "label": 1}], canary_technical=False)
    ds = pydicom.dcmread(archive.root / archive.studies[0].path)
    assert ds.NumberOfFrames == 2 and list(ds.DetectorVector) == [1, 2]
    assert [d.ViewCodeSequence[0].CodeValue for d in ds.DetectorInformationSequence] == \
        ["399001007", "399321004"]
    np.testing.assert_array_equal(ds.pixel_array[1], ant)
    assert ds.Manufacturer == "ACME Medical Systems"
    assert ds.DetectorInformationSequence[0].CollimatorGridName == "LEHR"


def test_planted_covers_identifiers_and_birth_date_gives_the_age(tmp_path):
    rng = np.random.default_rng(3)
    rows = [{"image": rng.poisson(3, (8, 8)).astype(np.uint16), "label": 0, "patient": "p",
             "age": 64} for _ in range(2)]
    archive = write_archive(tmp_path / "a", rows)
    s = archive.studies[1]  # odd rows carry no Patient's Age: the age comes from the dates
    ds = pydicom.dcmread(archive.root / s.path)
    assert "PatientAge" not in ds
    from thyroid_bench.data.dicom.deid import age_in_years

    assert age_in_years(None, ds.PatientBirthDate, ds.StudyDate) == 64
    planted = archive.planted()
    for value in (s.canary, s.identity.patient_id, s.identity.institution, ds.StudyDate,
                  ds.PatientBirthDate, ds.SOPInstanceUID, ds.StudyInstanceUID,
                  *str(ds.PatientName).split("^")):
        assert value in planted


def test_labels_are_written_as_classes_of_the_given_task(tmp_path):
    task = Task(name="toy-writer", description="a test task", reference=Reference(citation="test"),
                modality="test", main_score=MainScore(metric="macro_f1", split="external"),
                target=Target(kind="binary", classes=(TaskClass(index=0, name="absent"),
                                                      TaskClass(index=1, name="present", code="P"))))
    rng = np.random.default_rng(5)
    rows = [{"image": rng.poisson(3, (8, 8)).astype(np.uint16), "label": k, "patient": f"p{k}"}
            for k in (0, 1)]
    for style, labels in [("name", ["absent", "present"]), ("type", ["absent", "P"])]:
        archive = write_archive(tmp_path / style, rows, task=task, label_style=style)
        with open(archive.labels_csv) as fh:
            assert [r[1] for r in csv.reader(fh)][1:] == labels  # no code: the name
    with pytest.raises(ValueError, match="label_style 'paper'"):
        write_archive(tmp_path / "x", rows, task=task, label_style="paper")
