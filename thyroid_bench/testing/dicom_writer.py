"""Fixture code for tests and benchmarks: DICOM archives for ingestion, with planted identifiers.

Not used by the package itself. :func:`write_archive` saves phantoms as genuine NM
Image Storage files and writes their labels CSV (labels as classes of a task,
``four-pattern`` unless one is given); :func:`nm_dataset` builds one such data set.

Every file carries planted identifiers (patient name, patient ID, birth date,
institution, UIDs, dates) and a canary string unique to the file in every
other text attribute, private tags and nested sequences included, so a test
can search a dataset for them byte by byte. With ``canary_technical=True`` (the
default) even the allow-listed technical text (manufacturer, model, collimator
name) holds the canary; ``False`` gives them realistic vendor values instead.

Rows are dicts: ``image`` (2-D counts) and ``label`` (a class index of the task)
are required; ``center``, ``patient`` (a key: rows sharing it are studies of one
patient), ``sex``, ``age``, ``pixel_spacing_mm``, ``acquisition_s``, ``path``
(relative file name), ``frames`` (list of ``(image, view)`` for a multi-frame study, view
``"anterior"`` or ``"posterior"``), ``overrides`` (DICOM keyword -> value set
last, e.g. ``{"Modality": "CT"}``), ``transfer_syntax`` and ``labelled``
(False: no labels-CSV row) are optional. The synthetic cohort's rows
(:func:`thyroid_bench.data.synthetic.generator.generate_split`) fit as they are.

Whole-body and two-view studies (task ``residual-tissue``): ``view`` (the view code of a
single-frame file, default ``"anterior"``), ``whole_body`` (True: Image Type value 3 is
``WHOLE BODY``, the image may be longer than wide, rows x columns), ``study`` (a key: rows
sharing it are files of one study, with one Study Instance UID; give them one ``patient``)
and ``uptake_pct`` (written to the labels CSV's ``uptake_pct`` column, empty when None). The
labels CSV's label column is ``label_column``: ``label`` or ``grade`` (the class, spelt as
``label_style`` says) or ``present`` (``yes`` / ``no``: a row's label is then its class
index, any class but the task's negative one, or -1, meaning present).
"""

from __future__ import annotations

import csv
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thyroid_bench.tasks import DEFAULT_TASK, Task, get_task

if TYPE_CHECKING:
    from pydicom.dataset import Dataset, FileMetaDataset

__all__ = [
    "CANARY_PREFIX",
    "NM_IMAGE_STORAGE",
    "Identity",
    "WrittenStudy",
    "Archive",
    "canary",
    "make_identity",
    "nm_dataset",
    "save_dicom",
    "sweep_phantom",
    "write_archive",
    "FILLER_CENTERS",
    "filler_rows",
]

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
#: Every canary starts with this; 10 + 6 hex characters fit the 16-character VRs (SH, CS, AE).
CANARY_PREFIX = "ZZCANARYZZ"
_PRIVATE_CREATOR_GROUP = 0x0011
_VIEW_CODES = {"anterior": ("399321004", "Anterior projection"),
               "posterior": ("399001007", "Posterior projection")}
_FAMILY = ("QUARTZWELL", "BRAMBLEFORD", "OKONKWO-MARSH", "VANTERPOOL", "ZELLWEGER", "HALVORSEN",
           "MCALISTAIR", "DUBROVNIK", "ÖSTERGAARD", "NAKAMURA-LEE")
_GIVEN = ("ELOWEN", "THADDEUS", "IMOGEN", "CASSIUS", "PERPETUA", "LEANDER", "OONAGH", "FABIAN",
          "SOLVEIG", "JERICHO")
