"""Dataset cards: the one writer of the Hugging Face card of every dataset version.

A card is YAML front matter (:func:`front_matter`: licence, task category, tags, size,
``configs``/``data_files`` per split, ``dataset_info`` features with the task's class
names) and a markdown body; :func:`render_card` joins the two. Bodies are functions of the
finished manifest, composed of section functions that take the task from the manifest
(``manifest.get_task()``):

* shared sections: :func:`title`, :func:`counts_table`, :func:`labels_section`
  (:func:`labels_table`), :func:`format_section`, :func:`how_to_load_section`,
  :func:`citation_section`;
* :func:`synthetic_card`, the tsb-synthetic body that ``thyroid-bench prepare`` writes (the
  repository's ``dataset_card.md`` is the same text for the official release, and a test
  keeps the two equal);
* :func:`residual_card`, the tsb-residual body (task ``residual-tissue``): what is simulated
  and what is known of the real data it stands in for;
* :func:`dicom_card`, the body of a dataset built by ``thyroid-bench prepare --source dicom``,
  rendered from the manifest's provenance, with how to load it, its licence and how to cite it
  (:func:`licence_and_citation_section`: nothing that depends on where it will be published);
* :func:`published_card`, the card ``thyroid-bench publish`` uploads: the folder's card with a
  section on the Hub repository (:func:`hub_section`: ``datasets.load_dataset("ORG/NAME")``,
  ``prepare --source hub``) and, for gated access, ``extra_gated_prompt`` /
  ``extra_gated_fields`` (:data:`GATED_FIELDS`) in its front matter. The content fingerprint
  covers the shards' decoded content, not the card, so the published card may say more than
  the local one and ``verify`` still gives the same fingerprint on the version downloaded.
"""

from __future__ import annotations

import json
import re
import unicodedata
from typing import Any

from thyroid_bench.data.columns import image_columns, value_dtype
from thyroid_bench.data.manifest import Manifest
from thyroid_bench.tasks import NO_FOLD, TRAIN_SPLIT, Task

__all__ = [
    "render_card",
    "front_matter",
    "title",
    "counts_table",
    "labels_table",
    "labels_section",
    "format_section",
    "how_to_load_section",
    "citation_section",
    "synthetic_card",
    "residual_card",
    "dicom_card",
    "licence_and_citation_section",
    "GATED_FIELDS",
    "hub_section",
    "published_card",
    "gated_text_problem",
]

#: BibTeX of the works the cards cite, by DOI (a card lists the ones it names).
_BIBTEX: dict[str, str] = {
    "10.1186/s12880-021-00710-4": """\
@article{qiao2021thyroid,
  author  = {Qiao and others},
  journal = {BMC Medical Imaging},
  volume  = {21},
  year    = {2021},
  doi     = {10.1186/s12880-021-00710-4}
}""",
    "10.54939/1859-1043.j.mst.88.2023.131-138": """\
@article{laiphuminh2023datasets,
  author  = {Lai, Phu Minh and others},
  journal = {Journal of Military Science and Technology},
  number  = {88},
  pages   = {131--138},
  year    = {2023},
  doi     = {10.54939/1859-1043.j.mst.88.2023.131-138}
}""",
    "10.3389/fonc.2021.762643": """\
@article{guo2021residual,
  author  = {Guo and others},
  journal = {Frontiers in Oncology},
  year    = {2021},
  doi     = {10.3389/fonc.2021.762643}
}""",
}
_QIAO, _LAI, _GUO = _BIBTEX


# --------------------------------------------------------------------------- front matter
def _size_category(n: int) -> str:
    for upper, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < upper:
            return label
    return "100K<n<1M"


def _features(task: Task) -> str:
    """``dataset_info.features``: one entry per column of the task (extra columns included),
    the label a ClassLabel, every image column an image."""
    names = "\n".join(f"          '{i}': {n}" for i, n in enumerate(task.class_names))
    images = set(image_columns(task))
    feats = []
    for col in task.columns:
        if col in images:
            feats.append(f"  - name: {col}\n    dtype: image")
        elif col == "label":
            feats.append(f"  - name: label\n    dtype:\n      class_label:\n        names:\n{names}")
        else:
            feats.append(f"  - name: {col}\n    dtype: {value_dtype(task, col)}")
    return "\n".join(feats)


