"""``thyroid-bench prepare --source dicom``: a DICOM archive plus a labels CSV -> dataset v1.

Flow: check the labels CSV (:mod:`thyroid_bench.data.dicom.labels_csv`; labels are
classes of the task given by ``--task``) -> list every file under ``--dicom-dir`` ->
read them in parallel (:func:`read_dicom_file`: planar NM only, raw counts, header
allow-list of :mod:`thyroid_bench.data.dicom.deid`) -> match files to label rows ->
reject duplicates -> keyed pseudonyms -> a patient-level split and the task's train
folds, stratified by the task's classes -> :func:`thyroid_bench.data.format.write_dataset`
(class counts and label schema of the task) with ``rejected.csv``.

Memory does not grow with the archive's pixels: each file's counts go to an anonymous file on
disk as they are read (:mod:`thyroid_bench.data.dicom.pixel_store`; a bounded process pool,
:func:`~thyroid_bench.data.parallel.ordered_map`), the whole-archive checks (duplicates by
SOP Instance UID and by an image's SHA-256, the patient-level split, label matching,
provenance counts, split sizes, the identifier indexes) keep a compact record per study, and
the writer fetches each shard's images back as it writes it
(:class:`~thyroid_bench.data.split_rows.SplitRows`). The dataset is the one the whole archive
in memory gave, byte for byte (tests/test_ingest_streaming.py).

Nothing is lost silently: every file seen is either a dataset row or a line of
``rejected.csv`` with its reason, and the printed summary adds them up. Faults
of the labels CSV (the user's own file) are errors that stop the run before
anything is written; faults of a DICOM file are rejections.

Documented choices
------------------
* Accepted: NM Image Storage (1.2.840.10008.5.1.4.1.1.20, and its retired
  predecessor ...1.5), or a single-frame Secondary Capture (...1.7, or the
  multi-frame grayscale SC classes with one frame) with Modality NM;
  Photometric Interpretation MONOCHROME2, one sample per pixel, square matrix;
  a Patient ID (to group studies) and a SOP Instance UID (the case identity).
* Multi-frame: dynamic, gated and tomographic studies (Image Type value 3 other
  than STATIC) are rejected. In a multi-frame STATIC study the frame is the
  anterior view (its detector's View Code Sequence is SNOMED 399321004
  "Anterior projection" or 399348003 "antero-posterior"); among several
  anterior frames the lowest energy window number (the photopeak by convention),
  then the first. Without any view codes frame 0 is taken; with view codes but no
  anterior view the file is rejected.
* Pixels: decoded by pydicom's installed handlers (uncompressed little-endian
  16-bit unsigned data, the usual NM case, is read straight from the bytes,
  which is exactly what the decoder would return); Rescale Slope/Intercept
  applied; the result must be whole counts in 0-65535 with at least one count.
  Lossy compression is rejected, whatever the header says: Lossy Image Compression 01, a
  lossy transfer syntax, or a codestream that is (an irreversible JPEG 2000 wavelet, a DCT
  JPEG process, near-lossless JPEG-LS); see :mod:`thyroid_bench.data.dicom.lossy`.
* Duplicates: a second file with the SOP Instance UID or the exact pixels of an
  earlier one (in path order) is rejected.

Two-view tasks (``residual-tissue``, whose image columns are ``image`` and
``image_posterior``): files are read for their views (:func:`reads_views`). Image Type
value 3 may be STATIC or WHOLE BODY (a whole-body sweep may be longer than wide; a static
view must be square); each frame's view comes from its detector's View Code Sequence
(Detector Vector -> Detector Information Sequence; a single-frame file: its one detector),
anterior (SNOMED 399321004, 399348003) or posterior (399001007), the frame of the lowest
Energy Window Vector number first; a file with neither view is rejected. Files are then
paired into studies by :mod:`thyroid_bench.data.dicom.pairing` and whole-body sweeps cut to
the head and neck by
:mod:`thyroid_bench.data.dicom.wholebody`. Files seen = files ingested (one or two per
study) + files rejected.
"""

from __future__ import annotations

import os
import re
import sys
import warnings
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from thyroid_bench.data import private
from thyroid_bench.data.card import dicom_card
from thyroid_bench.data.columns import image_columns
from thyroid_bench.data.dicom.deid import (
    HEADER_ALLOW_LIST,
    MIN_PATIENTS_PER_VALUE,
    PSEUDONYM_HEX_CHARS,
    IdentifierIndex,
    Pseudonymizer,
    age_in_years,
    key_id,
    load_or_create_key,
    normalise_sex,
)
from thyroid_bench.data.dicom.duplicates import ImageIndex
from thyroid_bench.data.dicom.identifier_index import (
    ArchiveIdentifiers,
    identifier_index_path,
    write_keyed_index,
)
from thyroid_bench.data.dicom.identity import (
    STUDY_PATIENTS_DIFFER,
    inconsistent_studies,
    isolation_groups,
    split_conflicts,
)
from thyroid_bench.data.dicom.labels_csv import LabelRow, grades_known, read_labels_csv
from thyroid_bench.data.dicom.lossy import lossy_reason
from thyroid_bench.data.dicom.pairing import VIEWS, pair_studies, view_name
from thyroid_bench.data.dicom.pixel_store import PixelStore, image_key, spill_folder
from thyroid_bench.data.dicom.report import (
    cap_ages,
    check_report_folder,
    organiser_report,
    organiser_report_path,
    publication_notes,
    published_rejections,
    write_organiser_report,
)
from thyroid_bench.data.dicom.preflight import check_paths
from thyroid_bench.data.dicom.split_sizes import check_dicom_split_sizes
from thyroid_bench.data.dicom.walk import list_archive, walk_archive
from thyroid_bench.data.parallel import ordered_map
from thyroid_bench.data.split_rows import SplitRows
from thyroid_bench.errors import DatasetError, os_error_line, printable
from thyroid_bench.tasks import (
    DEFAULT_TASK,
    NO_FOLD,
    SPLITS,
    TRAIN_SPLIT,
    UNKNOWN_GRADE,
    Task,
    get_task,
)

__all__ = [
    "NM_IMAGE_STORAGE",
    "ACCEPTED_SOP_CLASSES",
    "ANTERIOR_VIEW_CODES",
    "REJECTED_CSV",
    "VIEW_HEADER_ALLOW_LIST",
    "reads_views",
    "read_dicom_file",
    "list_archive",
    "read_archive",
    "stratified_group_bins",
    "prepare_dicom",
]

NM_IMAGE_STORAGE = "1.2.840.10008.5.1.4.1.1.20"
_NM_RETIRED = "1.2.840.10008.5.1.4.1.1.5"
_SECONDARY_CAPTURE = (
    "1.2.840.10008.5.1.4.1.1.7",      # Secondary Capture Image Storage
    "1.2.840.10008.5.1.4.1.1.7.2",    # Multi-frame Grayscale Byte SC
    "1.2.840.10008.5.1.4.1.1.7.3",    # Multi-frame Grayscale Word SC
)
ACCEPTED_SOP_CLASSES: tuple[str, ...] = (NM_IMAGE_STORAGE, _NM_RETIRED, *_SECONDARY_CAPTURE)
_DICOMDIR = "1.2.840.10008.1.3.10"
#: SNOMED CT codes of CID 26 (Nuclear Medicine Projections) meaning an anterior view.
ANTERIOR_VIEW_CODES = frozenset({"399321004", "399348003"})
_ANTERIOR_MEANINGS = frozenset({"anterior", "anterior projection", "antero-posterior", "ap"})
# Defined terms of Photometric Interpretation (PS3.3 C.7.6.3.1.2), the only values a reason
# names; any other is "unrecognised", never echoed.
_PHOTOMETRIC = frozenset({"MONOCHROME1", "MONOCHROME2", "PALETTE COLOR", "RGB", "HSV", "ARGB",
                          "CMYK", "YBR_FULL", "YBR_FULL_422", "YBR_PARTIAL_422", "YBR_PARTIAL_420",
                          "YBR_ICT", "YBR_RCT", "XYB"})
