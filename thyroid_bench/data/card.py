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
* :func:`dicom_card`, the body of a dataset built by ``thyroid-bench prepare --source dicom``,
  rendered from the manifest's provenance.
"""

from __future__ import annotations

from typing import Any

from thyroid_bench.data.columns import COLUMNS, VALUE_DTYPES
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
    "dicom_card",
]

_CITATIONS = """\
Titles and full author lists: see the DOIs.

```bibtex
@article{qiao2021thyroid,
  author  = {Qiao and others},
  journal = {BMC Medical Imaging},
  volume  = {21},
  year    = {2021},
  doi     = {10.1186/s12880-021-00710-4}
}
@article{laiphuminh2023datasets,
  author  = {Lai, Phu Minh and others},
  journal = {Journal of Military Science and Technology},
  number  = {88},
  pages   = {131--138},
  year    = {2023},
  doi     = {10.54939/1859-1043.j.mst.88.2023.131-138}
}
```"""


# --------------------------------------------------------------------------- front matter
def _size_category(n: int) -> str:
    for upper, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < upper:
            return label
    return "100K<n<1M"


def _features(task: Task) -> str:
    """``dataset_info.features``: one entry per format column, the label a ClassLabel."""
    names = "\n".join(f"          '{i}': {n}" for i, n in enumerate(task.class_names))
    feats = []
    for col in COLUMNS:
        if col == "image":
            feats.append("  - name: image\n    dtype: image")
        elif col == "label":
            feats.append(f"  - name: label\n    dtype:\n      class_label:\n        names:\n{names}")
        else:
            feats.append(f"  - name: {col}\n    dtype: {VALUE_DTYPES[col]}")
    return "\n".join(feats)


def front_matter(manifest: Manifest) -> str:
    """The card's YAML front matter (between ``---`` lines), from the manifest and its task."""
    task = manifest.get_task()
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
        "configs:\n- config_name: default\n  data_files:\n" + data_files,
        "dataset_info:\n  features:\n" + _features(task),
        "---",
    ])


def render_card(manifest: Manifest, body: str) -> str:
    """A Hugging Face dataset card: YAML front matter from the manifest, then ``body``."""
    return front_matter(manifest) + "\n\n" + body.strip() + "\n"


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
    head = ("| split | centre | " + " | ".join(task.class_label(c.index) for c in task.classes)
            + " | total |")
    rule = "|" + " --- |" * (task.num_classes + 3)
    lines = [head, rule]
    for split, meta in manifest.splits.items():
        centres = ", ".join(meta.center_counts)
        counts = [str(meta.class_counts[n]) for n in task.class_names]
        lines.append(f"| {split} | {centres} | " + " | ".join(counts) + f" | {meta.rows} |")
    return "\n".join(lines)


def labels_table(task: Task) -> str:
    """Markdown table of the task's classes: index, name, the paper's code, reading."""
    rows = "\n".join(f"| {c.index} | `{c.name}` | {c.code or ''} | {c.reading} |" for c in task.classes)
    return "| index | name | paper's type | reading |\n| --- | --- | --- | --- |\n" + rows


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
`pixel_spacing_mm`, `total_counts` (the image's pixel sum), `acquisition_s`, `sex`, `age`.
Fingerprints are SHA-256 over the decoded content of each split (pixels, labels, ids,
metadata, in case-id order), so they do not depend on file bytes."""


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


def citation_section(intro: str) -> str:
    """``## Citation``: ``intro`` (what comes from where), then the references as BibTeX."""
    return f"## Citation\n\n{intro}\n\n{_CITATIONS}"


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
    return "\n\n".join([
        _dicom_intro(manifest),
        _dicom_splits(manifest.get_task(), prov),
        _dicom_headers(prov),
        _dicom_identifiers(prov),
        _dicom_rejected(prov["ingest"], rejected_file),
    ]) + "\n"


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

Splits follow {_split_rule(prov)}. No patient is in two splits. `train` rows carry a `fold` ({_fold_range(task)})
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
| `age` | whole years, from Patient's Age or from birth date to study date (the dates are not stored) |

`label` and `center` come from the labels CSV. The manifest's provenance holds counts over the
archive of technical values (manufacturers, camera models, collimators, energy windows,
matrices, transfer syntaxes); a free-text value is listed only if at least
{prov['min_patients_per_reported_value']} patients share it and it repeats no identifier, else it is counted as
withheld."""


def _dicom_identifiers(prov: dict[str, Any]) -> str:
    pseud = prov["pseudonymisation"]
    burned_in = "ingested (the user allowed it)" if prov["burned_in_allowed"] else "rejected"
    return f"""\
## How identifiers were replaced

- `case_id` = `c-` + HMAC-SHA-256(key, SOP Instance UID), first {pseud['hex_digits_kept']} hex digits.
- `patient_id` = `p-` + HMAC-SHA-256(key, centre, Issuer of Patient ID, Patient ID), same length.
- The key is a secret file kept outside the dataset (key id `{pseud['key_id']}`): the same key
  gives the same pseudonyms on a rebuild; without it the pseudonyms cannot be linked to the
  originals. Names, IDs, UIDs, dates, institutions, physicians, descriptions, comments and
  private tags are not stored.
- Images flagged Burned In Annotation = YES were {burned_in}."""


def _dicom_rejected(ingest: dict[str, Any], rejected_file: str) -> str:
    by_reason = sorted(ingest["rejected_by_reason"].items(), key=lambda kv: (-kv[1], kv[0]))
    reasons = "\n".join(f"| {reason} | {n} |" for reason, n in by_reason)
    return f"""\
## Files not ingested

{ingest['files_seen']} files were seen: {ingest['ingested']} ingested, {ingest['rejected']} rejected.
`{rejected_file}` lists each rejected file with its reason and its labels-CSV line. Paths are
relative to the archive folder; a path that contains a name, ID, UID or date from any header of
the archive is replaced by its keyed pseudonym (`f-...`). Folder and file names are the
archive's own: check them before publishing.

| reason | files |
| --- | --- |
{reasons or '| (none) | 0 |'}"""