def front_matter(manifest: Manifest) -> str:
    """The card's YAML front matter (between ``---`` lines), from the manifest and its task (with
    the dataset's optional columns, e.g. ``study_id``, among the features)."""
    task = manifest.dataset_task()
    data_files = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in task.splits)
    tags = ["medical", "nuclear-medicine", "scintigraphy", "thyroid"]
    if manifest.synthetic:
        tags.append("synthetic")
    return "\n".join([
        "---",
        f"license: {manifest.licence}",
        f"pretty_name: {manifest.name} {manifest.version}",
        "task_categories:\n- image-classification",
        "tags:\n" + "\n".join(f"- {t}" for t in tags),
        f"size_categories:\n- {_size_category(manifest.rows)}",
        # The description names the content: `datasets` caches a local folder under its base
        # name (the version) and a hash of the front matter, so without it two datasets of one
        # task and version would share a cache entry and the second would load the first.
        f"configs:\n- config_name: default\n  description: {manifest.name} {manifest.version}, "
        f"fingerprint {manifest.fingerprint}\n  data_files:\n" + data_files,
        "dataset_info:\n  features:\n" + _features(task),
        "---",
    ])


def render_card(manifest: Manifest, body: str) -> str:
    """A Hugging Face dataset card: YAML front matter from the manifest, then ``body`` (and the
    paragraph on withheld labels, :func:`~thyroid_bench.data.private.card_section`, if any)."""
    from thyroid_bench.data.private import card_section

    withheld = card_section(manifest)
    return front_matter(manifest) + "\n\n" + body.strip() + "\n" + (f"\n{withheld}\n" if withheld else "")


# --------------------------------------------------------------------------- shared sections
def title(manifest: Manifest, subtitle: str = "") -> str:
    """``# <name> <version>``, with ``: subtitle`` when given."""
    head = f"# {manifest.name} {manifest.version}"
    return f"{head}: {subtitle}" if subtitle else head


def _fold_range(task: Task) -> str:
    """The folds ``train`` rows carry, e.g. ``0-4``."""
    return f"0-{task.folds - 1}"


def counts_table(manifest: Manifest) -> str:
    """Markdown table of rows per split and class, from a manifest."""
    task = manifest.get_task()
    names = list(task.class_names)
    labels = [task.class_label(c.index) for c in task.classes]
    present = task.detection.present_label if task.detection else None
    if present and any(present in m.class_counts for m in manifest.splits.values()):
        names.append(present)
        labels.append(f"{present} (grade unknown)")
    head = "| split | centre | " + " | ".join(labels) + " | total |"
    rule = "|" + " --- |" * (len(names) + 3)
    lines = [head, rule]
    for split, meta in manifest.splits.items():
        centres = ", ".join(meta.center_counts)
        counts = [("withheld" if split in manifest.withheld_splits else str(meta.class_counts.get(n, 0)))
                  for n in names]
        lines.append(f"| {split} | {centres} | " + " | ".join(counts) + f" | {meta.rows} |")
    return "\n".join(lines)


def labels_table(task: Task) -> str:
    """Markdown table of the task's classes: index, name, the paper's code (type or grade), reading."""
    rows = "\n".join(f"| {c.index} | `{c.name}` | {c.code or ''} | {c.reading} |" for c in task.classes)
    code = "grade" if task.target.kind == "ordinal" else "paper's type"
    return f"| index | name | {code} | reading |\n| --- | --- | --- | --- |\n" + rows


def labels_section(task: Task) -> str:
    """``## Labels`` heading (schema version, task name) and the task's labels table."""
    return f"## Labels (schema v{task.schema_version}, task `{task.name}`)\n\n{labels_table(task)}"


def format_section(task: Task) -> str:
    """``## Format``: the files of a format-v1 dataset version and its columns."""
    return f"""\
## Format (thyroid-bench dataset format v1)

```
manifest.json   format version, name, version, task, label schema, splits (rows, class
                counts, fingerprints), provenance, licence
README.md       this card
data/<split>-0000i-of-0000N.parquet
```

Columns: `case_id`, `patient_id` (pseudonymous), `image` (16-bit grayscale PNG of raw counts),
`label` (ClassLabel), `center`, `fold` ({_fold_range(task)} in {TRAIN_SPLIT}, {NO_FOLD} elsewhere), `matrix`,
`pixel_spacing_mm`, `total_counts` (the image's pixel sum), `acquisition_s`, `sex`, `age`.{_extra_columns(task)}
Fingerprints are SHA-256 over the decoded content of each split (pixels, labels, ids,
metadata, in case-id order), so they do not depend on file bytes."""