_NM_IMAGE_TYPES = frozenset({"STATIC", "DYNAMIC", "GATED", "WHOLE BODY", "TOMO", "GATED TOMO",
                             "RECON TOMO", "RECON GATED TOMO"})
# Defined terms of Modality (PS3.3 C.7.3.1.1.1); a value outside is shown as "unrecognised",
# never echoed, since a malformed header could carry anything there.
_MODALITIES = frozenset(
    "AR ASMT AU BDUS BI BMD CFM CR CT CTPROTOCOL DMS DG DOC DX ECG EEG EMG EOG EPS ES FID GM HC HD "
    "IO IOL IVOCT IVUS KER KO LEN LS MG MR M3D NM OAM OCT OP OPM OPT OPTBSV OPTENF OPV OSS OT PLAN "
    "POS PR PT PX REG RESP RF RG RTDOSE RTIMAGE RTINTENT RTPLAN RTRAD RTRECORD RTSEGANN RTSTRUCT "
    "RWV SEG SM SMR SR SRF STAIN TEXTUREMAP TG US VA XA XC".split())
REJECTED_CSV = "rejected.csv"
_INTERNAL, _EXTERNAL = SPLITS[1:]  # held out at the training centres; other centres
_WITHHELD = "[withheld]"
_RARE = "[rare values withheld]"
#: The dataset column of the posterior view: a task with it among its image columns is read
#: for both views of each study.
_POSTERIOR_COLUMN = "image_posterior"
#: What a two-view task reads beyond :data:`HEADER_ALLOW_LIST` (recorded in its provenance).
VIEW_HEADER_ALLOW_LIST: dict[str, str] = {
    "ImageType": "checked (NM Image Storage): value 3, when present, must be STATIC or WHOLE BODY",
    "DetectorInformationSequence/ViewCodeSequence": "the anterior and the posterior view",
    "DetectorVector": "which detector (view) each frame comes from",
    "StudyInstanceUID": "pairs the files of one study (anterior and posterior views); "
                        "pseudonym: study_id = HMAC(key, Study Instance UID)",
    "PixelSpacing": "dataset column pixel_spacing_mm (row spacing); places the head-and-neck "
                    "window of a whole-body sweep wider than 256 pixels",
}


def reads_views(task: Task) -> bool:
    """Whether ``task``'s input is both views of a study (anterior ``image``, posterior
    ``image_posterior``), so that files are read for their views and paired."""
    return _POSTERIOR_COLUMN in task.image_columns


# --------------------------------------------------------------------------- reading one file
class _Reject(Exception):
    """A file is not ingested; the message is its reason (fixed wording, no header text, as it
    is published); ``detail`` is free text for the organiser's report only."""

    def __init__(self, reason: str, detail: str | None = None) -> None:
        super().__init__(reason)
        self.detail = detail


def _exc_text(exc: BaseException) -> str:
    # Library messages can quote header values (or paths): a reason names the error's kind only.
    return type(exc).__name__


def _exc_detail(exc: BaseException) -> str:
    """The library's message, for the organiser's report (never published)."""
    return " ".join(f"{type(exc).__name__}: {exc}".split())[:500]


def _values(value: Any) -> list[str]:
    if value is None:
        return []
    if isinstance(value, (list, tuple)) or type(value).__name__ == "MultiValue":
        return [str(v) for v in value if str(v).strip()]
    text = str(value)
    return [text] if text.strip() else []


# Character sets whose text can be decoded straight from the raw bytes (PS3.5 6.1.2.3);
# any other (ISO 2022 escapes, GB18030, ...) goes through pydicom's decoder.
_DIRECT_CODECS = {"": "latin-1", "ISO_IR 6": "latin-1", "ISO_IR 100": "latin-1", "ISO_IR 192": "utf-8"}
_TAGS: dict[str, int] = {}


def _tag(keyword: str) -> int:
    tag = _TAGS.get(keyword)
    if tag is None:
        from pydicom.datadict import tag_for_keyword

        tag = _TAGS[keyword] = int(tag_for_keyword(keyword))
    return tag


def _element(ds: Any, keyword: str) -> Any:
    """The data element ``keyword``, None if absent; a damaged one (an unknown value
    representation, a value that does not parse: pydicom raises several kinds) rejects the file."""
    try:
        return ds.get_item(_tag(keyword))
    except Exception as exc:  # noqa: BLE001 - any failure to read an element is damage
        raise _damaged(keyword, exc) from None


def _damaged(keyword: str, exc: BaseException) -> _Reject:
    return _Reject(f"damaged header: element {keyword} cannot be read ({_exc_text(exc)})",
                   _exc_detail(exc))


def _codec(ds: Any) -> str | None:
    raw = _text(ds, "SpecificCharacterSet", "latin-1")
    return None if "\\" in raw else _DIRECT_CODECS.get(raw.strip())


def _text(ds: Any, keyword: str, codec: str | None) -> str:
    """An element's value as text, "" if absent.

    Decoded from the raw bytes when the character set allows (``codec``), which
    is several times faster than pydicom's value conversion; multiple values stay
    joined by backslashes.
    """
    elem = _element(ds, keyword)
    if elem is None:
        return ""
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        if codec is None:
            try:
                value = ds[_tag(keyword)].value
            except Exception as exc:  # noqa: BLE001 - as in _element
                raise _damaged(keyword, exc) from None
            return "\\".join(_values(value)).strip()
        return value.decode(codec, errors="replace").strip(" \x00")
    return "\\".join(_values(value)).strip() if value is not None else ""


def _us(ds: Any, keyword: str) -> int | None:
    """An unsigned short (US) element from its raw bytes, None if absent or malformed."""
    elem = _element(ds, keyword)
    if elem is None or elem.value is None:
        return None
    value = elem.value
    if isinstance(value, (bytes, bytearray)):
        if len(value) < 2:
            return None
        return int.from_bytes(value[:2], "little" if elem.is_little_endian else "big")
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


def _native_u16(ds: Any, tsyntax: Any, n_frames: int, rows: int, cols: int) -> np.ndarray | None:
    """The pixels of the common NM case without pydicom's general decoder, else None.

    Uncompressed little-endian data with 16 bits allocated and stored, unsigned, is
    exactly a little-endian uint16 array (PS3.5 8.1.1); anything else (other bit
    depths, signed, big-endian, compressed, odd lengths) goes through ``pixel_array``.
    """
    from pydicom.uid import ExplicitVRLittleEndian, ImplicitVRLittleEndian

    if tsyntax not in (ExplicitVRLittleEndian, ImplicitVRLittleEndian):
        return None
    if (_us(ds, "BitsAllocated"), _us(ds, "BitsStored"), _us(ds, "PixelRepresentation")) != (16, 16, 0):
        return None
    elem = ds.get_item(_tag("PixelData"))
    data = None if elem is None else elem.value
    if not isinstance(data, (bytes, bytearray)) or len(data) != 2 * n_frames * rows * cols:
        return None
    arr = np.frombuffer(data, dtype="<u2")
    return arr.reshape(n_frames, rows, cols) if n_frames > 1 else arr.reshape(rows, cols)


def _multi(text: str) -> list[str]:
    return [v.strip() for v in text.split("\\") if v.strip()]


def _sop_class_name(uid: str) -> str:
    from pydicom.uid import UID_dictionary

    entry = UID_dictionary.get(uid)
    return entry[0] if entry else "an unrecognised SOP class"


def _float(value: Any) -> float | None:
    try:
        out = float(value)
    except (TypeError, ValueError):
        return None
    return out if np.isfinite(out) else None


def _is_anterior(view_seq: Any, codec: str | None) -> bool | None:
    """True/False for a View Code Sequence, None when it is absent or empty."""
    if not view_seq:
        return None
    item = view_seq[0]
    code = _text(item, "CodeValue", codec)
    meaning = _text(item, "CodeMeaning", codec).lower()
    return code in ANTERIOR_VIEW_CODES or meaning in _ANTERIOR_MEANINGS


