"""What a DICOM dataset publishes about its rejected files, and the organiser's private report.

The dataset folder is what ``publish`` uploads, so it holds nothing derived from the archive's
file or folder names or from header text. Folder names are chosen by people and routinely name
patients in spellings no header repeats (a birth date ``1935-06-15`` for ``19350615``, a patient
ID without its dashes), so no path is published, however harmless it looks:

* ``rejected.csv`` in the dataset (:func:`published_rejections`): one line per rejected file,
  ``file`` its keyed path pseudonym (``f-`` + HMAC-SHA-256(key, relative path), the
  :meth:`~thyroid_bench.data.dicom.deid.Pseudonymizer.path` pseudonym), ``reason`` (fixed text
  that quotes no header value) and ``labels_line`` (its line in the labels CSV, if any).
* the organiser's report (:func:`write_organiser_report`), written beside the key file, outside
  any dataset folder: the same lines with the real relative path (names that are not UTF-8
  escaped as ``\\xNN``) and any detail of the reader's error (library messages can quote header
  values, so they never enter the dataset). It is readable by its owner only, like the key.

Ages above 89 are identifying on their own (HIPAA Safe Harbor, 45 CFR 164.514(b)(2)(i)(C)):
:func:`cap_ages` stores them as 90 unless the user keeps them (``--keep-ages-over-89``).
"""

from __future__ import annotations

import csv
import io
import os
import re
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from thyroid_bench.atomic import atomic_write_private
from thyroid_bench.data.dicom.deid import IdentifierIndex, Pseudonymizer
from thyroid_bench.errors import DatasetError, os_error_line, printable

__all__ = [
    "AGE_CAP",
    "KEEP_AGES_OPTION",
    "PUBLISHED_COLUMNS",
    "REPORT_COLUMNS",
    "organiser_report_path",
    "published_rejections",
    "organiser_report",
    "write_organiser_report",
    "cap_ages",
    "publication_notes",
    "check_report_folder",
]

#: Ages above 89 are stored as this (HIPAA Safe Harbor groups them as "90 or older").
AGE_CAP = 90
#: The command-line option that keeps ages above 89 as they are.
KEEP_AGES_OPTION = "--keep-ages-over-89"
#: Columns of the published ``rejected.csv``.
PUBLISHED_COLUMNS = ("file", "reason", "labels_line")
#: Columns of the organiser's report.
REPORT_COLUMNS = ("file", "file_pseudonym", "reason", "labels_line", "detail")
_REASON_WITHHELD = "rejected (reason withheld: it repeats an identifier from a DICOM header)"


def organiser_report_path(key_file: Path, name: str, version: str) -> Path:
    """Where the organiser's report of dataset ``name`` ``version`` goes: beside the key file
    (``rejected-<name>-<version>.csv``), which is refused inside the archive and the dataset."""
    return Path(key_file).expanduser().parent / f"rejected-{name}-{version}.csv"


def _public_reason(reason: str, identifiers: IdentifierIndex) -> str:
    # Reasons are fixed text; this is a second line of defence for one that is not.
    if not identifiers.mentions(reason):
        return reason
    kind = re.split(r" \(|:|;", reason)[0]
    return kind if kind and not identifiers.mentions(kind) else _REASON_WITHHELD


def published_rejections(rejected: Iterable[Mapping[str, Any]], pseud: Pseudonymizer,
                         identifiers: IdentifierIndex) -> bytes:
    """The dataset's ``rejected.csv`` (UTF-8): each rejected file as its path pseudonym, its
    reason and its labels-CSV line, in pseudonym order (which says nothing of the paths)."""
    lines = sorted((pseud.path(r["file"]), _public_reason(r["reason"], identifiers),
                    "" if r.get("labels_line") is None else str(r["labels_line"]))
                   for r in rejected)
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PUBLISHED_COLUMNS)
    writer.writerows(lines)
    return buf.getvalue().encode("utf-8")


def organiser_report(rejected: Iterable[Mapping[str, Any]], pseud: Pseudonymizer,
                     details: Mapping[str, str] | None = None) -> bytes:
    """The organiser's report (UTF-8 CSV, :data:`REPORT_COLUMNS`): real relative paths (names
    that are not UTF-8 escaped), their pseudonyms, reasons, labels-CSV lines and, from
    ``details`` (path -> text), what the reader's error said; in path order."""
    details = details or {}
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(REPORT_COLUMNS)
    for r in sorted(rejected, key=lambda r: printable(r["file"])):
        line = r.get("labels_line")
        writer.writerow([printable(r["file"]), pseud.path(r["file"]), r["reason"],
                         "" if line is None else str(line), printable(details.get(r["file"], ""))])
    return buf.getvalue().encode("utf-8")


def write_organiser_report(path: Path, content: bytes) -> Path:
    """Write the organiser's report at ``path`` atomically (a temporary file renamed over any
    earlier one), readable by its owner only; an OS error is one line naming the path."""
    try:
        return atomic_write_private(path, content)
    except OSError as exc:
        raise DatasetError(os_error_line(
            exc, "writing the organiser's report of rejected files (real paths; the dataset "
                 "itself is written)",
            "make the key file's folder writable, or keep the key in a writable folder "
            "(--key-file)")) from None


def cap_ages(studies: Iterable[dict[str, Any]], keep_ages_over_89: bool = False) -> int:
    """Store every ``age`` above 89 as :data:`AGE_CAP` (in place) unless ``keep_ages_over_89``;
    returns how many ages were changed."""
    if keep_ages_over_89:
        return 0
    changed = 0
    for s in studies:
        if s.get("age") is not None and s["age"] > AGE_CAP - 1:
            changed += s["age"] != AGE_CAP
            s["age"] = AGE_CAP
    return changed


def publication_notes(keep_ages_over_89: bool) -> dict[str, str]:
    """The manifest's ``provenance.pseudonymisation`` entries on rejected paths and ages."""
    return {
        "rejected_paths": "rejected.csv names each rejected file by its keyed pseudonym "
                          "f- + HMAC(key, relative path); the organiser's report with the real "
                          "paths is kept beside the key, outside the dataset",
        "ages_over_89": ("kept as recorded (--keep-ages-over-89)" if keep_ages_over_89 else
                         f"stored as {AGE_CAP} (HIPAA Safe Harbor)"),
    }


def check_report_folder(path: Path) -> None:
    """Refuse, before the archive is read, a report path whose folder cannot be written."""
    folder = Path(path).parent
    if not os.access(folder, os.W_OK | os.X_OK):
        raise DatasetError(f"the organiser's report of rejected files goes beside the key, in "
                           f"{printable(folder)}, which your account cannot write: make it "
                           "writable, or keep the key in a writable folder (--key-file)")