def _extra_columns(task: Task) -> str:
    """The sentence on the task's extra columns (empty without them)."""
    if not task.extra_columns:
        return ""
    kinds = {"image": "16-bit grayscale PNG", "float": "float64, null when missing",
             "string": "string"}
    listed = "; ".join(f"`{c.name}` ({kinds[c.kind]}: {c.description})" for c in task.extra_columns)
    unknown = (f" A `label` of -1 (no label) means {task.detection.present_label}, grade unknown."
               if task.detection else "")
    return f"\nTask `{task.name}` adds: {listed}.{unknown}"


def how_to_load_section(manifest: Manifest) -> str:
    """``## How to load it``: with ``datasets`` alone, and with thyroid-bench (verified)."""
    return f"""\
## How to load it

```python
import datasets
ds = datasets.load_dataset("path/to/{manifest.name}/{manifest.version}")   # no thyroid-bench code needed

import thyroid_bench
ds = thyroid_bench.load_dataset("{manifest.name}")        # also verifies the fingerprints
```

`thyroid-bench verify` checks the manifest, schema, counts, images, fingerprints and that no
patient, case or image is in two splits."""


def citation_section(intro: str, dois: tuple[str, ...] = (_QIAO, _LAI)) -> str:
    """``## Citation``: ``intro`` (what comes from where), then the works of ``dois`` as BibTeX."""
    bib = "\n".join(_BIBTEX[d] for d in dois)
    return (f"## Citation\n\n{intro}\n\nTitles and full author lists: see the DOIs.\n\n"
            f"```bibtex\n{bib}\n```")


# --------------------------------------------------------------------------- synthetic
def synthetic_card(manifest: Manifest) -> str:
    """Markdown body of the tsb-synthetic card (the YAML front matter is added by the writer)."""
    task = manifest.get_task()
    return "\n\n".join([
        _synthetic_intro(manifest),
        _synthetic_splits(manifest),
        labels_section(task) + "\n\n" + _SYNTHETIC_READERS,
        _SYNTHETIC_IMAGES,
        format_section(task),
        how_to_load_section(manifest),
        _SYNTHETIC_USE,
        citation_section(_SYNTHETIC_SOURCES),
    ]) + "\n"


def _synthetic_intro(manifest: Manifest) -> str:
    seed = manifest.provenance.get("seed", "?")
    task = manifest.get_task()
    head = title(manifest, "a synthetic reference cohort of thyroid scintigrams")
    return f"""\
{head}

**This is a phantom study.** Every image is simulated; no patient data went into it and no
clinical claim rests on it. It exists so that the thyroid-bench format, harness and leaderboard
work out of the box, offline, on data shaped like the cohort of Qiao et al. 2021.

- dataset fingerprint: `{manifest.fingerprint}`
- generator seed: `{seed}`, built by `thyroid-bench prepare` (thyroid-bench, `thyroid_bench/data/synthetic/generator.py`)
- task: `{manifest.task}`, label schema v{task.schema_version}
- licence: {manifest.licence}"""


def _synthetic_splits(manifest: Manifest) -> str:
    task = manifest.get_task()
    return f"""\
## Splits and counts

The class counts per split are those of Table 1 of Qiao et al. 2021. `train` and `internal`
come from centre 1, `external` from centre 2 and is never trained on. `train` rows carry a
fixed `fold` ({_fold_range(task)}, stratified by label); protocols that need model selection hold out fold 0.

{counts_table(manifest)}"""


_SYNTHETIC_READERS = """\
Labels come the way the paper's did: from readers. Three simulated readers apply the paper's
criteria (gland size, thyroid-to-salivary uptake, hot and cold areas, suppression of the
extranodular tissue) to the latent patient, each with their own thresholds and noise; the
majority is the label, and a three-way split goes to the senior reader. Patients are drawn with an intended pattern and kept until each class's
quota is filled by the readers' consensus, so borderline cases exist (heterogeneous glands read
as diffusely increased, a partly suppressed gland around a hot nodule read either way) and no
classifier can reach 100%."""