def _choose_frame(ds: Any, n_frames: int, codec: str | None) -> tuple[int, str]:
    """The frame to keep of a multi-frame static study, and how it was chosen."""
    detectors = [int(v) for v in _values(ds.get("DetectorVector"))] if "DetectorVector" in ds else []
    windows = [int(v) for v in _values(ds.get("EnergyWindowVector"))] if "EnergyWindowVector" in ds else []
    info = ds.get("DetectorInformationSequence") or []
    views = [_is_anterior(item.get("ViewCodeSequence"), codec) for item in info]
    if len(detectors) != n_frames or not any(v is not None for v in views):
        return 0, "frame 0 (no view codes)"
    anterior = [f for f in range(n_frames)
                if 1 <= detectors[f] <= len(views) and views[detectors[f] - 1]]
    if not anterior:
        raise _Reject("multi-frame study has view codes but no anterior view")
    if len(windows) == n_frames:
        anterior.sort(key=lambda f: (windows[f], f))
    return anterior[0], "anterior view"


def _technical(ds: Any, codec: str | None) -> dict[str, Any]:
    """Allow-listed technical values for the provenance aggregates (scrubbed later)."""
    collimators, collimator_types, windows = set(), set(), set()
    for item in ds.get("DetectorInformationSequence") or []:
        collimators.update(_multi(_text(item, "CollimatorGridName", codec)))
        collimator_types.update(_multi(_text(item, "CollimatorType", codec)))
    for item in ds.get("EnergyWindowInformationSequence") or []:
        for rng in item.get("EnergyWindowRangeSequence") or []:
            lo = _float(_text(rng, "EnergyWindowLowerLimit", codec))
            hi = _float(_text(rng, "EnergyWindowUpperLimit", codec))
            if lo is not None and hi is not None:
                windows.add(f"{lo:g}-{hi:g}")
    counts = _float(_text(ds, "CountsAccumulated", codec))
    return {
        "manufacturer": _text(ds, "Manufacturer", codec).replace("\\", " ") or None,
        "model": _text(ds, "ManufacturerModelName", codec).replace("\\", " ") or None,
        "collimators": sorted(collimators),
        "collimator_types": sorted(collimator_types),
        "energy_windows_kev": sorted(windows),
        "counts_accumulated": None if counts is None else int(counts),
    }


_NAME_KEYWORDS = ("PatientName", "InstitutionName", "ReferringPhysicianName", "StationName")
_ID_KEYWORDS = ("PatientID", "OtherPatientIDs", "PatientBirthDate", "AccessionNumber", "StudyID",
                "StudyDate", "StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")


def _identifiers(ds: Any, codec: str | None) -> tuple[list[str], list[str]]:
    words = [v for k in _NAME_KEYWORDS for v in _multi(_text(ds, k, codec))]
    exact = [v for k in _ID_KEYWORDS for v in _multi(_text(ds, k, codec))]
    return words, exact


def _read(path: Path) -> Any:
    import pydicom
    from pydicom.errors import InvalidDicomError

    if path.is_dir():
        raise _Reject("a link to a folder (not followed: point --dicom-dir at the real folder)")
    if not os.path.lexists(path):
        raise _Reject("vanished after the archive was listed")
    if not path.is_file():  # reading a FIFO would block; a broken link cannot be read
        raise _Reject("not a regular file (a broken link or a special file)")
    try:
        return pydicom.dcmread(path)
    except InvalidDicomError:
        pass  # no 'DICM' preamble: try once more as a bare data set
    except OSError as exc:  # changed after the archive was listed (permissions, I/O error)
        why = os.strerror(exc.errno) if exc.errno else _exc_text(exc)
        raise _Reject(f"file cannot be read ({why})") from None
    except Exception as exc:  # noqa: BLE001 - any reader failure is a rejection reason
        raise _Reject(f"unreadable DICOM file ({_exc_text(exc)})", _exc_detail(exc)) from None
    try:
        ds = pydicom.dcmread(path, force=True)
    except Exception:  # noqa: BLE001
        raise _Reject("not a DICOM file") from None
    if "SOPClassUID" not in ds and "PixelData" not in ds:
        raise _Reject("not a DICOM file (no DICM preamble and no recognisable data set)")
    return ds


def read_dicom_file(path: Path, relative: str, allow_burned_in: bool = False,
                    views: bool = False) -> dict[str, Any]:
    """Read one file into a result dict: ``ok`` with the image and allow-listed fields, or a reason.

    Keys: ``file``, ``ok``, ``reason``; once the header is read also
    ``sop_uid``, ``patient`` (issuer, patient ID), ``words`` / ``exact``
    (identifier values, used only to keep them out of the output); when ``ok``
    also ``image`` (2-D uint16 counts), ``total_counts``, ``sex``, ``age``,
    ``pixel_spacing_mm``, ``acquisition_s``, ``frame_choice``,
    ``transfer_syntax``, ``technical``. Never raises for a bad file.

    With ``views`` (a two-view task) an ``ok`` result has ``views`` (``anterior`` and/or
    ``posterior`` -> 2-D uint16 counts) instead of ``image``, ``whole_body`` and
    ``study_uid``; ``total_counts`` is then the first view's.
    """
    out: dict[str, Any] = {"file": relative, "ok": False, "reason": None, "sop_uid": None,
                           "patient": None, "words": [], "exact": []}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            _read_into(Path(path), out, allow_burned_in, views)
            out["ok"] = True
        except _Reject as rej:
            out["reason"], out["detail"] = str(rej), rej.detail
        except Exception as exc:  # noqa: BLE001 - one bad file never stops the run
            out["reason"] = f"unexpected error while reading ({_exc_text(exc)})"
            out["detail"] = _exc_detail(exc)
    if not out["ok"]:
        out.pop("image", None)
    return out


def _is_transfer_syntax(uid: Any) -> bool:
    try:
        return bool(uid.is_transfer_syntax)
    except (ValueError, AttributeError):  # private or malformed UID
        return False


def _read_into(path: Path, out: dict[str, Any], allow_burned_in: bool, views: bool = False) -> None:
    """Fill ``out`` from the file at ``path``, or raise :class:`_Reject` at its first fault.

    The checks run in a fixed order (what the object is, image type, geometry,
    identity, transfer syntax, pixels, counts), so a file with several faults is
    always rejected for the same one.
    """
    ds = _read(path)
    codec = _codec(ds)
    text = partial(_text, ds, codec=codec)
    sop_class = text("SOPClassUID")
    out["sop_uid"] = text("SOPInstanceUID") or None
    out["words"], out["exact"] = _identifiers(ds, codec)
    _check_object(ds, text, sop_class, allow_burned_in)
    if views:
        _read_views_into(ds, text, codec, sop_class, out)
        return
    n_frames, _ = _check_image_type(text, sop_class)
    rows, cols = _check_geometry(ds, text)
    patient_id = _check_identity(text, out["sop_uid"])
    tsyntax, ts_name = _transfer_syntax(ds, text)
    pixels, frame_choice = _decode(ds, tsyntax, n_frames, rows, cols, codec)
    image = _counts(pixels, text)
    out.update(_fields(ds, text, codec, image, patient_id, frame_choice, ts_name))


def _check_object(ds: Any, text: Callable[[str], str], sop_class: str, allow_burned_in: bool) -> None:
    """Reject what is not an NM image: a DICOMDIR, another SOP class or modality, no pixel
    data, or burned-in annotation (unless allowed)."""
    if sop_class == _DICOMDIR or "DirectoryRecordSequence" in ds:
        raise _Reject("DICOMDIR (a directory index, not an image)")
    if sop_class not in ACCEPTED_SOP_CLASSES:
        raise _Reject(f"SOP class is {_sop_class_name(sop_class) if sop_class else 'missing'}, "
                      "not NM Image Storage or Secondary Capture")
    modality = text("Modality").upper()
    if modality != "NM":
        shown = modality if modality in _MODALITIES else ("missing" if not modality else "unrecognised")
        raise _Reject(f"modality {shown}, not NM")
    if "PixelData" not in ds:
        raise _Reject("no pixel data (not an image)")
    if text("BurnedInAnnotation").upper() == "YES" and not allow_burned_in:
        raise _Reject("Burned In Annotation is YES (text may be drawn into the pixels); "
                      "pass --allow-burned-in after checking the images")


