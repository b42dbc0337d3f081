"""Two-view studies: the anterior and posterior views of one study, paired into one dataset row.

Used by ``prepare --source dicom`` for a task whose input is both views (``residual-tissue``:
``image`` anterior, ``image_posterior`` posterior). The reader
(:func:`thyroid_bench.data.dicom.ingest.read_dicom_file` with ``views=True``) gives each file's
views by their View Code Sequence (one file may hold both: the two frames / detectors of a
dual-head sweep); this module groups files into studies and makes one row per study.

Documented choices
------------------
* A study is the files sharing a Study Instance UID (a file without one is a study by
  itself). It is labelled by the labels-CSV row of any of its files; files of a labelled study
  need no row of their own (the partner view of a labelled file). Two rows that label one study
  differently are an error in the labels CSV.
* Views of one acquisition are paired: a static pair (Image Type STATIC: the neck view, used as
  it is) before a whole-body pair; within a kind, a file holding both views before two files;
  then the labelled file, then path order. Files whose views are not used are rejected with
  that reason, as are all files of a study missing a view or naming two patients.
* A whole-body pair is cut by the head-and-neck rule of
  :mod:`thyroid_bench.data.dicom.wholebody` (both views at the same rows, each centred on its
  own body; native counts and pixel spacing). The posterior view is stored as acquired (not
  mirrored).
* Duplicates: a file with the SOP Instance UID of an earlier one, or a study whose anterior
  pixels equal an earlier study's, is rejected.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from thyroid_bench.data.dicom.deid import Pseudonymizer
from thyroid_bench.data.dicom.duplicates import ImageIndex
from thyroid_bench.data.dicom.identity import STUDY_PATIENTS_DIFFER
from thyroid_bench.data.dicom.labels_csv import LabelRow
from thyroid_bench.data.dicom.pixel_store import PixelStore, image_key
from thyroid_bench.data.dicom.wholebody import crop, head_and_neck_window
from thyroid_bench.errors import DatasetError

__all__ = ["VIEWS", "view_name", "pair_studies"]

#: The two views of a study, in dataset column order (``image``, ``image_posterior``).
VIEWS: tuple[str, str] = ("anterior", "posterior")
#: SNOMED CT codes of CID 26 (Nuclear Medicine Projections) and meanings of each view.
_VIEW_CODES = {"anterior": frozenset({"399321004", "399348003"}),
               "posterior": frozenset({"399001007"})}
_VIEW_MEANINGS = {"anterior": frozenset({"anterior", "anterior projection", "antero-posterior", "ap"}),
                  "posterior": frozenset({"posterior", "posterior projection", "postero-anterior",
                                          "pa"})}


def view_name(code: str, meaning: str) -> str | None:
    """``anterior`` / ``posterior`` for a view code (or its meaning), None for any other view."""
    for view in VIEWS:
        if code in _VIEW_CODES[view] or meaning.strip().lower() in _VIEW_MEANINGS[view]:
            return view
    return None


def pair_studies(results: list[dict[str, Any]], matched: dict[str, LabelRow], pseud: Pseudonymizer,
                 csv_path: Path, store: PixelStore | None = None
                 ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Read files (in path order) -> two-view studies (dataset columns plus what provenance
    needs, ``files`` the files used) and rejections (``file``, ``reason``, ``labels_line``).

    With a ``store``, the files' views are :class:`~thyroid_bench.data.dicom.pixel_store.
    StoredImage` references into it, and so are the studies' two images: one study's pixels are
    in memory at a time."""
    rejected: list[dict[str, Any]] = []
    groups = _groups(results, matched, rejected)
    _check_labels_agree(groups, matched, csv_path)
    studies: list[dict[str, Any]] = []
    seen = ImageIndex()
    for members in groups:
        study, reasons = _pair(members, matched, store)
        if study is not None:
            key = image_key(study["image"])
            twin = seen.duplicate(key)
            if twin is not None:
                reasons.update({f: twin for f in study["files"]})
            else:
                seen.add(key, study["row"])
                if store is not None:  # uncropped views are in the store already
                    refs = study["stored"] or [store.put(study[c]) for c in ("image", "image_posterior")]
                    study.update(zip(("image", "image_posterior"), refs))
                studies.append(_finish(study, pseud))
        rejected += [{"file": f, "reason": why, "labels_line": _line(matched, f)}
                     for f, why in reasons.items()]
    return studies, rejected


def _line(matched: dict[str, LabelRow], file: str) -> int | None:
    row = matched.get(file)
    return row.line if row else None