_SYNTHETIC_IMAGES = """\
## How the images were made

Each case is a latent patient placed in millimetres: two thyroid lobes (4-6 cm by 1.3-2 cm,
enlarged up to about twice in type I), an isthmus (absent in about 17%), sometimes a pyramidal
lobe, hot and cold nodules (the hot nodule of type III mostly 1.5-4 cm), parotid and
submandibular salivary glands (count ratio to a normal thyroid about 0.8 and 0.67), background
and blood pool, and now and then a sternal-notch marker or oral activity. Each structure is
blurred by the depth-dependent response of a low-energy high-resolution (LEHR) parallel-hole
collimator at 140 keV (system FWHM about 7.4 mm at 10 cm), rendered to the centre's matrix,
scaled to the centre's count target and sampled with Poisson noise. Pixel values are the raw
counts, stored as lossless 16-bit PNG: scaling to [0, 255] is a model transform, not data.

| | centre 1 (`train`, `internal`) | centre 2 (`external`) |
| --- | --- | --- |
| matrix | 256 x 256 | 128 x 128 |
| field of view | 280 mm | 280 mm |
| counts | 100k in 5 min | 300k in 10 min |
| women / age | about 97% / 41 +- 14 y | about 71% / 45 +- 14 y |

Centre 2 differs as a second camera would: matrix, counts, resolution and population mix.
Both centres use a 28 cm field of view. The paper's centre-1 figures disagree with each other
(a 256 matrix at 2.21 mm per pixel would be 56 cm wide); we kept the 256 matrix and the 28 cm
field, so centre-1 pixels are about 1.09 mm and centre-2 pixels about 2.19 mm."""

_SYNTHETIC_USE = """\
## Intended use and limits

Use it to test pipelines, compare models under one protocol, and teach. Do not use it to
make or support a clinical claim: the phantoms follow published anatomy and acquisition
figures, not a patient population, and the simulated readers follow the paper's criteria,
not real readers' variability. Results on it say how a method behaves on this simulation."""

_SYNTHETIC_SOURCES = """\
The clinical task and the cohort's structure come from Qiao et al. 2021; the case for
standardised scintigraphy datasets with benchmarks from Lai Phu Minh et al. 2023."""


# --------------------------------------------------------------------------- tsb-residual
def residual_card(manifest: Manifest) -> str:
    """Markdown body of the tsb-residual card: the phantom study, its splits, how its images
    and labels were made, what is known of the real data (Lai et al. 2023), and its limits."""
    task = manifest.get_task()
    seed = manifest.provenance.get("seed", "?")
    return "\n\n".join([
        f"""\
{title(manifest, "a synthetic cohort of post-thyroidectomy I-131 scans")}

**This is a phantom study.** Every image is simulated; no patient data went into it and no
clinical claim rests on it. It stands in for the private post-thyroidectomy scans of Lai Phu
Minh et al. 2023 so that the `{task.name}` task works end to end, offline.

- dataset fingerprint: `{manifest.fingerprint}`
- generator seed: `{seed}`, built by `thyroid-bench prepare --task {task.name}` (`thyroid_bench/data/synthetic/residual.py`)
- task: `{manifest.task}`, label schema v{task.schema_version}
- licence: {manifest.licence}""",
        f"""\
## Splits and counts

`train` and `internal` come from centre 1 (a whole-body-sweep camera), `external` from centre 2
(a static neck view on another camera) and is never trained on. Present : absent mirrors the
curated real subset (863 : 912); the grade mix is ours. `train` rows carry a fixed `fold`
({_fold_range(task)}, stratified by grade); protocols that need model selection hold out fold 0.

{counts_table(manifest)}""",
        labels_section(task) + "\n\n" + _RESIDUAL_READERS,
        _RESIDUAL_IMAGES,
        _residual_real_data(task),
        format_section(task),
        how_to_load_section(manifest),
        _RESIDUAL_USE,
        citation_section(_RESIDUAL_SOURCES, (_LAI, _GUO)),
    ]) + "\n"


_RESIDUAL_READERS = """\
Labels come from readers. Three simulated readers look at each latent patient: a reader sees
focal uptake when a remnant's contrast-to-noise ratio (its counts within the FWHM against the
background under them) passes the reader's own threshold, around Rose's criterion of 5, or
takes retained oesophageal activity for a remnant (each reader recognises it with their own
probability). Each measures the thyroid-bed uptake as a conjugate-view ROI would (the
attenuation-corrected activity in the ROI, not its pixels), with their own noise, bias and habits (how much oesophagus slips into the ROI, whether a pyramidal remnant is
included), and grades: nothing focal seen is `absent`, else < 1% `low`, 1-2% `moderate`,
> 2% `high`. The label is the median of the three grades; `uptake_pct` is the mean of the
three measurements (% of the administered activity, to 0.01). So borderline cases exist (a
trace remnant one reader sees, an uptake near 1% or 2%), `uptake_pct` does not always fall in
its grade's range, and no classifier can reach 100%. Patients are drawn with an intended
grade and kept until each grade's quota is filled by the readers' consensus."""