#: What each reading ingests (NM Image Type value 3) and how messages name it.
_STATIC_ONLY: tuple[str, ...] = ("STATIC",)
_STATIC_OR_SWEEP: tuple[str, ...] = ("STATIC", "WHOLE BODY")
_KINDS_NAMED = {_STATIC_ONLY: "planar static", _STATIC_OR_SWEEP: "planar static and whole-body"}


def _check_image_type(text: Callable[[str], str], sop_class: str,
                      kinds: tuple[str, ...] = _STATIC_ONLY) -> tuple[int, str | None]:
    """The number of frames and Image Type value 3 (None if absent), once the study is known
    to be of one of ``kinds`` (planar static; for a two-view task also whole-body)."""
    image_type = [v.upper() for v in _multi(text("ImageType"))]
    n_frames = int(_float(text("NumberOfFrames")) or 1)
    kind = image_type[2] if len(image_type) >= 3 else None
    named = _KINDS_NAMED[kinds]
    if sop_class in (NM_IMAGE_STORAGE, _NM_RETIRED):
        # NM Image Type value 3 (PS3.3 C.8.4.7.1.1): STATIC, DYNAMIC, GATED, WHOLE BODY, TOMO, ...
        if kind is not None and kind not in kinds:
            shown = kind if kind in _NM_IMAGE_TYPES else "unrecognised"
            raise _Reject(f"Image Type {shown}: only {named} studies are ingested")
        if n_frames > 1 and kind is None:
            raise _Reject(f"multi-frame image not marked {' or '.join(kinds)} in Image Type: "
                          f"only {named} studies")
    elif n_frames > 1:
        raise _Reject("multi-frame Secondary Capture: its frames cannot be told apart "
                      "(only single-frame captures are ingested)")
    return n_frames, kind


def _check_geometry(ds: Any, text: Callable[[str], str], square: bool = True) -> tuple[int, int]:
    """Rows and columns, once the pixels are known to be one grayscale sample on a square
    matrix (``square``), or on a matrix at least as long as wide (a whole-body sweep)."""
    photometric = text("PhotometricInterpretation").upper()
    if photometric != "MONOCHROME2" or (_us(ds, "SamplesPerPixel") or 1) != 1:
        shown = photometric if photometric in _PHOTOMETRIC else (
            "unrecognised" if photometric else "missing")
        raise _Reject(f"photometric interpretation {shown}: counts need "
                      "MONOCHROME2 with one sample per pixel")
    rows, cols = _us(ds, "Rows") or 0, _us(ds, "Columns") or 0
    if not square and rows >= cols > 0:
        return rows, cols
    if not square:
        raise _Reject(f"whole-body matrix {rows}x{cols} is wider than long (a sweep runs "
                      "along the rows)")
    if rows != cols or rows == 0:
        raise _Reject(f"matrix {rows}x{cols} is not square (the format stores square images)")
    return rows, cols


def _check_identity(text: Callable[[str], str], sop_uid: str | None) -> str:
    """The Patient ID, once the study has one and a SOP Instance UID."""
    patient_id = text("PatientID")
    if not patient_id:
        raise _Reject("no Patient ID (0010,0020): studies cannot be grouped by patient")
    if not sop_uid:
        raise _Reject("no SOP Instance UID (0008,0018): the study has no stable identity")
    return patient_id


def _transfer_syntax(ds: Any, text: Callable[[str], str]) -> tuple[Any, str]:
    """The transfer syntax and its name, once it is lossless and an installed handler decodes it."""
    from pydicom.pixels import get_decoder
    from pydicom.uid import ImplicitVRLittleEndian

    tsyntax = getattr(getattr(ds, "file_meta", None), "TransferSyntaxUID", None)
    if tsyntax is None:
        tsyntax = ImplicitVRLittleEndian  # the DICOM default when a file states none
    known_ts = _is_transfer_syntax(tsyntax)
    ts_name = tsyntax.name if known_ts else "unrecognised"
    lossy = lossy_reason(ds, tsyntax, text("LossyImageCompression"))
    if lossy is not None:  # by the header, the syntax or the codestream itself
        raise _Reject(lossy)
    if known_ts:
        try:
            decoder = get_decoder(tsyntax)
        except NotImplementedError:
            decoder = None
        if decoder is None:
            raise _Reject(f"transfer syntax {ts_name}: pydicom has no decoder for it")
        if not decoder.is_available:
            needs = "; ".join(decoder.missing_dependencies) or "a pixel data plugin"
            raise _Reject(f"transfer syntax {ts_name}: no installed handler can decode it "
                          f"(install one of: {needs})")
    return tsyntax, ts_name


def _pixels(ds: Any, tsyntax: Any, n_frames: int, rows: int, cols: int) -> np.ndarray:
    """Every frame's raw stored values: read natively when uncompressed, else decoded."""
    pixels = _native_u16(ds, tsyntax, n_frames, rows, cols)
    if pixels is None:
        try:
            pixels = ds.pixel_array
        except Exception as exc:  # noqa: BLE001
            raise _Reject(f"pixel data does not decode ({_exc_text(exc)})", _exc_detail(exc)) from None
    return pixels


def _decode(ds: Any, tsyntax: Any, n_frames: int, rows: int, cols: int, codec: str | None
            ) -> tuple[np.ndarray, str]:
    """The one grayscale frame to keep (raw stored values) and how it was chosen."""
    pixels = _pixels(ds, tsyntax, n_frames, rows, cols)
    frame_choice = "single frame"
    if pixels.ndim == 3 and n_frames > 1:
        index, frame_choice = _choose_frame(ds, n_frames, codec)
        pixels = pixels[index]
    if pixels.ndim != 2:
        raise _Reject(f"pixel array has shape {pixels.shape}, expected one grayscale frame")
    return pixels, frame_choice


def _view_frames(ds: Any, n_frames: int, codec: str | None) -> dict[str, int]:
    """The frame of each view the file holds (anterior and/or posterior), by the View Code
    Sequence of each frame's detector; the lowest energy window number, then the first frame."""
    detectors = [int(v) for v in _values(ds.get("DetectorVector"))] if "DetectorVector" in ds else []
    windows = [int(v) for v in _values(ds.get("EnergyWindowVector"))] if "EnergyWindowVector" in ds else []
    info = ds.get("DetectorInformationSequence") or []
    codes = []
    for item in info:
        seq = item.get("ViewCodeSequence") or []
        codes.append(view_name(_text(seq[0], "CodeValue", codec), _text(seq[0], "CodeMeaning", codec))
                     if seq else None)
    if not any(codes):
        raise _Reject("no anterior or posterior view code (Detector Information Sequence > "
                      "View Code Sequence): the views cannot be told apart")
    if n_frames == 1 and not detectors and len(codes) == 1:
        detectors = [1]
    if len(detectors) != n_frames:
        raise _Reject("no Detector Vector for the frames: their views cannot be told apart")
    frame_views = [codes[d - 1] if 1 <= d <= len(codes) else None for d in detectors]
    chosen = {}
    for view in VIEWS:
        frames = [f for f in range(n_frames) if frame_views[f] == view]
        if len(windows) == n_frames:
            frames.sort(key=lambda f: (windows[f], f))
        if frames:
            chosen[view] = frames[0]
    if not chosen:
        raise _Reject("no frame is of an anterior or posterior view (Detector Vector -> View "
                      "Code Sequence)")
    return chosen


def _read_views_into(ds: Any, text: Callable[[str], str], codec: str | None, sop_class: str,
                     out: dict[str, Any]) -> None:
    """Two-view tasks: fill ``out`` with the file's anterior and/or posterior views, raw counts."""
    n_frames, kind = _check_image_type(text, sop_class, _STATIC_OR_SWEEP)
    whole_body = kind == "WHOLE BODY"
    rows, cols = _check_geometry(ds, text, square=not whole_body)
    patient_id = _check_identity(text, out["sop_uid"])
    tsyntax, ts_name = _transfer_syntax(ds, text)
    pixels = _pixels(ds, tsyntax, n_frames, rows, cols)
    pixels = pixels.reshape(1, *pixels.shape) if pixels.ndim == 2 else pixels
    if pixels.shape != (n_frames, rows, cols):
        raise _Reject(f"pixel array has shape {pixels.shape}, expected {n_frames} frame(s) "
                      f"of {rows}x{cols}")
    frames = _view_frames(ds, n_frames, codec)
    views = {view: _counts(pixels[f], text) for view, f in frames.items()}
    choice = " and ".join(frames) + (" views" if len(frames) > 1 else " view")
    out.update(_fields(ds, text, codec, next(iter(views.values())), patient_id, choice, ts_name))
    del out["image"]
    out.update(views=views, whole_body=whole_body, study_uid=text("StudyInstanceUID") or None)