# Text attributes that hold the file's canary (identifying free text in real archives).
_CANARY_KEYWORDS = (
    "InstitutionAddress", "InstitutionalDepartmentName", "StationName", "AccessionNumber", "StudyID",
    "StudyDescription", "SeriesDescription", "ProtocolName", "ReferringPhysicianName",
    "PerformingPhysicianName", "OperatorsName", "NameOfPhysiciansReadingStudy", "RequestingPhysician",
    "PatientComments", "AdditionalPatientHistory", "PatientAddress", "PatientTelephoneNumbers",
    "EthnicGroup", "Occupation", "ImageComments", "DeviceSerialNumber", "SoftwareVersions",
    "DerivationDescription", "PatientMotherBirthName", "OtherPatientNames", "BodyPartExamined",
    "ContentLabel", "ContentDescription", "ContentCreatorName",
)
_LABEL_STYLES = ("name", "type", "mixed")
_LABEL_COLUMNS = ("label", "grade", "present")
_INSTITUTIONS = ("Halcyon Ridge Thyroid Institute", "Saint Wendeline Infirmary",
                 "Marrowgate University Hospital", "Fenwick Lodge Clinic")


#: The centres of :func:`filler_rows`: the first's studies go to train and internal, the
#: second's are external (pass it with ``external_centers``).
FILLER_CENTERS = ("filler1", "filler2")


def filler_rows(task: Task | None = None, *, seed: int = 99, n: int = 10) -> list[dict[str, Any]]:
    """Rows that give a small test archive every split and a study in every train fold, which
    ingestion needs (:mod:`thyroid_bench.data.sizes`): ``n`` studies of ``n`` patients at
    ``FILLER_CENTERS[0]`` and 2 at ``FILLER_CENTERS[1]``, classes in turn, each image its own
    (8 x 8 counts); for a two-view task each study is an anterior and a posterior file."""
    task = task or get_task(DEFAULT_TASK)
    rng = np.random.default_rng([seed, 8])
    rows = []
    for i in range(n + 2):
        base = {"label": i % task.num_classes, "patient": f"filler-{i}",
                "center": FILLER_CENTERS[0] if i < n else FILLER_CENTERS[1]}
        if len(task.image_columns) == 1:
            rows.append({**base, "image": rng.poisson(4.0 + i, (8, 8)).astype(np.uint16)})
            continue
        rows += [{**base, "image": rng.poisson(4.0 + i, (8, 8)).astype(np.uint16), "view": view,
                  "study": f"filler-{i}", "labelled": view == "anterior"}
                 for view in ("anterior", "posterior")]
    return rows


def canary(index: int) -> str:
    """The canary of file ``index``: ``ZZCANARYZZ`` + 6 hex digits (16 characters)."""
    return f"{CANARY_PREFIX}{index & 0xFFFFFF:06X}"


@dataclass(frozen=True)
class Identity:
    """The planted identity of one patient."""

    patient_name: str
    patient_id: str
    birth_year_offset_days: int
    institution: str
    issuer: str


@dataclass
class WrittenStudy:
    """One file written by :func:`write_archive` and what was planted in it."""

    path: str
    label: int
    center: str
    patient: str
    image: np.ndarray
    sex: str
    age: int | None
    canary: str
    identity: Identity
    uids: tuple[str, ...]
    dates: tuple[str, ...]
    labelled: bool = True


@dataclass
class Archive:
    """A written archive: its folder, its labels CSV and every planted string."""

    root: Path
    labels_csv: Path
    studies: list[WrittenStudy] = field(default_factory=list)

    def planted(self) -> set[str]:
        """Every identifier and canary planted in the files (names split into parts too)."""
        out: set[str] = set()
        for s in self.studies:
            ident = s.identity
            out.update({s.canary, ident.patient_id, ident.patient_name, ident.institution, ident.issuer,
                        *ident.patient_name.split("^"), *s.uids, *s.dates})
        return {v for v in out if v}


def make_identity(seed: int, patient: str, center: str) -> Identity:
    """A deterministic fake identity for ``patient`` of ``center``."""
    rng = np.random.default_rng([seed, *patient.encode()])
    family, given = _FAMILY[rng.integers(len(_FAMILY))], _GIVEN[rng.integers(len(_GIVEN))]
    # A per-patient suffix keeps names unique, so a test can tell which one leaked.
    suffix = "".join(chr(ord("A") + int(d)) for d in rng.integers(0, 26, 4))
    return Identity(
        patient_name=f"{family}{suffix}^{given}",
        patient_id=f"MRN{int(rng.integers(10**7, 10**8))}",
        birth_year_offset_days=int(rng.integers(0, 365)),
        institution=_INSTITUTIONS[sum(center.encode()) % len(_INSTITUTIONS)],
        issuer=f"ISSUER{sum(center.encode()) % 1000:03d}MRN",
    )