_RESIDUAL_IMAGES = """\
## How the images were made

A diagnostic I-131 scan (364 keV) after total thyroidectomy. Each case is a latent patient in
millimetres: 0-4 remnant foci in the thyroid bed (sizes, depths and uptake from a trace to
several percent of the administered activity; now and then a pyramidal-lobe remnant above the
bed), the parotid and submandibular glands, nasal and oral activity, retained activity in the
oesophagus in the midline (the classic mimic of a remnant), the odd skin contamination
(front or back) or sternal-notch marker, and the blood pool of head, neck and shoulders.
Each source is attenuated by the tissue in front of it (0.095 /cm) and blurred with the
depth-dependent response of a high-energy general-purpose collimator (system FWHM 12-13.5 mm
at 10 cm); intense foci get the six star spokes of septal penetration through hexagonal holes.
Counts follow from the administered activity (74-185 MBq), the scan delay (48-96 h, physical
decay), the camera's sensitivity and how long each point is seen; the expected image is
sampled with Poisson noise, so images are low-count, as diagnostic I-131 scans are. The
posterior view comes from the same latent patient (depths measured from the back, so deep
structures are brighter and superficial ones dimmer) and is mirrored left-right, as a
posterior view is. Pixel values are raw counts in lossless 16-bit PNGs.

| | centre 1 (`train`, `internal`) | centre 2 (`external`) |
| --- | --- | --- |
| acquisition | whole-body sweep, 512 x 1024 at 7 min/m | static neck view, 10 min |
| model input | 256 x 256 head-and-neck crop (270 mm, 1.05 mm pixels) | 256 x 256 (320 mm, 1.25 mm pixels) |
| collimator | HEGP, FWHM 13.5 mm at 10 cm | HEGP, FWHM 12 mm at 10 cm |
| activity, delay | 111-185 MBq, 48-72 h | 74-148 MBq, 72-96 h |
| women / age | about 78% / 44 +- 13 y | about 70% / 49 +- 14 y |
| oesophageal retention, marker | 35%, 3% | 50%, 25% |

Centre 2 differs as another camera and another clinic would: pixel size, resolution, counts,
population and habits."""


def _residual_real_data(task: Task) -> str:
    published = "\n".join(
        f"| {r.citation} | {r.data} | "
        + ", ".join(f"{k.replace('detection_', '').replace('_', ' ')} {v:.2%}"
                    for k, v in r.figures.items()) + " |"
        for r in task.published)
    return f"""\
## What is known of the real data

Lai Phu Minh et al. 2023 built two standardised datasets of thyroid scintigraphy images for
identifying and quantifying thyroid tissue left after total thyroidectomy, so that CADx models
can be compared on them. The same hospital's public description of its collection (108
Military Central Hospital, Hanoi) lists post-thyroidectomy scans taken 4-6 weeks after surgery
and before radioiodine ablation; an anterior and a posterior view per patient; whole-body
sweeps (256 x 1024 at 15 min/m or 512 x 1024 at 7 min/m) and static neck views (256 x 256,
10 min); a 256 x 256 head-and-neck crop as the model input; three cameras (GE Millennium MG,
7,355 scans; Optima 640, 1,247; Infinia, 898); and a curated subset of 1,775 images labelled
increased uptake (863) or not (912). Clinically, ablation counts as complete below 1% neck
uptake, and remnants are graded by thyroid-bed uptake (about 85% of patients are under 2%).
The real images are not public; tsb-residual copies their structure, not their pixels.

Published results on private data (reference lines, not comparable with results here):

| source | data | figures |
| --- | --- | --- |
{published}"""


_RESIDUAL_USE = """\
## Intended use and limits

Use it to test pipelines for the `residual-tissue` task, compare models under one protocol,
and teach. Do not use it to make or support a clinical claim: the phantoms follow published
physics and acquisition figures, not a patient population; the grade mix is ours; the readers
follow the clinical thresholds, not real readers' variability. Results on it say how a method
behaves on this simulation."""

_RESIDUAL_SOURCES = """\
The task, the real data's structure and the case for standardised datasets come from Lai Phu
Minh et al. 2023 (doi 10.54939/1859-1043.j.mst.88.2023.131-138); the published reference
figures from the same group (NICS 2022) and from Guo et al. 2021 (Front. Oncol., doi
10.3389/fonc.2021.762643)."""