def _counts(pixels: np.ndarray, text: Callable[[str], str]) -> np.ndarray:
    """Stored values -> counts (Rescale Slope/Intercept), checked to be whole 16-bit counts."""
    slope, intercept = _float(text("RescaleSlope")), _float(text("RescaleIntercept"))
    if (slope not in (None, 1.0)) or (intercept not in (None, 0.0)):
        counts = pixels.astype(np.float64) * (1.0 if slope is None else slope) + (intercept or 0.0)
        if not np.array_equal(counts, np.round(counts)):
            raise _Reject("rescaled pixel values are not whole counts")
    else:
        counts = pixels
    lo, hi = counts.min(), counts.max()
    if lo < 0 or hi > 65535:
        raise _Reject(f"counts {lo:g} to {hi:g} outside 0-65535 after rescale "
                      "(a 16-bit counts image is required)")
    if hi == 0:
        raise _Reject("image has no counts (all pixels zero)")
    return np.ascontiguousarray(counts, dtype=np.uint16)


def _fields(ds: Any, text: Callable[[str], str], codec: str | None, image: np.ndarray,
            patient_id: str, frame_choice: str, ts_name: str) -> dict[str, Any]:
    """What an ingested file contributes: the image and the allow-listed header values."""
    spacing = [_float(v) for v in _multi(text("PixelSpacing"))]
    frame_ms = _float(text("ActualFrameDuration"))
    study_date = next((d for d in map(text, ("StudyDate", "SeriesDate", "AcquisitionDate",
                                             "ContentDate")) if d), None)
    return dict(
        image=image,
        total_counts=int(image.sum(dtype=np.int64)),
        patient=(text("IssuerOfPatientID"), patient_id),
        study_uid=text("StudyInstanceUID") or None,
        sex=normalise_sex(text("PatientSex")),
        age=age_in_years(text("PatientAge"), text("PatientBirthDate"), study_date),
        pixel_spacing_mm=spacing[0] if spacing and spacing[0] and spacing[0] > 0 else float("nan"),
        acquisition_s=frame_ms / 1000.0 if frame_ms and frame_ms > 0 else float("nan"),
        frame_choice=frame_choice,
        transfer_syntax=ts_name,
        technical=_technical(ds, codec),
    )


# --------------------------------------------------------------------------- reading an archive
def _read_one(args: tuple[str, str, bool, bool]) -> dict[str, Any]:
    root, relative, allow, views = args
    out = read_dicom_file(Path(root) / relative, relative, allow, views)
    if out.get("image") is not None:  # what finds a duplicate image without its pixels
        out["image_key"] = image_key(out["image"])
    return out


def _read_narrow(args: tuple[str, str, bool, bool]) -> dict[str, Any]:
    # In a worker: a low-count image (max <= 255, common in scintigraphy) travels back to
    # the parent as uint8, halving the bytes pickled through the pipe; widened on arrival.
    out = _read_one(args)
    image = out.get("image")
    if image is not None and int(image.max()) <= 255:
        out["image"] = image.astype(np.uint8)
    for view, img in (out.get("views") or {}).items():
        if int(img.max()) <= 255:
            out["views"][view] = img.astype(np.uint8)
    return out


def _widen(out: dict[str, Any]) -> dict[str, Any]:
    if out.get("image") is not None:
        out["image"] = out["image"].astype(np.uint16, copy=False)
    for view, img in (out.get("views") or {}).items():
        out["views"][view] = img.astype(np.uint16, copy=False)
    return out


def _to_store(out: dict[str, Any], store: PixelStore, shared: dict[str, Any],
              identifiers: ArchiveIdentifiers | None) -> dict[str, Any]:
    """``out`` with its image and views put in ``store`` (references in their place) and its
    identifier values in ``identifiers`` (then empty in ``out``), made compact: the values
    files repeat (technical fields, frame choice, a patient's identity) are one object each
    (``shared`` holds them)."""
    if identifiers is not None:
        identifiers.add(out["words"], out["exact"])
        out["words"] = out["exact"] = ()
    if out.get("image") is not None:
        out["image"] = store.put(out["image"])
    for view, img in (out.get("views") or {}).items():
        out["views"][view] = store.put(img)
    for key in ("reason", "frame_choice", "transfer_syntax", "sex"):
        if isinstance(out.get(key), str):
            out[key] = sys.intern(out[key])
    if out.get("patient") is not None:
        out["patient"] = tuple(sys.intern(str(v)) for v in out["patient"])
    if out.get("technical") is not None:
        out["technical"] = shared.setdefault(repr(sorted(out["technical"].items())), out["technical"])
    return out