def _uid(seed: int, *parts: object) -> str:
    from pydicom.uid import generate_uid

    return generate_uid(entropy_srcs=[str(seed), *map(str, parts)])


def _birth_date(study: date, age: int, offset_days: int) -> date:
    # Born `offset_days` (0-364) before the age-th anniversary: exactly `age` whole years at `study`.
    anniversary = date(study.year - age, study.month, min(study.day, 28))
    return anniversary - timedelta(days=offset_days)


def nm_dataset(image: np.ndarray, *, identity: Identity, canary: str, sex: str = "unknown",
               age: int | None = None, age_tag: bool = True, study_date: date = date(2020, 3, 17),
               uids: tuple[str, str, str, str] | None = None, pixel_spacing_mm: float = 2.21,
               acquisition_s: float = 300.0, frames: list[tuple[np.ndarray, str]] | None = None,
               canary_technical: bool = True, energy_window_kev: tuple[float, float] = (126.0, 154.0),
               view: str = "anterior", whole_body: bool = False) -> Dataset:
    """An NM Image Storage data set of ``image`` (or of ``frames``) with planted identifiers.

    ``uids`` = (study, series, SOP instance, frame of reference); ``view`` is the view code
    of a single-frame image; ``whole_body`` marks a whole-body sweep (Image Type value 3).
    Returns a :class:`pydicom.Dataset` with ``file_meta`` (Explicit VR Little Endian).
    """
    from pydicom.dataset import Dataset
    from pydicom.uid import generate_uid

    uids = uids or tuple(generate_uid() for _ in range(4))
    planes = [np.asarray(image)] if frames is None else [np.asarray(f) for f, _ in frames]
    views = [view] if frames is None else [v for _, v in frames]
    ds = Dataset()
    ds.file_meta = _file_meta(uids[2], canary)
    ds.SpecificCharacterSet = "ISO_IR 192"  # UTF-8: names may hold any script
    _plant_identity(ds, identity, sex, age, age_tag, study_date)
    _plant_canaries(ds, identity, canary)
    _set_dates_and_uids(ds, study_date, uids)
    _set_equipment(ds, canary if canary_technical else None, whole_body)
    _set_frames(ds, views, canary, canary_technical, energy_window_kev)
    _set_pixels(ds, planes, pixel_spacing_mm, acquisition_s)
    return ds


def _file_meta(sop_uid: str, canary: str) -> FileMetaDataset:
    from pydicom.dataset import FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = NM_IMAGE_STORAGE
    meta.MediaStorageSOPInstanceUID = sop_uid
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationVersionName = canary  # SH in the file meta group: text too
    return meta


def _plant_identity(ds: Dataset, identity: Identity, sex: str, age: int | None, age_tag: bool,
                    study_date: date) -> None:
    """Name, ID, issuer, sex, birth date (and age) and institution of the patient."""
    ds.PatientName = identity.patient_name
    ds.PatientID = identity.patient_id
    ds.IssuerOfPatientID = identity.issuer
    ds.PatientSex = {"F": "F", "M": "M"}.get(sex, "O")
    if age is not None:
        ds.PatientBirthDate = _birth_date(study_date, age, identity.birth_year_offset_days).strftime("%Y%m%d")
        if age_tag:
            ds.PatientAge = f"{age:03d}Y"
    ds.InstitutionName = identity.institution