# --------------------------------------------------------------------------- DICOM
def dicom_card(manifest: Manifest, *, rejected_file: str) -> str:
    """Markdown body of the card of a dataset built from a DICOM archive and a labels CSV.

    Everything it states comes from the manifest: the task (``manifest.get_task()``) and
    the provenance ``thyroid-bench prepare --source dicom`` records (``ingest`` counts and
    rejection reasons, ``labels_csv.split_column``, ``split`` rule, ``pseudonymisation``,
    ``burned_in_allowed``, ``min_patients_per_reported_value``). ``rejected_file`` is the
    name of the dataset's list of files not ingested.
    """
    prov = manifest.provenance
    return "\n\n".join(part for part in [
        _dicom_intro(manifest),
        _dicom_splits(manifest.get_task(), prov),
        _dicom_views(prov),
        _dicom_headers(prov),
        _dicom_identifiers(prov),
        _dicom_rejected(prov["ingest"], rejected_file),
        how_to_load_section(manifest),
        licence_and_citation_section(manifest),
    ] if part) + "\n"


def _dicom_views(prov: dict[str, Any]) -> str:
    """Two-view tasks (provenance ``ingest.studies``): how views were paired and cut, and
    whether grades are known (``labels_csv.grades_known``); empty for other tasks."""
    if "studies" not in prov["ingest"]:
        return ""
    text = f"""## Two views per study

Each row is one study ({prov['ingest']['studies']} studies from {prov['ingest']['ingested']} files):
`image` is its anterior view and `image_posterior` its posterior view as acquired (not
mirrored), told apart by the View Code Sequence of each frame's detector. Whole-body sweeps
are cut to the head and neck by the rule of `thyroid_bench.data.dicom.wholebody` (the vertex
is the first row whose smoothed count profile rises a quarter of the way from air to the body
level; a sweep wider than 256 pixels gives a native 256x256 window starting 111.5 mm below it,
each view centred on its body, the field of tsb-residual's centre 1; a 256-wide sweep gives a
square of the image width starting width/16 rows above it, a field about twice as large);
static neck views are used as they are. `uptake_pct` comes from the
labels CSV (null where not given)."""
    if prov["labels_csv"].get("grades_known") is False:
        text += """

**Presence-only labels.** Some studies are labelled only as present (label -1: present, grade
not known), so grade metrics (accuracy, quadratic kappa, grade MAE, the confusion matrix) are
skipped for this dataset; detection metrics are computed."""
    return text


def _dicom_intro(manifest: Manifest) -> str:
    task = manifest.get_task()
    return f"""\
{title(manifest)}

A dataset version in thyroid-bench format v1, built with `thyroid-bench prepare --source dicom`
from a DICOM archive of planar 99mTc-pertechnetate thyroid scintigrams and a labels CSV. The
task is `{task.name}` ({task.reference.citation}): {', '.join(task.class_names)}."""


def _split_rule(prov: dict[str, Any]) -> str:
    if prov["labels_csv"]["split_column"]:
        return "the labels CSV's split column (an official split)"
    split = prov["split"]
    fraction = float(split["internal_fraction"])
    return (f"centres {', '.join(split['external_centers']) or '(none)'} form `external`; the other "
            f"centres' patients are split into `train` and `internal` ({1 - fraction:.0%}/"
            f"{fraction:.0%}) by patient, stratified by label, with seed {split['seed']}")


def _dicom_splits(task: Task, prov: dict[str, Any]) -> str:
    return f"""\
## Splits

Splits follow {_split_rule(prov)}. No patient and no study is in two splits (a patient is
the Issuer of Patient ID and Patient ID across centres, the centre and Patient ID without an
issuer; a study is its Study Instance UID; a seeded split puts a patient seen at an external
centre in `external` with all their studies). `train` rows carry a `fold` ({_fold_range(task)})
assigned by patient and stratified by label."""


def _dicom_headers(prov: dict[str, Any]) -> str:
    return f"""\
## What was kept from the DICOM headers

Only these columns come from the files, and nothing else from any header is stored:

| column | from |
| --- | --- |
| `image` | the pixel data as raw counts (rescale applied), a lossless 16-bit PNG |
| `matrix` | Rows (= Columns) |
| `pixel_spacing_mm` | Pixel Spacing (row spacing; NaN if absent) |
| `acquisition_s` | Actual Frame Duration / 1000 (NaN if absent) |
| `total_counts` | the sum of the pixels |
| `sex` | Patient's Sex reduced to F, M or unknown |
| `age` | whole years, from Patient's Age or from birth date to study date (the dates are not stored){_age_note(prov)} |

`label` and `center` come from the labels CSV. The manifest's provenance holds counts over the
archive of technical values (manufacturers, camera models, collimators, energy windows,
matrices, transfer syntaxes); a free-text value is listed only if at least
{prov['min_patients_per_reported_value']} patients share it and it repeats no identifier, else it is counted as
withheld."""


