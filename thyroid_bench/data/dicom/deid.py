"""De-identification for DICOM ingestion: keyed pseudonyms, the header allow-list, age and sex.

Nothing from a DICOM header enters a dataset unless it is on
:data:`HEADER_ALLOW_LIST`. Identifiers are replaced by keyed pseudonyms:
HMAC-SHA-256 (RFC 2104 with SHA-256) under a secret key kept in a file outside
the dataset. The same key gives the same pseudonyms on a re-run; without the
key a pseudonym cannot be linked back to the identifier (HMAC is a PRF), and
the 96 bits kept make collisions negligible (birthday bound ~2^48 studies).

Dates are read only to compute an age in whole years and then dropped; sex is
reduced to ``F`` / ``M`` / ``unknown``. Free-text technical values
(manufacturer, model, collimator name) are reported only as counts in the
provenance, and only when they occur for at least :data:`MIN_PATIENTS_PER_VALUE`
distinct patients and contain no identifier of the study they came from.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import stat
from array import array
from collections.abc import Iterable
from datetime import date
from pathlib import Path

import numpy as np

from thyroid_bench.data.dicom.identity import patient_identity, study_identity
from thyroid_bench.errors import DatasetError

__all__ = [
    "HEADER_ALLOW_LIST",
    "IDENTIFIER_KEYWORDS",
    "PSEUDONYM_HEX_CHARS",
    "MIN_PATIENTS_PER_VALUE",
    "KEY_BYTES",
    "load_or_create_key",
    "key_id",
    "Pseudonymizer",
    "normalise_sex",
    "age_in_years",
    "IdentifierIndex",
]

#: Bytes of a newly created key (256 bits, the HMAC-SHA-256 block-size-safe choice).
KEY_BYTES = 32
#: Shortest key accepted from an existing key file.
MIN_KEY_BYTES = 16
#: Hex characters kept from each HMAC (96 bits).
PSEUDONYM_HEX_CHARS = 24
#: A free-text technical value is reported only if this many distinct patients share it.
MIN_PATIENTS_PER_VALUE = 5

#: Every header attribute the reader looks at, and what becomes of it. Anything not
#: listed is never read. "checked" attributes decide whether a file is ingested and
#: are not stored; "pseudonym" ones are replaced by a keyed HMAC; "provenance" ones
#: appear only as counts over the whole archive in manifest.json.
HEADER_ALLOW_LIST: dict[str, str] = {
    "SOPClassUID": "checked: NM Image Storage, or Secondary Capture with Modality NM",
    "Modality": "checked: must be NM",
    "ImageType": "checked (NM Image Storage): value 3, when present, must be STATIC",
    "BurnedInAnnotation": "checked: YES is rejected unless --allow-burned-in",
    "LossyImageCompression": "checked: 01 (lossy) is rejected: lossy compression alters counts",
    "PhotometricInterpretation": "checked: must be MONOCHROME2",
    "SamplesPerPixel": "checked: must be 1",
    "Rows": "dataset column matrix (must equal Columns)",
    "Columns": "dataset column matrix (must equal Rows)",
    "PixelData": "dataset column image (raw counts, 16-bit)",
    "RescaleSlope": "applied to the pixels (counts = slope * stored + intercept)",
    "RescaleIntercept": "applied to the pixels",
    "NumberOfFrames": "frame choice for multi-frame static NM; multi-frame Secondary Capture rejected",
    "DetectorVector": "frame choice: which detector each frame comes from",
    "EnergyWindowVector": "frame choice: lowest energy window number wins",
    "DetectorInformationSequence/ViewCodeSequence": "frame choice: the anterior view",
    "PixelSpacing": "dataset column pixel_spacing_mm (row spacing)",
    "ActualFrameDuration": "dataset column acquisition_s (ms / 1000)",
    "CountsAccumulated": "provenance: how often it equals the pixel sum",
    "EnergyWindowInformationSequence/EnergyWindowRangeSequence": "provenance: energy windows (keV)",
    "DetectorInformationSequence/CollimatorGridName": "provenance: collimator names (rare values withheld)",
    "DetectorInformationSequence/CollimatorType": "provenance: collimator types (rare values withheld)",
    "Manufacturer": "provenance: manufacturers (rare values withheld)",
    "ManufacturerModelName": "provenance: camera models (rare values withheld)",
    "TransferSyntaxUID": "checked: lossy syntaxes rejected, JPEG 2000 / lossless JPEG codestreams "
                         "checked for lossy coding; decoded if an installed handler allows; "
                         "provenance: counts",
    "SOPInstanceUID": "pseudonym: case_id = HMAC(key, SOP Instance UID)",
    "PatientID": "pseudonym: patient_id = HMAC(key, Issuer of Patient ID, Patient ID), or "
                 "HMAC(key, centre, Patient ID) when the issuer is absent",
    "IssuerOfPatientID": "pseudonym: part of the patient_id input (a patient across centres)",
    "StudyInstanceUID": "pseudonym: study_id = HMAC(key, Study Instance UID); a study stays in "
                        "one split",
    "PatientSex": "dataset column sex (F / M / unknown)",
    "PatientAge": "dataset column age (whole years; above 89 stored as 90 unless "
                  "--keep-ages-over-89)",
    "PatientBirthDate": "age only (birth date to study date, in whole years); never stored",
    "StudyDate": "age only; never stored (fallbacks: SeriesDate, AcquisitionDate, ContentDate)",
}

#: Header values that are identifiers: never stored, used only to check that no
#: rejected file's path and no reported technical value repeats one of them.
IDENTIFIER_KEYWORDS: tuple[str, ...] = (
    "PatientName", "PatientID", "OtherPatientIDs", "PatientBirthDate", "InstitutionName",
    "AccessionNumber", "StudyID", "StudyDate", "StudyInstanceUID", "SeriesInstanceUID",
    "SOPInstanceUID", "ReferringPhysicianName", "StationName",
)


# --------------------------------------------------------------------------- key
def load_or_create_key(path: Path) -> tuple[bytes, bool]:
    """Read the pseudonym key at ``path``, or create one (32 random bytes, mode 0600).

    Returns ``(key, created)``. The key is the file's raw bytes; keep it outside
    any dataset and back it up: a lost key cannot be recovered and a new one
    gives new pseudonyms.
    """
    path = Path(path).expanduser()
    if path.exists():
        if not path.is_file():
            raise DatasetError(f"key file {path} is not a file; pass --key-file a file path")
        key = path.read_bytes()
        if len(key) < MIN_KEY_BYTES:
            raise DatasetError(f"key file {path} holds {len(key)} bytes, fewer than {MIN_KEY_BYTES}: "
                               "it is not a thyroid-bench key; point --key-file at the right file, "
                               "or at a new path to create a fresh key (pseudonyms will then change)")
        return key, False
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    key = secrets.token_bytes(KEY_BYTES)
    # O_EXCL: never overwrite a key created concurrently; 0600: readable by the owner only.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "wb") as fh:
        fh.write(key)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    return key, True


def key_id(key: bytes) -> str:
    """A short public fingerprint of the key (tells whether two runs used the same key)."""
    return hashlib.sha256(b"thyroid-bench key id v1\x00" + key).hexdigest()[:16]


class Pseudonymizer:
    """Keyed pseudonyms: HMAC-SHA-256 of a domain tag and the identifier, truncated to 96 bits."""

    def __init__(self, key: bytes) -> None:
        if len(key) < MIN_KEY_BYTES:
            raise ValueError(f"a pseudonym key needs at least {MIN_KEY_BYTES} bytes")
        self._key = bytes(key)

    def _mac(self, domain: str, *parts: str) -> str:
        # Domain separation plus NUL-joined parts: ("ab", "c") and ("a", "bc") differ.
        msg = f"thyroid-bench/v1/{domain}".encode() + b"".join(
            b"\x00" + p.encode("utf-8", "surrogateescape") for p in parts)
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest()[:PSEUDONYM_HEX_CHARS]

    def case(self, sop_instance_uid: str) -> str:
        """``c-...``: the case pseudonym of a SOP Instance UID."""
        return "c-" + self._mac("case", sop_instance_uid.strip())

    def patient(self, center: str, issuer: str, patient_id: str) -> str:
        """``p-...``: the patient pseudonym of (issuer, Patient ID) when the issuer is given,
        else of (centre, Patient ID): two hospitals' ID 1001 are two people unless one
        authority issued both (:func:`~thyroid_bench.data.dicom.identity.patient_identity`)."""
        return "p-" + self._mac("patient", *patient_identity(center, issuer, patient_id))

    def study(self, study_uid: str | None, sop_instance_uid: str) -> str:
        """``s-...``: the study pseudonym of a Study Instance UID (of the SOP Instance UID for
        a file without one: :func:`~thyroid_bench.data.dicom.identity.study_identity`)."""
        return "s-" + self._mac("study", *study_identity(study_uid, sop_instance_uid))

    def path(self, relative_path: str) -> str:
        """``f-...``: the pseudonym that stands in for a rejected file's path (relative to the
        archive; a name that is not UTF-8 is taken as its bytes) in the published dataset."""
        return "f-" + self._mac("path", relative_path)


# --------------------------------------------------------------------------- sex and age
def normalise_sex(value: object) -> str:
    """DICOM Patient's Sex (M, F, O or empty) as the dataset's ``F`` / ``M`` / ``unknown``."""
    text = str(value or "").strip().upper()
    return text if text in ("F", "M") else "unknown"


_AGE = re.compile(r"^(\d{3})([DWMY])$")
_DAYS_PER_YEAR = 365.2425  # mean Gregorian year


def _parse_da(value: object) -> date | None:
    text = str(value or "").strip()
    if not re.fullmatch(r"\d{8}", text):
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def age_in_years(patient_age: object = None, birth_date: object = None,
                 study_date: object = None) -> int | None:
    """Age in whole (completed) years, or ``None`` if it cannot be told.

    Patient's Age (AS, ``nnnD/W/M/Y``) wins; otherwise birth date (DA) to study
    date (DA). Ages outside 0-130 are treated as unknown.
    """
    years: int | None = None
    m = _AGE.match(str(patient_age or "").strip().upper())
    if m:
        n, unit = int(m.group(1)), m.group(2)
        years = {"Y": n, "M": n // 12, "W": int(n * 7 / _DAYS_PER_YEAR),
                 "D": int(n / _DAYS_PER_YEAR)}[unit]
    else:
        born, seen = _parse_da(birth_date), _parse_da(study_date)
        if born and seen and seen >= born:
            years = seen.year - born.year - ((seen.month, seen.day) < (born.month, born.day))
    if years is None or not 0 <= years <= 130:
        return None
    return years


# --------------------------------------------------------------------------- identifiers
_TOKEN_SPLIT = re.compile(r"[\W_]+")  # Unicode-aware: CJK and accented names stay words


def _upper(value: object) -> str:
    return str(value or "").strip().upper()


class IdentifierIndex:
    """Identifier values found in an archive's headers, to keep them out of paths and text.

    ``words`` are names (patient, institution, physician, station): every word of 2+
    characters is matched as a whole word, and the whole value as a substring. ``exact``
    are IDs, UIDs and dates: a value of 4+ characters is matched as a substring (an ID
    inside a file name), a 3-character one as a whole word, shorter ones not at all.
    Matching ignores case; a lookup costs a few set probes per character of the text,
    however many identifiers the archive holds. Values are added as files are read
    (:meth:`add`) and held as 64-bit hashes of their upper-case text in sorted arrays, eight
    bytes a value, not as text (a hash shared by another text would withhold that text too,
    never let an identifier through).
    """

    def __init__(self, words: Iterable[object] = (), exact: Iterable[object] = ()) -> None:
        self._whole, self._tokens = array("q"), array("q")  # hashes added since the last lookup
        self._lengths: set[int] = set()
        empty = np.empty(0, dtype=np.int64)
        self._folded: tuple[np.ndarray, np.ndarray] = (empty, empty)  # sorted, each once
        self._by_length: list[int] = []  # the whole values' lengths, ascending
        self._stale = False
        self.add(words, exact)

    def add(self, words: Iterable[object] = (), exact: Iterable[object] = ()) -> None:
        """Add the identifier values of one more file (or of many)."""
        for v in words:
            text = _upper(v)
            if len(text) >= 4:
                self._whole.append(hash(text))
                self._lengths.add(len(text))
            self._tokens.extend(hash(t) for t in _TOKEN_SPLIT.split(text) if len(t) >= 2)
        for v in exact:
            text = _upper(v)
            if len(text) >= 4:
                self._whole.append(hash(text))
                self._lengths.add(len(text))
            elif len(text) == 3:
                self._tokens.append(hash(text))  # 1-2 character IDs ("2") would match half the paths
        self._stale = True

    def _hashes(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole values' and the tokens' hashes, sorted and each once (the added ones are
        folded in at the first lookup after an addition, and held only there)."""
        if self._stale:
            whole, tokens = self._folded
            self._folded = (np.union1d(whole, np.frombuffer(self._whole, dtype=np.int64)),
                            np.union1d(tokens, np.frombuffer(self._tokens, dtype=np.int64)))
            self._whole, self._tokens = array("q"), array("q")
            self._by_length = sorted(self._lengths)
            self._stale = False
        return self._folded

    def mentions(self, text: str) -> bool:
        """Whether ``text`` contains one of the identifier values or name words."""
        whole, tokens = self._hashes()
        upper = text.upper()
        if _any_in([hash(t) for t in _TOKEN_SPLIT.split(upper) if t], tokens):
            return True
        n = len(upper)
        return _any_in([hash(upper[i:i + k]) for k in self._by_length if k <= n
                        for i in range(n - k + 1)], whole)


def _any_in(values: list[int], sorted_hashes: np.ndarray) -> bool:
    """Whether any of ``values`` is in ``sorted_hashes`` (sorted, unique int64)."""
    if not values or not sorted_hashes.size:
        return False
    probe = np.asarray(values, dtype=np.int64)
    at = np.searchsorted(sorted_hashes, probe).clip(max=sorted_hashes.size - 1)
    return bool((sorted_hashes[at] == probe).any())