def _plant_canaries(ds: Dataset, identity: Identity, canary: str) -> None:
    """The canary in every other text attribute, in nested sequences and in private tags."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    c = canary
    for keyword in _CANARY_KEYWORDS:
        setattr(ds, keyword, c)
    ds.OtherPatientIDsSequence = Sequence([Dataset()])
    ds.OtherPatientIDsSequence[0].PatientID = c
    ds.OtherPatientIDsSequence[0].IssuerOfPatientID = c
    ds.RequestAttributesSequence = Sequence([Dataset()])
    ds.RequestAttributesSequence[0].RequestedProcedureDescription = c
    ds.RequestAttributesSequence[0].ScheduledProcedureStepDescription = c
    ds.RequestAttributesSequence[0].RequestedProcedureID = c
    pharm = Dataset()
    pharm.Radiopharmaceutical = c
    pharm.RadiopharmaceuticalRoute = c
    ds.RadiopharmaceuticalInformationSequence = Sequence([pharm])
    block = ds.private_block(_PRIVATE_CREATOR_GROUP, f"PRIV {c}", create=True)
    block.add_new(0x01, "LO", c)
    block.add_new(0x02, "SH", c)
    block.add_new(0x03, "LT", f"note for {identity.patient_name}: {c}")
    block.add_new(0x04, "UT", c)
    block.add_new(0x05, "PN", identity.patient_name)
    block.add_new(0x06, "ST", f"{identity.institution} {c}")


def _set_dates_and_uids(ds: Dataset, study_date: date, uids: tuple[str, ...]) -> None:
    """Dates, times and UIDs: identifying, never stored by the ingestion."""
    day = study_date.strftime("%Y%m%d")
    for keyword in ("StudyDate", "SeriesDate", "AcquisitionDate", "ContentDate"):
        setattr(ds, keyword, day)
    for keyword in ("StudyTime", "SeriesTime", "AcquisitionTime", "ContentTime"):
        setattr(ds, keyword, "101502")
    ds.SOPClassUID = NM_IMAGE_STORAGE
    ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, ds.FrameOfReferenceUID = uids
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1


def _set_equipment(ds: Dataset, canary: str | None, whole_body: bool = False) -> None:
    """Modality, a static (or whole-body) Image Type and the camera (the canary, or realistic
    vendor values)."""
    ds.Modality = "NM"
    ds.ImageType = ["ORIGINAL", "PRIMARY", "WHOLE BODY" if whole_body else "STATIC", "EMISSION"]
    ds.Manufacturer = canary or "ACME Medical Systems"
    ds.ManufacturerModelName = canary or "Gammascope 3000"
    ds.BurnedInAnnotation = "NO"


def _set_frames(ds: Dataset, views: list[str], canary: str, canary_technical: bool,
                energy_window_kev: tuple[float, float]) -> None:
    """One frame per view: its detector (collimator, view code) and the one energy window."""
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    ds.NumberOfFrames = len(views)
    ds.FrameIncrementPointer = [0x00540010, 0x00540020]  # Energy Window Vector, Detector Vector
    ds.EnergyWindowVector = [1] * len(views)
    ds.NumberOfEnergyWindows = 1
    ds.DetectorVector = list(range(1, len(views) + 1))
    ds.NumberOfDetectors = len(views)
    window = Dataset()
    rng_item = Dataset()
    rng_item.EnergyWindowLowerLimit = f"{energy_window_kev[0]:g}"
    rng_item.EnergyWindowUpperLimit = f"{energy_window_kev[1]:g}"
    window.EnergyWindowRangeSequence = Sequence([rng_item])
    window.EnergyWindowName = canary
    ds.EnergyWindowInformationSequence = Sequence([window])
    detectors = []
    for view in views:
        det = Dataset()
        det.CollimatorGridName = canary if canary_technical else "LEHR"
        det.CollimatorType = "PARA"
        code = Dataset()
        code.CodeValue, code.CodeMeaning = _VIEW_CODES[view]
        code.CodingSchemeDesignator = "SCT"
        det.ViewCodeSequence = Sequence([code])
        detectors.append(det)
    ds.DetectorInformationSequence = Sequence(detectors)


def _set_pixels(ds: Dataset, planes: list[np.ndarray], pixel_spacing_mm: float,
                acquisition_s: float) -> None:
    """The frames as unsigned 16-bit MONOCHROME2 pixels, spacing, duration and counts."""
    ds.ActualFrameDuration = int(round(acquisition_s * 1000))
    stack = np.stack([np.asarray(p, dtype=np.uint16) for p in planes])
    ds.CountsAccumulated = int(stack[0].sum(dtype=np.int64))
    ds.PixelSpacing = [f"{pixel_spacing_mm:.6g}", f"{pixel_spacing_mm:.6g}"]
    ds.Rows, ds.Columns = stack.shape[1:]
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated = 16
    ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PixelData = np.ascontiguousarray(stack, dtype="<u2").tobytes()


def _half_width_mm(depth_mm: np.ndarray) -> np.ndarray:
    """Half the body's width at ``depth_mm`` below the vertex: an elliptic skull (22 cm long,
    15 cm wide), the neck, the trunk, the legs (a person of 1.7 m)."""
    head = 75.0 * np.sqrt(np.clip(1.0 - ((depth_mm - 110.0) / 110.0) ** 2, 0.0, None))
    return np.select([depth_mm < 0, depth_mm < 220, depth_mm < 300, depth_mm < 900, depth_mm < 1700],
                     [0.0, head, 55.0, 170.0, 140.0], 0.0)


def sweep_phantom(seed: int, *, rows: int = 1024, cols: int = 256, vertex: int = 60,
                  spacing_mm: float = 2.21, level: float = 2.0, remnant: float = 0.0,
                  bed_mm: float = 260.0, shift_mm: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """A whole-body sweep, (anterior, posterior) uint16 counts, rows x cols, head at row 0 and
    the skull's top at row ``vertex``: body background ``level`` counts per pixel (posterior
    0.8 of it), salivary glands, a thyroid-bed focus of ``remnant`` counts per pixel at its
    peak ``bed_mm`` below the skull's top, air at 0.02, Poisson noise; the body's midline
    ``shift_mm`` right of the image centre. The crop rule's tests know where the head starts."""
    rng = np.random.default_rng(seed)
    depth = (np.arange(rows)[:, None] - vertex) * spacing_mm
    x = (np.arange(cols)[None, :] - cols / 2 + 0.5) * spacing_mm - shift_mm
    lam = 0.02 + level * (np.abs(x) <= _half_width_mm(depth))
    for gx in (-45.0, 45.0):  # parotid glands
        lam = lam + 4 * level * np.exp(-((depth - 150.0) ** 2 + (x - gx) ** 2) / (2 * 12.0 ** 2))
    lam = lam + remnant * np.exp(-((depth - bed_mm) ** 2 + x ** 2) / (2 * 8.0 ** 2))
    return (rng.poisson(lam).astype(np.uint16), rng.poisson(0.8 * lam).astype(np.uint16))