def _age_note(prov: dict[str, Any]) -> str:
    """How ages above 89 were stored (empty for a dataset built before the rule)."""
    rule = prov.get("pseudonymisation", {}).get("ages_over_89")
    if rule is None:
        return ""
    if rule.startswith("stored as"):
        return "; ages above 89 are stored as 90 (HIPAA Safe Harbor)"
    return "; ages above 89 are kept as recorded (the builder chose `--keep-ages-over-89`)"


def _dicom_identifiers(prov: dict[str, Any]) -> str:
    pseud = prov["pseudonymisation"]
    burned_in = "ingested (the user allowed it)" if prov["burned_in_allowed"] else "rejected"
    return f"""\
## How identifiers were replaced

- `case_id` = `c-` + HMAC-SHA-256(key, SOP Instance UID), first {pseud['hex_digits_kept']} hex digits.
- `patient_id` = `p-` + {pseud.get('patient_id', _OLD_PATIENT_RULE)}, same length.{_study_line(pseud)}
- The key is a secret file kept outside the dataset (key id `{pseud['key_id']}`): the same key
  gives the same pseudonyms on a rebuild; without it the pseudonyms cannot be linked to the
  originals. Names, IDs, UIDs, dates, institutions, physicians, descriptions, comments and
  private tags are not stored.
- Images flagged Burned In Annotation = YES were {burned_in}."""


#: The patient pseudonym's input in datasets whose provenance does not state it (built before
#: the issuer named a patient across centres).
_OLD_PATIENT_RULE = "HMAC-SHA-256(key, centre, Issuer of Patient ID, Patient ID)"


def _study_line(pseud: dict[str, Any]) -> str:
    """The card line on ``study_id`` (empty for a dataset built before it was stored)."""
    if "study_id" not in pseud:
        return ""
    return (f"\n- `study_id` = `s-` + {pseud['study_id']}, same length. No patient and no study is "
            "in two splits (`thyroid-bench verify` re-checks it from these two columns).")