def _groups(results: list[dict[str, Any]], matched: dict[str, LabelRow],
            rejected: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """Readable files grouped by study (groups in order of their first file); unreadable
    files and repeated SOP Instance UIDs go to ``rejected``."""
    by_study: dict[tuple[str, str], list[dict[str, Any]]] = {}
    first_uid: dict[str, str] = {}
    for res in results:
        reason = res["reason"]
        if reason is None and res["sop_uid"] in first_uid:
            earlier = matched.get(first_uid[res["sop_uid"]])
            reason = "duplicate SOP Instance UID: same as an earlier file" + (
                f" (labels line {earlier.line})" if earlier else "")
        if reason is not None:
            rejected.append({"file": res["file"], "reason": reason,
                             "labels_line": _line(matched, res["file"])})
            continue
        first_uid[res["sop_uid"]] = res["file"]
        key = ("study", res["study_uid"]) if res.get("study_uid") else ("file", res["file"])
        by_study.setdefault(key, []).append(res)
    return list(by_study.values())


def _check_labels_agree(groups: list[list[dict[str, Any]]], matched: dict[str, LabelRow],
                        csv_path: Path) -> None:
    """Rows labelling files of one study must give it one label, centre, split and value."""
    problems = []
    for members in groups:
        rows = [matched[m["file"]] for m in members if m["file"] in matched]
        for row in rows[1:]:
            if (row.label, row.center, row.split, row.value) != \
                    (rows[0].label, rows[0].center, rows[0].split, rows[0].value):
                problems.append(f"lines {rows[0].line} and {row.line} label two files of one "
                                "study (one Study Instance UID) differently")
    if problems:
        raise DatasetError(f"{csv_path}: {len(problems)} problem(s): a study has one label; "
                           "fix the rows and run again:\n  " + "\n  ".join(problems[:20]))


def _pair(members: list[dict[str, Any]], matched: dict[str, LabelRow], store: PixelStore | None
          ) -> tuple[dict[str, Any] | None, dict[str, str]]:
    """One study's row (None if it cannot be made) and the reason of each file not used."""
    labelled = [m for m in members if m["file"] in matched]
    if not labelled:
        return None, {m["file"]: "no label row" for m in members}
    if len({m["patient"] for m in members}) > 1:
        return None, {m["file"]: STUDY_PATIENTS_DIFFER for m in members}
    chosen, missing = _choose_views(members, matched)
    if chosen is None:
        return None, {m["file"]: missing for m in members}
    used = {res["file"] for res in chosen.values()}
    reasons = {m["file"]: "not used: its study's anterior and posterior views come from other "
                          "files (a static pair before a whole-body one, a dual-head file first)"
               for m in members if m["file"] not in used}
    try:
        study = _cut(chosen, matched[labelled[0]["file"]], store)
    except ValueError as exc:
        prefix = "whole-body crop: " if chosen["anterior"]["whole_body"] else ""
        reasons.update({f: f"{prefix}{exc}" for f in used})
        return None, reasons
    return study, reasons


def _choose_views(members: list[dict[str, Any]], matched: dict[str, LabelRow]
                  ) -> tuple[dict[str, dict[str, Any]] | None, str]:
    """The file giving each view (see the module docstring), or None and why."""
    order = sorted(members, key=lambda m: m["file"] not in matched)  # labelled first, stable
    for whole_body in (False, True):
        kind = [m for m in order if m["whole_body"] == whole_body]
        both = next((m for m in kind if set(VIEWS) <= set(m["views"])), None)
        if both is not None:
            return {v: both for v in VIEWS}, ""
        pick = {v: next((m for m in kind if v in m["views"]), None) for v in VIEWS}
        if all(pick.values()):
            return pick, ""
    have = {v for m in members for v in m["views"]}
    if have == set(VIEWS):
        return None, ("its study's anterior and posterior views come from different "
                      "acquisitions (one static, one whole-body)")
    lacking = next(v for v in VIEWS if v not in have)
    return None, f"its study has no {lacking} view (both views are needed)"


def _cut(chosen: dict[str, dict[str, Any]], row: LabelRow, store: PixelStore | None = None
         ) -> dict[str, Any]:
    """The two views (cut to the head and neck if whole-body) and the anterior file's fields."""
    ant, post = chosen["anterior"], chosen["posterior"]
    images = [ant["views"]["anterior"], post["views"]["posterior"]]
    stored = images if store is not None else None  # the views as the store holds them
    if store is not None:
        images = [store.get(ref) for ref in images]
    spacing, choice = ant["pixel_spacing_mm"], "static anterior and posterior views"
    if ant["whole_body"]:
        window = head_and_neck_window(images, spacing)
        images = [crop(img, window, k) for k, img in enumerate(images)]
        choice = "whole-body head-and-neck crop"
        stored = None  # cropped: new images, to be stored once the study is kept
    image, posterior = (np.ascontiguousarray(img, dtype=np.uint16) for img in images)
    if image.shape != posterior.shape:
        raise ValueError(f"anterior {image.shape} and posterior {posterior.shape} views differ in "
                         "shape")
    files = list(dict.fromkeys([ant["file"], post["file"]]))
    return {**{k: ant[k] for k in ("sop_uid", "study_uid", "patient", "sex", "age", "acquisition_s",
                                   "transfer_syntax", "technical")},
            "image": image, "image_posterior": posterior, "stored": stored, "row": row, "files": files,
            "pixel_spacing_mm": spacing, "frame_choice": choice,
            "total_counts": int(image.sum(dtype=np.int64))}


def _finish(study: dict[str, Any], pseud: Pseudonymizer) -> dict[str, Any]:
    """The study's dataset columns (keyed pseudonyms) plus what provenance needs."""
    row: LabelRow = study["row"]
    return {
        "case_id": pseud.case(study["sop_uid"]),
        "patient_id": pseud.patient(row.center, *study["patient"]),
        "study_id": pseud.study(study["study_uid"], study["sop_uid"]),
        "image": study["image"], "image_posterior": study["image_posterior"],
        "label": row.label, "center": row.center, "matrix": int(study["image"].shape[0]),
        "pixel_spacing_mm": float(study["pixel_spacing_mm"]), "total_counts": study["total_counts"],
        "acquisition_s": float(study["acquisition_s"]), "sex": study["sex"], "age": study["age"],
        "uptake_pct": row.value, "row": row, "files": study["files"],
        "frame_choice": study["frame_choice"], "transfer_syntax": study["transfer_syntax"],
        "technical": study["technical"],
    }