def save_dicom(ds: Any, path: Path, transfer_syntax: str | None = None) -> Path:
    """Write ``ds`` as a DICOM file (preamble and file meta); optionally compress it first
    with a transfer syntax pydicom can encode (e.g. RLE Lossless)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if transfer_syntax is not None and transfer_syntax != ds.file_meta.TransferSyntaxUID:
        ds.compress(transfer_syntax, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path


def write_archive(root: Path, rows: list[dict[str, Any]], *, seed: int = 0,
                  labels_name: str = "labels.csv", canary_technical: bool = True,
                  label_style: str = "mixed", task: Task | None = None,
                  label_column: str = "label") -> Archive:
    """Save ``rows`` as DICOM files under ``root`` and write a labels CSV beside the folder.

    Files go to ``<center>/<patient number>/<study number>.dcm`` unless a row
    gives ``path``. The labels CSV (``root.parent / labels_name``) has columns
    path, label, center; a row's ``label`` is a class index of ``task`` (default
    ``four-pattern``), written as the class name (``label_style="name"``), its paper
    code (``"type"``; the name for a class without one) or alternately (``"mixed"``),
    in the column ``label_column`` (see the module docstring for ``grade`` and ``present``).
    """
    if label_style not in _LABEL_STYLES:
        raise ValueError(f"label_style {label_style!r} is not one of {_LABEL_STYLES}")
    if label_column not in _LABEL_COLUMNS:
        raise ValueError(f"label_column {label_column!r} is not one of {_LABEL_COLUMNS}")
    task = task or get_task(DEFAULT_TASK)
    root = Path(root)
    root.mkdir(parents=True, exist_ok=True)
    archive = Archive(root=root, labels_csv=root.parent / labels_name)
    patient_numbers: dict[str, int] = {}
    study_numbers: dict[str, int] = {}
    for i, row in enumerate(rows):
        center = str(row.get("center", "center1"))
        patient = str(row.get("patient", row.get("patient_id", f"patient-{i}")))
        number = patient_numbers.setdefault(patient, len(patient_numbers))
        study_numbers[patient] = study_numbers.get(patient, -1) + 1
        rel = row.get("path") or f"{center}/{number:05d}/{study_numbers[patient]:02d}.dcm"
        archive.studies.append(_write_study(root, rel, row, i, center, patient, seed, canary_technical))
    uptake = {s.path: r.get("uptake_pct") for s, r in zip(archive.studies, rows)} \
        if any("uptake_pct" in r for r in rows) else None
    _write_labels_csv(archive.labels_csv, archive.studies, task, label_style, label_column, uptake)
    return archive


def _write_study(root: Path, rel: str, row: dict[str, Any], i: int, center: str, patient: str,
                 seed: int, canary_technical: bool) -> WrittenStudy:
    """Save row ``i`` as ``root / rel`` with its planted identity; return what was planted."""
    identity = make_identity(seed, patient, center)
    c = canary(seed * 100_000 + i)
    uids = tuple(_uid(seed, i, kind) for kind in ("study", "series", "sop", "frame"))
    if row.get("study") is not None:  # files of one study share its Study Instance UID
        uids = (_uid(seed, "study", row["study"]), *uids[1:])
    rng = np.random.default_rng([seed, i, 7])
    study_date = date(2015, 1, 1) + timedelta(days=int(rng.integers(0, 3000)))
    age = None if row.get("age") is None else int(row["age"])
    ds = nm_dataset(
        row["image"], identity=identity, canary=c, sex=str(row.get("sex", "unknown")),
        age=age, age_tag=i % 2 == 0, study_date=study_date,
        uids=uids, pixel_spacing_mm=float(row.get("pixel_spacing_mm", 2.21)),
        acquisition_s=float(row.get("acquisition_s", 300.0)), frames=row.get("frames"),
        canary_technical=canary_technical, view=str(row.get("view", "anterior")),
        whole_body=bool(row.get("whole_body", False)))
    for keyword, value in (row.get("overrides") or {}).items():
        setattr(ds, keyword, value)
    save_dicom(ds, root / rel, row.get("transfer_syntax"))
    image = np.asarray(row["image"] if row.get("frames") is None else row["frames"][0][0])
    return WrittenStudy(
        path=rel, label=int(row["label"]), center=center, patient=patient, image=image,
        sex=str(row.get("sex", "unknown")), age=age, canary=c, identity=identity, uids=uids,
        dates=(study_date.strftime("%Y%m%d"), str(ds.get("PatientBirthDate", ""))),
        labelled=bool(row.get("labelled", True)))


def _write_labels_csv(path: Path, studies: list[WrittenStudy], task: Task, label_style: str,
                      label_column: str = "label", uptake: dict[str, float | None] | None = None
                      ) -> None:
    """One row (path, label, center[, uptake_pct]) per labelled study, the label spelt as
    ``label_style`` says in column ``label_column``."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh)
        writer.writerow(["path", label_column, "center", *(["uptake_pct"] if uptake else [])])
        for k, s in enumerate(studies):
            if not s.labelled:
                continue
            if label_column == "present":
                label = "no" if s.label == task.negative_index else "yes"
            else:
                style = label_style if label_style != "mixed" else ("name", "type")[k % 2]
                cls = task.classes[s.label]
                label = cls.name if style == "name" or not cls.code else cls.code
            value = [] if not uptake else ["" if uptake[s.path] is None else f"{uptake[s.path]:g}"]
            writer.writerow([s.path, label, s.center, *value])
