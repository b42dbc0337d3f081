"""Who a study belongs to, and the groups that must stay in one split.

Used by ``prepare --source dicom`` (:mod:`thyroid_bench.data.dicom.ingest`, and the two-view
pairing of :mod:`thyroid_bench.data.dicom.pairing`). The rules:

* **A patient across centres.** Patient IDs are unique only within the authority that issued
  them. When a file names that authority (Issuer of Patient ID), the patient is
  (issuer, Patient ID) whichever centre filed the study, so one person seen at a training
  centre and at an external one is one patient. Without an issuer the patient is
  (centre, Patient ID): two hospitals' ID 1001 are two people.
* **A study.** All files of one Study Instance UID are one study and stay in one split; a file
  without one is a study by itself (keyed by its SOP Instance UID). A study whose files name
  different patients is rejected: which person it shows cannot be told.
* **Split groups.** Studies sharing a patient or a study form one group (union-find), and a
  group is never divided between splits. A group with a study from an ``--external-center``
  goes to ``external`` whole: nobody in ``external`` was trained on.
* **An explicit split column** that puts one patient or one study in two splits is an error
  naming both labels-CSV lines.

The dataset stores both pseudonyms (``patient_id``, ``study_id``: keyed HMACs of the identities
above), so ``thyroid-bench verify`` re-checks isolation from the stored columns alone.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from typing import Any

__all__ = [
    "patient_identity",
    "study_identity",
    "inconsistent_studies",
    "isolation_groups",
    "split_conflicts",
    "STUDY_PATIENTS_DIFFER",
]

#: The rejection reason of every file of a study whose files name different patients.
STUDY_PATIENTS_DIFFER = ("the files of its study (one Study Instance UID) name different "
                         "patients (Issuer of Patient ID, Patient ID): which person it shows "
                         "cannot be told")


def patient_identity(center: str, issuer: str, patient_id: str) -> tuple[str, str, str]:
    """The identity a patient pseudonym is keyed on: ``("issuer", issuer, ID)`` when the file
    names an Issuer of Patient ID, else ``("centre", centre, ID)`` (values stripped; the tag
    keeps an issuer from colliding with a centre of the same spelling)."""
    issuer, patient_id = str(issuer or "").strip(), str(patient_id).strip()
    if issuer:
        return ("issuer", issuer, patient_id)
    return ("centre", str(center).strip(), patient_id)


def study_identity(study_uid: str | None, sop_uid: str) -> tuple[str, str]:
    """The identity a study pseudonym is keyed on: the Study Instance UID, or for a file without
    one its SOP Instance UID (a study of its own)."""
    uid = str(study_uid or "").strip()
    return ("study", uid) if uid else ("instance", str(sop_uid).strip())


def inconsistent_studies(studies: Sequence[dict[str, Any]]) -> list[int]:
    """The indices of the studies (dicts with ``study_id`` and ``patient_id``, one per file)
    whose Study Instance UID is shared with a file of another patient: every file of such a
    study is rejected (:data:`STUDY_PATIENTS_DIFFER`)."""
    patients: dict[str, set[str]] = defaultdict(set)
    for s in studies:
        patients[s["study_id"]].add(s["patient_id"])
    return [i for i, s in enumerate(studies) if len(patients[s["study_id"]]) > 1]


def isolation_groups(studies: Sequence[dict[str, Any]]) -> list[str]:
    """One group name per study (dicts with ``patient_id`` and ``study_id``): studies sharing a
    patient or a study, directly or through others, share a group. The name is the group's
    smallest patient pseudonym, so it is stable under reordering."""
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for s in studies:
        a, b = find("p:" + s["patient_id"]), find("s:" + s["study_id"])
        if a != b:
            parent[max(a, b)] = min(a, b)  # "p:..." sorts before "s:...": a patient is the root
    return [find("p:" + s["patient_id"])[2:] for s in studies]


def split_conflicts(studies: Sequence[dict[str, Any]]) -> list[str]:
    """An explicit split column's faults: each patient or study whose labels-CSV lines (``row``,
    with ``line`` and ``split``) give two splits, naming both lines."""
    problems = []
    for column, what in (("patient_id", "patient (Issuer of Patient ID and Patient ID, or centre "
                                        "and Patient ID)"),
                         ("study_id", "study (Study Instance UID)")):
        first: dict[str, Any] = {}
        for s in studies:
            other = first.setdefault(s[column], s["row"])
            if other.split != s["row"].split:
                problems.append(f"lines {other.line} and {s['row'].line}: the same {what} is in "
                                f"splits {other.split!r} and {s['row'].split!r}; a {column[:-3]} "
                                "must stay in one split")
    return problems
