"""The dataset card of the synthetic reference cohort, rendered from its manifest.

``thyroid-bench prepare`` writes this text (after the YAML front matter) as the
dataset's ``README.md``; the repository's ``dataset_card.md`` is the same text
for the official release, and a test keeps the two equal.
"""

from __future__ import annotations

from typing import Any

from thyroid_bench.schema import CLASSES, CLASS_NAMES

__all__ = ["synthetic_card", "counts_table"]

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


def counts_table(manifest: dict[str, Any]) -> str:
    """Markdown table of rows per split and class, from a manifest."""
    head = "| split | centre | " + " | ".join(f"{c.name} ({c.paper_type})" for c in CLASSES) + " | total |"
    rule = "|" + " --- |" * (len(CLASSES) + 3)
    lines = [head, rule]
    for split, meta in manifest["splits"].items():
        centres = ", ".join(meta.get("center_counts", {}))
        counts = [str(meta["class_counts"][n]) for n in CLASS_NAMES]
        lines.append(f"| {split} | {centres} | " + " | ".join(counts) + f" | {meta['rows']} |")
    return "\n".join(lines)


def synthetic_card(manifest: dict[str, Any]) -> str:
    """Markdown body of the tsb-synthetic card (the YAML front matter is added by the writer)."""
    prov = manifest.get("provenance", {})
    seed = prov.get("seed", "?")
    labels = "\n".join(f"| {c.index} | `{c.name}` | {c.paper_type} | {c.reading} |" for c in CLASSES)
    return f"""\
# {manifest['name']} {manifest['version']}: a synthetic reference cohort of thyroid scintigrams

**This is a phantom study.** Every image is simulated; no patient data went into it and no
clinical claim rests on it. It exists so that the thyroid-bench format, harness and leaderboard
work out of the box, offline, on data shaped like the cohort of Qiao et al. 2021.

- dataset fingerprint: `{manifest['fingerprint']}`
- generator seed: `{seed}`, built by `thyroid-bench prepare` (thyroid-bench, `thyroid_bench/data/synthetic.py`)
- task: `{manifest['task']}`, label schema v{manifest['label_schema']['version']}
- licence: {manifest.get('licence', 'other')}

## Splits and counts

The class counts per split are those of Table 1 of Qiao et al. 2021. `train` and `internal`
come from centre 1, `external` from centre 2 and is never trained on. `train` rows carry a
fixed `fold` (0-4, stratified by label); protocols that need model selection hold out fold 0.

{counts_table(manifest)}

## Labels (schema v1, task `four-pattern`)

| index | name | paper's type | reading |
| --- | --- | --- | --- |
{labels}

Labels come the way the paper's did: from readers. Three simulated readers apply the paper's
criteria (gland size, thyroid-to-salivary uptake, hot and cold areas, suppression of the
extranodular tissue) to the latent patient, each with their own thresholds and noise; the
majority is the label, and a three-way split goes to the senior reader. Patients are drawn with an intended pattern and kept until each class's
quota is filled by the readers' consensus, so borderline cases exist (heterogeneous glands read
as diffusely increased, a partly suppressed gland around a hot nodule read either way) and no
classifier can reach 100%.

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
field, so centre-1 pixels are about 1.09 mm and centre-2 pixels about 2.19 mm.

## Format (thyroid-bench dataset format v1)

```
manifest.json   format version, name, version, task, label schema, splits (rows, class
                counts, fingerprints), provenance, licence
README.md       this card
data/<split>-0000i-of-0000N.parquet
```

Columns: `case_id`, `patient_id` (pseudonymous), `image` (16-bit grayscale PNG of raw counts),
`label` (ClassLabel), `center`, `fold` (0-4 in train, -1 elsewhere), `matrix`,
`pixel_spacing_mm`, `total_counts` (the image's pixel sum), `acquisition_s`, `sex`, `age`.
Fingerprints are SHA-256 over the decoded content of each split (pixels, labels, ids,
metadata, in case-id order), so they do not depend on file bytes.

## How to load it

```python
import datasets
ds = datasets.load_dataset("path/to/{manifest['name']}/{manifest['version']}")   # no thyroid-bench code needed

import thyroid_bench
ds = thyroid_bench.load_dataset("{manifest['name']}")        # also verifies the fingerprints
```

`thyroid-bench verify` checks the manifest, schema, counts, images, fingerprints and that no
patient, case or image is in two splits.

## Intended use and limits

Use it to test pipelines, compare models under one protocol, and teach. Do not use it to
make or support a clinical claim: the phantoms follow published anatomy and acquisition
figures, not a patient population, and the simulated readers follow the paper's criteria,
not real readers' variability. Results on it say how a method behaves on this simulation.

## Citation

The clinical task and the cohort's structure come from Qiao et al. 2021; the case for
standardised scintigraphy datasets with benchmarks from Lai Phu Minh et al. 2023.

{_CITATIONS}
"""