def _dicom_rejected(ingest: dict[str, Any], rejected_file: str) -> str:
    by_reason = sorted(ingest["rejected_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))
    reasons = "\n".join(f"| {reason} | {n} |" for reason, n in by_reason)
    return f"""\
## Files not ingested

{ingest['files_seen']} files were seen: {ingest['ingested']} ingested, {ingest['rejected']} rejected.
`{rejected_file}` lists each rejected file by its keyed pseudonym (`f-` + HMAC-SHA-256(key,
path relative to the archive)), with its reason (fixed wording that quotes no header value) and
its labels-CSV line. No file or folder name of the archive is published: the organiser's report
with the real paths was written beside the key, outside the dataset.

| reason | files |
| --- | --- |
{reasons or '| (none) | 0 |'}"""


# --------------------------------------------------------------------------- licence, citation
def licence_and_citation_section(manifest: Manifest) -> str:
    """``## Licence and citation`` of a dataset whose card has no citation of its own (a DICOM
    build): the licence (``other``: the organisers' terms, to be written into the card), how to
    cite it (name, version, fingerprint, as results name it) and the task's source."""
    task = manifest.get_task()
    if manifest.licence == "other":
        licence = ("Licence: `other`. The terms of use are those of the organisers who hold the "
                   "archive, not a\nstandard licence: write them into this card before it is "
                   "published. On the Hugging Face\nHub, access can be gated so that each user "
                   "agrees to them first (`thyroid-bench publish --gated\nTEXT`).")
    else:
        licence = f"Licence: `{manifest.licence}`."
    ref = task.reference
    source = f"{ref.citation}" + (f", doi {ref.doi}" if ref.doi else "")
    key = re.sub(r"[^A-Za-z0-9.-]+", "-", f"{manifest.name}-{manifest.version}")
    bib = [f"""\
@misc{{{key},
  title = {{{{{manifest.name} {manifest.version}}}: a thyroid-bench dataset of task {task.name}}},
  note  = {{thyroid-bench dataset format v1, fingerprint {manifest.fingerprint}}}
}}"""]
    bib += [_BIBTEX[ref.doi]] if ref.doi in _BIBTEX else []
    return (f"## Licence and citation\n\n{licence}\n\nCite this dataset by its name, version and "
            f"fingerprint (every result names the same\nthree), and the task's source, {source}.\n\n"
            "```bibtex\n" + "\n".join(bib) + "\n```")


# --------------------------------------------------------------------------- the published card
#: What a user of a gated repository is asked before access (Hub ``extra_gated_fields``).
GATED_FIELDS: dict[str, str] = {
    "Name": "text",
    "Affiliation": "text",
    "Country": "country",
    "Intended use": "text",
    "I agree to the terms above and will not try to identify any person in this dataset": "checkbox",
}
_HUB_BEGIN, _HUB_END = "<!-- thyroid-bench publish: begin -->", "<!-- thyroid-bench publish: end -->"
_HUB_BLOCK = re.compile(re.escape(_HUB_BEGIN) + r".*?" + re.escape(_HUB_END) + r"\n*", re.S)
_CITATION_HEADING = re.compile(r"^## (Licence and citation|Citation)\b", re.M)
_GATED_KEY = re.compile(r"^extra_gated_\w*:.*\n(?:[ \t-].*\n)*", re.M)


def hub_section(manifest: Manifest, repo_id: str, revision: str | None = None,
                gated: bool = False) -> str:
    """``## On the Hugging Face Hub``: the repository, how to load it from there with
    ``datasets`` and with thyroid-bench (verified), and how to cite it; between markers, so a
    version published again gets one such section."""
    url = f"https://huggingface.co/datasets/{repo_id}"
    at = f" (revision `{revision}`)" if revision else ""
    access = ("\nAccess is gated: request it on the repository's page, where the organisers "
              "approve each\nrequest, and log in (`hf auth login`) before loading." if gated else "")
    load_rev = f', revision="{revision}"' if revision else ""
    prepare_rev = f" --revision {revision}" if revision else ""
    return f"""\
{_HUB_BEGIN}
## On the Hugging Face Hub

Published with `thyroid-bench publish` as the dataset repository
[`{repo_id}`]({url}){at}.{access}

```python
import datasets
ds = datasets.load_dataset("{repo_id}"{load_rev})   # no thyroid-bench code needed
```

```bash
thyroid-bench prepare --source hub --repo-id {repo_id}{prepare_rev}   # downloads, verifies, installs
thyroid-bench verify {manifest.name}@{manifest.version}   # fingerprint {manifest.fingerprint}
```

Cite it with its address, {url},
beside its name, version and fingerprint.
{_HUB_END}"""


def published_card(card: str, manifest: Manifest, repo_id: str, revision: str | None = None,
                   gated: str | None = None) -> str:
    """The card ``publish`` uploads: ``card`` (the folder's README.md) with :func:`hub_section`
    before its citation (at the end if it has none), any earlier such section replaced, and with
    ``gated`` (the access terms) its front matter's ``extra_gated_prompt`` and
    ``extra_gated_fields`` (:data:`GATED_FIELDS`) set, replacing earlier ones."""
    card = _HUB_BLOCK.sub("", card)
    if gated is not None:
        card = _set_gated(card, gated)
    section = hub_section(manifest, repo_id, revision, gated=gated is not None
                          or "\nextra_gated_prompt:" in card.split("\n---\n", 1)[0])
    m = _CITATION_HEADING.search(card)
    if m is None:
        return card.rstrip("\n") + "\n\n" + section + "\n"
    return card[:m.start()] + section + "\n\n" + card[m.start():]


def _set_gated(card: str, text: str) -> str:
    """The card with its front matter's gating keys set to ``text`` and :data:`GATED_FIELDS`."""
    if not card.startswith("---\n") or "\n---\n" not in card[3:]:
        raise ValueError("the card has no YAML front matter to put the access terms in")
    end = card.index("\n---\n", 3) + 1
    front = _GATED_KEY.sub("", card[4:end])
    prompt = json.dumps(text, ensure_ascii=False)  # a JSON string is a YAML double-quoted scalar
    fields = "".join(f"  {json.dumps(k, ensure_ascii=False)}: {v}\n" for k, v in GATED_FIELDS.items())
    return f"---\n{front}extra_gated_prompt: {prompt}\nextra_gated_fields:\n{fields}" + card[end:]


def gated_text_problem(text: str) -> str | None:
    """Why ``text`` cannot be the access terms of a gated repository, or None."""
    if not text.strip():
        return "it is empty"
    if len(text) > 4000:
        return f"it has {len(text)} characters, more than 4000"
    if any(unicodedata.category(ch).startswith("C") and ch not in "\n\t" for ch in text):
        return "it holds control characters"
    return None