def read_archive(dicom_dir: Path, files: Sequence[str], *, allow_burned_in: bool = False,
                 workers: int | None = None, progress: bool = True, views: bool = False,
                 store: PixelStore | None = None, identifiers: ArchiveIdentifiers | None = None
                 ) -> list[dict[str, Any]]:
    """Read ``files`` (relative to ``dicom_dir``) on ``workers`` processes (default: all
    cores), with a progress bar; results (see :func:`read_dicom_file`, ``views`` for a
    two-view task; an ingested image also has ``image_key``,
    :func:`~thyroid_bench.data.dicom.pixel_store.image_key`) in input order.

    With a ``store`` each image and view goes into it as it is read, and the results hold
    :class:`~thyroid_bench.data.dicom.pixel_store.StoredImage` references in their place
    (and with ``identifiers`` too, their ``words`` and ``exact`` go there, and are empty in the
    results): memory then holds the results' header fields and a few chunks of files being read
    (:func:`~thyroid_bench.data.parallel.ordered_map`), whatever the size of the archive."""
    workers = max(1, int(workers or os.cpu_count() or 1))
    tasks = [(str(dicom_dir), f, allow_burned_in, views) for f in files]
    from tqdm.auto import tqdm

    bar = dict(total=len(tasks), desc="reading DICOM", unit="file", disable=not progress or None)
    if workers == 1 or len(tasks) < 4 * workers:
        results = map(_read_one, tasks)
    else:
        # Chunks of up to 64 files amortise inter-process calls; at least 8 chunks per worker
        # keep the workers evenly loaded to the end.
        chunksize = max(1, min(64, len(tasks) // (workers * 8)))
        results = ordered_map(_read_narrow, tasks, workers=workers, chunksize=chunksize,
                              ahead=4 * workers)
        results = results if store is not None else map(_widen, results)
    if store is not None:
        shared: dict[str, Any] = {}
        results = (_to_store(r, store, shared, identifiers) for r in results)
    return list(tqdm(results, **bar))


# --------------------------------------------------------------------------- splitting
def stratified_group_bins(labels: Sequence[int], groups: Sequence[str], fractions: Sequence[float],
                          seed: int, num_classes: int | None = None) -> np.ndarray:
    """Assign each row to a bin so that no group spans two bins and every bin's class
    counts approach ``fraction * class total``.

    Greedy, like scikit-learn's StratifiedGroupKFold: groups in a seeded random
    order, larger groups first; each goes to the bin where it most reduces the
    squared distance between the bins' class counts and their targets. With one
    row per group the counts per class are the targets rounded. ``labels`` are
    class indices of a task with ``num_classes`` classes (default: the largest
    label + 1; classes absent from ``labels`` do not change the result);
    ``ValueError`` if one lies outside ``0..num_classes-1``.
    """
    labels = np.asarray(labels, dtype=int)
    names, inverse = np.unique(np.asarray(groups, dtype=object).astype(str), return_inverse=True)
    n_classes = num_classes or (int(labels.max()) + 1 if labels.size else 1)
    if labels.size and not (0 <= labels.min() and labels.max() < n_classes):
        raise ValueError(f"labels must be class indices 0-{n_classes - 1}, "
                         f"got {labels.min()} to {labels.max()}")
    per_group = np.zeros((len(names), n_classes))
    np.add.at(per_group, (inverse, labels), 1)
    frac = np.asarray(fractions, dtype=float)
    targets = np.outer(frac / frac.sum(), per_group.sum(axis=0))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    order = order[np.argsort(-per_group[order].sum(axis=1), kind="stable")]
    counts = np.zeros_like(targets)
    bin_of_group = np.empty(len(names), dtype=int)
    for g in order:
        # sum_k (C+G-T)^2 - (C-T)^2 = 2 G.(C-T) + |G|^2; the last term is the same for all bins.
        gain = 2.0 * (counts - targets) @ per_group[g]
        fill = counts.sum(axis=1) / np.maximum(targets.sum(axis=1), 1e-12)
        b = int(np.lexsort((fill, gain))[0])
        bin_of_group[g] = b
        counts[b] += per_group[g]
    return bin_of_group[inverse]


# --------------------------------------------------------------------------- prepare
def _inside(path: Path, folder: Path) -> bool:
    try:
        path.resolve().relative_to(folder.resolve())
        return True
    except ValueError:
        return False


def _match_labels(rows: list[LabelRow], results: list[dict[str, Any]], csv_path: Path
                  ) -> dict[str, LabelRow]:
    """Label row of each file (by path or SOP Instance UID); errors name the CSV lines."""
    by_path = {r.path: r for r in rows if r.path}
    by_uid = {r.sop_instance_uid: r for r in rows if r.sop_instance_uid}
    matched: dict[str, LabelRow] = {}
    used_uids: set[str] = set()
    problems = []
    for res in results:
        row = by_path.get(res["file"])
        uid_row = by_uid.get(res["sop_uid"]) if res["sop_uid"] else None
        if uid_row is not None:
            used_uids.add(res["sop_uid"])
            if row is not None and row.line != uid_row.line:
                problems.append(f"lines {row.line} and {uid_row.line} both label file {res['file']}")
            row = row or uid_row
        if row is not None:
            matched[res["file"]] = row
    for uid, row in by_uid.items():
        if uid not in used_uids:
            problems.append(f"line {row.line}: no readable file in the archive has this "
                            "sop_instance_uid (see the unreadable files in the summary)")
    if problems:
        raise DatasetError(f"{csv_path}: {len(problems)} problem(s) matching the labels CSV to "
                           "the archive; fix them and run again:\n  " + "\n  ".join(problems[:20]))
    return matched


def _assign_splits(studies: list[dict[str, Any]], task: Task, has_split: bool, external: set[str],
                   internal_fraction: float, seed: int, csv_path: Path) -> None:
    """Set ``split`` and ``fold`` on each study (dicts with label, center, patient_id, row):
    the labels CSV's split column if it has one, else the seeded patient-level split."""
    if has_split:
        problems = _official_splits(studies, external)
        if problems:
            raise DatasetError(f"{csv_path}: {len(problems)} problem(s) with the split column:\n  "
                               + "\n  ".join(problems[:20]))
    else:
        _seeded_splits(studies, task, external, internal_fraction, seed)
    _assign_folds(studies, task, seed)


def _official_splits(studies: list[dict[str, Any]], external: set[str]) -> list[str]:
    """Take each study's split from its labels row; return the rows that break a rule."""
    problems = []
    for s in studies:
        s["split"] = s["row"].split
        if s["center"] in external and s["split"] != _EXTERNAL:
            problems.append(f"line {s['row'].line}: centre {s['center']!r} is an "
                            f"--external-center but the split column says {s['split']!r}")
    return problems + split_conflicts(studies)  # one patient, one study: one split


def _seeded_splits(studies: list[dict[str, Any]], task: Task, external: set[str],
                   internal_fraction: float, seed: int) -> None:
    """Groups of studies sharing a patient or a study
    (:func:`~thyroid_bench.data.dicom.identity.isolation_groups`) with a study from an external
    centre -> ``external`` whole; the other groups -> ``train`` / ``internal``, stratified by
    the task's classes."""
    groups = isolation_groups(studies)
    external_groups = {g for s, g in zip(studies, groups) if s["center"] in external}
    pool, pool_groups = [], []
    for s, g in zip(studies, groups):
        if g in external_groups:
            s["split"] = _EXTERNAL
        else:
            pool.append(s)
            pool_groups.append(g)
    if pool:
        strata, n_strata = _strata(pool, task)
        bins = stratified_group_bins(strata, pool_groups,
                                     [1.0 - internal_fraction, internal_fraction], seed,
                                     num_classes=n_strata)
        for s, b in zip(pool, bins):
            s["split"] = (TRAIN_SPLIT, _INTERNAL)[b]


def _strata(studies: list[dict[str, Any]], task: Task) -> tuple[list[int], int]:
    """The stratum of each study (its class; "present, grade unknown" a stratum of its own
    after the classes) and the number of strata."""
    labels = [s["label"] for s in studies]
    if UNKNOWN_GRADE not in labels:
        return labels, task.num_classes
    return [task.num_classes if k == UNKNOWN_GRADE else k for k in labels], task.num_classes + 1


def _assign_folds(studies: list[dict[str, Any]], task: Task, seed: int) -> None:
    """``train`` studies get the task's folds by patient (and study), stratified by class; the
    rest NO_FOLD."""
    train = [s for s in studies if s["split"] == TRAIN_SPLIT]
    strata, n_strata = _strata(train, task)
    folds = (stratified_group_bins(strata, isolation_groups(train),
                                   [1.0] * task.folds, np.random.default_rng([seed, 1]).integers(2**31),
                                   num_classes=n_strata)
             if train else [])
    for s, f in zip(train, folds):
        s["fold"] = int(f)
    for s in studies:
        s.setdefault("fold", NO_FOLD)


def _aggregate(studies: list[dict[str, Any]], identifiers: IdentifierIndex) -> dict[str, Any]:
    """Provenance counts over ingested studies; free text kept only if common and identifier-free."""
    def shared(values_of) -> dict[str, int]:
        patients: dict[str, set[str]] = defaultdict(set)
        studies_with: Counter = Counter()
        for s in studies:
            for v in values_of(s):
                # Checked whole, then shortened: a cut could leave a name's prefix unmatched.
                text = " ".join(str(v).split())
                text = _WITHHELD if identifiers.mentions(text) else text[:64]
                patients[text].add(s["patient_id"])
                studies_with[text] += 1
        out: dict[str, int] = {}
        for text, n in sorted(studies_with.items()):
            key = text if len(patients[text]) >= MIN_PATIENTS_PER_VALUE and text != _WITHHELD else _RARE
            out[key] = out.get(key, 0) + n
        return out

    tech = [s["technical"] for s in studies]
    with_counts = [(t["counts_accumulated"], s["total_counts"]) for t, s in zip(tech, studies)
                   if t["counts_accumulated"] is not None]
    return {
        "manufacturers": shared(lambda s: [s["technical"]["manufacturer"] or "not stated"]),
        "models": shared(lambda s: [s["technical"]["model"] or "not stated"]),
        "collimators": shared(lambda s: s["technical"]["collimators"] or ["not stated"]),
        "collimator_types": shared(lambda s: s["technical"]["collimator_types"] or ["not stated"]),
        "energy_windows_kev": dict(sorted(Counter(w for t in tech for w in t["energy_windows_kev"]
                                                  or ["not stated"]).items())),
        "matrices": {str(k): v for k, v in sorted(Counter(s["matrix"] for s in studies).items())},
        "pixel_spacing_mm": {("not stated" if np.isnan(k) else f"{k:g}"): v for k, v in
                             sorted(Counter(s["pixel_spacing_mm"] for s in studies).items())},
        "frame_choice": dict(sorted(Counter(s["frame_choice"] for s in studies).items())),
        "transfer_syntaxes": dict(sorted(Counter(s["transfer_syntax"] for s in studies).items())),
        "counts_accumulated": {"stated": len(with_counts),
                               "equal_to_pixel_sum": sum(a == b for a, b in with_counts)},
    }


def _reason_kind(reason: str) -> str:
    # Group reasons for the summary: the wording before any detail.
    return re.split(r" \(|:|;", reason)[0]


def prepare_dicom(
    dicom_dir: Path,
    labels: Path,
    name: str,
    version: str,
    key_file: Path,
    external_centers: Iterable[str] = (),
    home: Path | None = None,
    internal_fraction: float = 0.2,
    split_seed: int = 0,
    allow_burned_in: bool = False,
    force: bool = False,
    workers: int | None = None,
    task: str = DEFAULT_TASK,
    skip_unreadable: bool = False,
    keep_ages_over_89: bool = False,
    private_labels: str | Sequence[str] | None = None,
    labels_file: Path | None = None,
) -> Path:
    """Build dataset ``name`` ``version`` of ``task`` from a DICOM archive and a labels CSV.

    The labels CSV names classes of ``task`` (a registered task name); labels, class
    counts and the stratified split all follow that task. See the module docstring
    and README 'Labels CSV'. Every file under ``dicom_dir`` ends up as a row or in
    ``rejected.csv`` (by pseudonym; the organiser's report with the real paths is written
    beside ``key_file``: :mod:`thyroid_bench.data.dicom.report`); a summary is printed. Ages
    above 89 are stored as 90 unless ``keep_ages_over_89``. ``private_labels`` (evaluation
    splits) withholds their labels: the organisers' labels file ``labels_file`` (default
    ``<home>/private/<name>@<version>/labels.csv``; :mod:`thyroid_bench.data.private`). Returns
    the dataset folder.
    """
    from thyroid_bench.data.format import default_home, write_dataset

    dicom_dir, labels, key_file = Path(dicom_dir), Path(labels), Path(key_file).expanduser()
    external = [str(c).strip() for c in external_centers]
    _check_options(dicom_dir, key_file, name, version, home, internal_fraction, workers, force)
    check_paths(dicom_dir=dicom_dir, labels=labels, key_file=key_file, home=home, name=name,
                version=version)
    the_task = get_task(task)
    withheld = private.private_splits(private_labels, the_task)
    if withheld:  # checked before the archive is read
        base = Path(home or default_home())
        labels_file = private.check_labels_path(
            labels_file or private.default_labels_path(base, name, version), base / name / version)
    rows, has_split, centers = _read_labels(labels, the_task, external)
    listing = walk_archive(dicom_dir, skip_unreadable=skip_unreadable)  # refuses by default
    files = listing.files
    _check_files_named([r for r in rows if not listing.covers(r.path)], files, labels, dicom_dir)
    key, pseud = _pseudonymizer(key_file)
    report = organiser_report_path(key_file, name, version)
    check_report_folder(report)

    views = reads_views(the_task)
    base = Path(home or default_home())
    # The archive's pixels wait on disk (not in memory) from the moment they are read until
    # the writer draws their shard.
    spill = spill_folder(base / name, base)
    found = ArchiveIdentifiers(key)  # keyed hashes as they arrive, never values in clear
    with PixelStore(spill, expected=len(files)) as store:
        results = read_archive(dicom_dir, files, allow_burned_in=allow_burned_in, workers=workers,
                               views=views, store=store, identifiers=found)
        matched = _match_labels(rows, results, labels)
        details = {r["file"]: r["detail"] for r in results if r.get("detail")}
        identifiers = found.index
        studies, rejected = (pair_studies(results, matched, pseud, labels, store) if views
                             else _screen(results, matched, pseud))
        del results, matched  # the studies keep what they need of them
        rejected += listing.rejected({r.path: r.line for r in rows if r.path})
        cap_ages(studies, keep_ages_over_89)
        _assign_splits(studies, the_task, has_split, set(external), float(internal_fraction),
                       int(split_seed), labels)
        summary = _summary(listing.seen, studies, rejected, key, allow_burned_in, the_task, views)
        splits = _split_rows(studies, the_task)
        check_dicom_split_sizes(splits, the_task, what=f"dataset {name} {version}", summary=summary,
                                report=report, report_text=lambda: organiser_report(rejected, pseud, details),
                                external=external, has_split=has_split, centers=centers)
        provenance = _provenance(summary, studies, identifiers, the_task, labels_rows=len(rows),
                                 has_split=has_split, centers=centers, external=external,
                                 internal_fraction=float(internal_fraction), split_seed=int(split_seed),
                                 allow_burned_in=allow_burned_in, keep_ages_over_89=keep_ages_over_89)
        path = write_dataset(
            name, version, {s: _stored_rows(r, store, the_task) for s, r in splits.items()},
            task=the_task, home=home, provenance=provenance, licence="other",
            card=partial(dicom_card, rejected_file=REJECTED_CSV),
            extra_files={REJECTED_CSV: published_rejections(rejected, pseud, identifiers)}, force=force,
            private_labels=withheld, labels_file=labels_file,
        )
        write_organiser_report(report, organiser_report(rejected, pseud, details))  # folder checked
        index = write_keyed_index(identifier_index_path(key_file, name, version), found.keyed(),
                                  name, version)
    _print_summary(summary, splits, rejected, path, the_task)
    print(f"  organiser's report, real paths (private: keep it with the key): {printable(report)}")
    print(f"  identifier index for `publish` (keyed hashes; keep it with the key): {printable(index)}")
    if withheld:
        print(f"  {private.labels_message(labels_file, withheld)}")
    return path


def _check_options(dicom_dir: Path, key_file: Path, name: str, version: str, home: Path | None,
                   internal_fraction: float, workers: int | None, force: bool) -> None:
    """Refuse bad options before anything is read or written."""
    from thyroid_bench.data.format import check_name_version, default_home

    check_name_version(name, version)
    if not 0.0 < float(internal_fraction) < 1.0:
        raise DatasetError(f"--internal-fraction {internal_fraction} must lie strictly between 0 and 1")
    if workers is not None and int(workers) < 1:
        raise DatasetError(f"--workers {workers} must be at least 1")
    target = Path(home or default_home()) / name / version
    if target.exists() and not force:
        raise DatasetError(f"{target} already exists; pass --force to rebuild it")
    if not dicom_dir.is_dir():
        raise DatasetError(f"--dicom-dir {dicom_dir} is not a folder; point it at the DICOM archive")
    if _inside(key_file, dicom_dir) or _inside(key_file, target.parent):
        raise DatasetError(f"--key-file {key_file} lies inside the archive or the dataset folder; "
                           "keep the key apart from both (e.g. ~/.thyroid-bench/pseudonym.key)")


def _read_labels(labels: Path, task: Task, external: list[str]
                 ) -> tuple[list[LabelRow], bool, list[str]]:
    """The labels CSV's rows (labels parsed as classes of ``task``), whether it has a split
    column, and its centres, once every ``--external-center`` is one of them."""
    rows, has_split = read_labels_csv(labels, task)
    centers = sorted({r.center for r in rows})
    unknown = [c for c in external if c not in centers]
    if unknown:
        raise DatasetError(f"--external-center {unknown} not in the labels CSV {labels} "
                           f"(its centres: {centers})")
    return rows, has_split, centers


def _check_files_named(rows: list[LabelRow], files: list[str], labels: Path, dicom_dir: Path) -> None:
    """Every path the labels CSV names must be a file of the archive."""
    present = set(files)
    missing = [r for r in rows if r.path is not None and r.path not in present]
    if missing:
        raise DatasetError(f"{labels}: {len(missing)} row(s) name files that are not in {dicom_dir}:\n  "
                           + "\n  ".join(f"line {r.line}: {r.path}" for r in missing[:20]))


def _pseudonymizer(key_file: Path) -> tuple[bytes, Pseudonymizer]:
    """The key (created, with a notice, if the file does not exist) and its pseudonymizer."""
    try:
        key, created = load_or_create_key(key_file)
    except OSError as exc:
        raise DatasetError(os_error_line(exc, f"--key-file {printable(key_file)}: cannot read or "
                                         "create the pseudonym key")) from None
    if created:
        print(f"created a new pseudonym key at {key_file} (mode 0600): keep it secret, keep it "
              "outside the dataset and back it up; the same key gives the same pseudonyms")
    return key, Pseudonymizer(key)


class _Seen:
    """The studies kept so far, to reject a later file with the same SOP Instance UID or pixels."""

    def __init__(self) -> None:
        self.uids: dict[str, LabelRow] = {}
        self.images = ImageIndex()

    def duplicate(self, res: dict[str, Any]) -> str | None:
        """Why ``res`` duplicates a kept study, or None."""
        if res["sop_uid"] in self.uids:
            return (f"duplicate SOP Instance UID: same as the study of labels line "
                    f"{self.uids[res['sop_uid']].line}")
        return self.images.duplicate(res["image_key"])

    def add(self, res: dict[str, Any], row: LabelRow) -> None:
        self.uids[res["sop_uid"]] = row
        self.images.add(res["image_key"], row)


def _screen(results: list[dict[str, Any]], matched: dict[str, LabelRow], pseud: Pseudonymizer
            ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Split read files (in path order) into studies and rejections: unreadable or refused
    files, files without a label row, duplicates of an earlier study and the files of a study
    (Study Instance UID) that name different patients are rejected."""
    rejected: list[dict[str, Any]] = []
    studies: list[dict[str, Any]] = []
    seen = _Seen()
    for res in results:
        row = matched.get(res["file"])
        reason = res["reason"]
        if reason is None and row is None:
            reason = "no label row"
        elif reason is None:
            reason = seen.duplicate(res)
        if reason is not None:
            rejected.append({"file": res["file"], "reason": reason,
                             "labels_line": row.line if row else None})
            continue
        seen.add(res, row)
        studies.append(_study(res, row, pseud))
    bad = set(inconsistent_studies(studies))
    rejected += [{"file": studies[i]["file"], "reason": STUDY_PATIENTS_DIFFER,
                  "labels_line": studies[i]["row"].line} for i in sorted(bad)]
    return [s for i, s in enumerate(studies) if i not in bad], rejected


def _study(res: dict[str, Any], row: LabelRow, pseud: Pseudonymizer) -> dict[str, Any]:
    """One ingested study: the dataset columns (pseudonymised ids) plus what provenance needs."""
    image = res["image"]
    return {
        "case_id": pseud.case(res["sop_uid"]),
        "patient_id": pseud.patient(row.center, *res["patient"]),
        "study_id": pseud.study(res["study_uid"], res["sop_uid"]), "file": res["file"],
        "image": image, "label": row.label, "center": row.center,
        "matrix": int(image.shape[0]), "pixel_spacing_mm": float(res["pixel_spacing_mm"]),
        "total_counts": res["total_counts"],
        "acquisition_s": float(res["acquisition_s"]), "sex": res["sex"], "age": res["age"],
        "row": row, "frame_choice": res["frame_choice"],
        "transfer_syntax": res["transfer_syntax"], "technical": res["technical"],
    }


def _summary(files_seen: int, studies: list[dict[str, Any]], rejected: list[dict[str, Any]],
             key: bytes, allow_burned_in: bool, task: Task, views: bool = False) -> dict[str, Any]:
    """Files seen, ingested and rejected (by kind of reason, most frequent first), key id; for
    a two-view task also the studies made, for a task with a detection reading whether every
    study has its grade."""
    by_reason = Counter(_reason_kind(r["reason"]) for r in rejected)
    ingested = sum(len(s["files"]) for s in studies) if views else len(studies)
    summary = {
        "files_seen": files_seen, "ingested": ingested, "rejected": len(rejected),
        "rejected_by_reason": dict(sorted(by_reason.items(), key=lambda kv: (-kv[1], kv[0]))),
        "key_id": key_id(key), "burned_in_allowed": bool(allow_burned_in),
    }
    if views:
        summary["studies"] = len(studies)
    if task.detection is not None:
        summary["grades_known"] = grades_known([s["row"] for s in studies])
    assert summary["ingested"] + summary["rejected"] == summary["files_seen"]
    return summary


def _split_rows(studies: list[dict[str, Any]], task: Task) -> dict[str, list[dict[str, Any]]]:
    """The studies of each of the task's splits, in case_id order: dataset rows (the task's
    columns and the study pseudonym ``study_id``, an optional column of format v1) and what
    provenance needs besides, which the writer ignores (no copy is made: an archive's studies
    are held once)."""
    ordered = sorted(studies, key=lambda s: s["case_id"])
    return {split: [s for s in ordered if s["split"] == split] for split in task.splits}


def _stored_rows(rows: list[dict[str, Any]], store: PixelStore, task: Task) -> SplitRows:
    """One split's rows for the writer: their columns, and their images fetched from ``store``
    one at a time as the writer draws them (in place of the rows' references to them)."""
    images = image_columns(task)
    return SplitRows(rows, ({c: store.get(row[c]) for c in images} for row in rows))


def _provenance(summary: dict[str, Any], studies: list[dict[str, Any]], identifiers: IdentifierIndex,
                task: Task, *, labels_rows: int, has_split: bool, centers: list[str],
                external: list[str], internal_fraction: float, split_seed: int,
                allow_burned_in: bool, keep_ages_over_89: bool) -> dict[str, Any]:
    """The manifest's provenance: ingest counts, labels CSV, split rule, pseudonymisation (with
    :func:`~thyroid_bench.data.dicom.report.publication_notes`), header allow-list and the
    technical aggregates."""
    labels_csv = {"rows": labels_rows, "split_column": has_split, "centers": centers}
    if "grades_known" in summary:
        labels_csv["grades_known"] = summary["grades_known"]
    allow = dict(HEADER_ALLOW_LIST)
    if "studies" in summary:
        allow.update(VIEW_HEADER_ALLOW_LIST)
    return {
        "source": "dicom",
        "ingest": {k: summary[k] for k in ("files_seen", "ingested", "rejected", "rejected_by_reason",
                                           "studies") if k in summary},
        "labels_csv": labels_csv,
        "split": {"method": "official split column" if has_split else
                  "by patient and study (a patient with a study at an external centre is "
                  "external), stratified by label (greedy, seeded)",
                  "external_centers": external, "internal_fraction": internal_fraction,
                  "seed": split_seed, "folds": task.folds},
        "pseudonymisation": {
            "method": "HMAC-SHA-256", "key_id": summary["key_id"],
            "hex_digits_kept": PSEUDONYM_HEX_CHARS,
            "case_id": "HMAC(key, SOP Instance UID)",
            "patient_id": "HMAC(key, Issuer of Patient ID, Patient ID) when the issuer is given "
                          "(one patient across centres), else HMAC(key, centre, Patient ID)",
            "study_id": "HMAC(key, Study Instance UID) (of the SOP Instance UID for a file "
                        "without one)",
            **publication_notes(keep_ages_over_89),
        },
        "header_allow_list": allow,
        "burned_in_allowed": bool(allow_burned_in),
        "min_patients_per_reported_value": MIN_PATIENTS_PER_VALUE,
        "technical": _aggregate(studies, identifiers),
    }


def _print_summary(summary: dict[str, Any], splits: dict[str, list[dict[str, Any]]],
                   rejected: list[dict[str, Any]], path: Path, task: Task) -> None:
    """Files seen = ingested + rejected, the rejections by reason, the split sizes (and, where
    they apply, the two-view studies made and whether grade metrics can be computed)."""
    print(f"DICOM ingestion: {summary['files_seen']} files seen = {summary['ingested']} ingested + "
          f"{summary['rejected']} rejected")
    if "studies" in summary:
        print(f"  {summary['studies']} studies, each an anterior and a posterior view "
              f"({summary['ingested']} files)")
    if summary.get("grades_known") is False:
        print(f"  presence-only labels: some studies are '{task.detection.present_label}' "
              "without a grade, so grade metrics (accuracy, kappa, grade MAE, confusion matrix) "
              "are skipped for this dataset; detection metrics are computed")
    for reason, n in summary["rejected_by_reason"].items():
        print(f"  rejected, {reason}: {n}")
    print("  splits: " + ", ".join(f"{s} {len(v)}" for s, v in splits.items()))
    if rejected:
        print(f"  rejected files (by pseudonym) and reasons: {path / REJECTED_CSV}")
    sys.stdout.flush()
