"""Split isolation of a dataset version, from its stored columns and images.

Two checks, used by the writer, ``verify`` and ``info``:

* :func:`isolation_problems`: no case, no patient (``patient_id``) and, where the dataset stores
  it, no study (``study_id``) is in two splits. Each violation names the ids and their splits.
* :func:`near_duplicates`: images of two different splits that are the same acquisition
  re-exported, resampled or rescaled (exact copies are refused outright). Reported as a
  warning listing the pairs, never a failure: two genuinely different scans can, rarely, look
  alike, and a person should look.

Similarity measure. Each image is reduced by area averaging to a :data:`THUMB` x :data:`THUMB`
thumbnail (each output pixel the mean of the input area it covers, fractional pixels weighted:
any matrix size, resampling-invariant), normalised to unit sum (count-scale invariant: a
rescaled or longer acquisition has the same thumbnail), and compared by Pearson correlation.
A pair of different splits with correlation >= :data:`NEAR_DUPLICATE_CORRELATION` is a near
duplicate. Rescaling and 2x2 binning give correlation 1.0, bilinear resampling to 128, 192,
257 or 512 pixels from 256 above 0.99999 (a fresh Poisson draw from the same image: 0.9999).
Between different studies the highest cross-split correlation is 0.9919 in tsb-synthetic (3389
images) and 0.9951 in tsb-residual (1775; 0.9984 within one split): Poisson noise and anatomy
differ even between phantoms of one pattern. The threshold 0.999 lies between the two, so
neither official dataset reports a pair. Comparison is
a blocked matrix product of the standardised thumbnails (every cross-split pair, O(n^2) but
BLAS-fast: well under a second for tsb-synthetic).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thyroid_bench.data.images import decode_image
from thyroid_bench.data.shards import image_bytes, shard_error, shard_files
from thyroid_bench.tasks import SPLITS

__all__ = [
    "THUMB",
    "NEAR_DUPLICATE_CORRELATION",
    "isolation_problems",
    "thumbnails",
    "NearDuplicate",
    "near_duplicates",
    "near_duplicate_warning",
    "dataset_near_duplicates",
]

#: Side of the area-averaged thumbnail images are compared by.
THUMB = 16
#: Pearson correlation of two thumbnails at or above which two images are near duplicates.
NEAR_DUPLICATE_CORRELATION = 0.999
#: The id columns that must not cross splits (``study_id`` only where the dataset stores it).
_ISOLATED = (("case_id", "case", "cases"), ("patient_id", "patient", "patients"),
             ("study_id", "study", "studies"))
_SHOWN = 5  # ids named per violation, pairs named per warning
_BLOCK = 2048  # rows of the correlation product computed at once
_READ_BATCH = 64  # images decoded at a time


def isolation_problems(tables: Mapping[str, pd.DataFrame]) -> list[str]:
    """One line per id column that has values in two splits, naming up to five of them with
    their splits; empty when cases, patients and studies are isolated."""
    problems = []
    for column, one, many in _ISOLATED:
        if not all(column in tables[s].columns for s in SPLITS if s in tables):
            continue
        splits_of: dict[str, list[str]] = {}
        for split in SPLITS:
            if split in tables:
                for value in pd.unique(tables[split][column]):
                    splits_of.setdefault(str(value), []).append(split)
        crossing = {v: s for v, s in splits_of.items() if len(s) > 1}
        if crossing:
            shown = "; ".join(f"{column} {v!r} is in {'both ' if len(s) == 2 else ''}"
                              f"{', '.join(s[:-1])} and {s[-1]}"
                              for v, s in list(crossing.items())[:_SHOWN])
            more = f" (and {len(crossing) - _SHOWN} more)" if len(crossing) > _SHOWN else ""
            problems.append(f"{len(crossing)} {one if len(crossing) == 1 else many} in two "
                            f"splits: {shown}{more}; splits must not share {many}")
    return problems


def _area_matrix(n: int, out: int = THUMB) -> np.ndarray:
    """``out x n`` weights: output bin i averages input cells by their overlap with
    [i * n / out, (i + 1) * n / out)."""
    edges = np.arange(out + 1) * (n / out)
    lo, hi = edges[:-1, None], edges[1:, None]
    cells = np.arange(n)[None, :]
    overlap = np.clip(np.minimum(hi, cells + 1) - np.maximum(lo, cells), 0.0, None)
    return overlap / overlap.sum(axis=1, keepdims=True)


def thumbnails(images: Sequence[np.ndarray]) -> np.ndarray:
    """``(len(images), THUMB * THUMB)`` float32: each image area-averaged to THUMB x THUMB and
    normalised to unit sum (a blank image stays zeros)."""
    out = np.zeros((len(images), THUMB * THUMB), dtype=np.float32)
    weights: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
    for i, img in enumerate(images):
        rows, cols = np.shape(img)
        if rows % THUMB == 0 and cols % THUMB == 0:  # whole blocks: a sum is the area mean
            small = np.asarray(img).reshape(THUMB, rows // THUMB, THUMB, cols // THUMB).sum(
                axis=(1, 3), dtype=np.float64)
        else:
            if (rows, cols) not in weights:
                weights[rows, cols] = (_area_matrix(rows), _area_matrix(cols).T)
            wr, wc = weights[rows, cols]
            small = wr @ np.asarray(img, dtype=np.float64) @ wc
        total = small.sum()
        if total > 0:
            out[i] = (small / total).ravel()
    return out


@dataclass(frozen=True)
class NearDuplicate:
    """Two images of different splits whose thumbnails correlate at or above the threshold."""

    split_a: str
    case_a: str
    split_b: str
    case_b: str
    correlation: float

    def render(self) -> str:
        return (f"{self.split_a} {self.case_a} ~ {self.split_b} {self.case_b} "
                f"(r = {self.correlation:.4f})")


def _standardise(thumbs: np.ndarray) -> np.ndarray:
    """Rows centred and scaled to unit norm, so a dot product is the Pearson correlation."""
    x = thumbs.astype(np.float64) - thumbs.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(x, axis=1, keepdims=True)
    return np.divide(x, norm, out=np.zeros_like(x), where=norm > 0)


def near_duplicates(thumbs: Mapping[str, np.ndarray], case_ids: Mapping[str, Sequence[str]],
                    threshold: float = NEAR_DUPLICATE_CORRELATION) -> list[NearDuplicate]:
    """Every pair of images from two different splits (``thumbs`` from :func:`thumbnails`, in
    the order of ``case_ids``) whose thumbnails correlate at or above ``threshold``, most
    similar first."""
    std = {s: _standardise(t) for s, t in thumbs.items()}
    splits = [s for s in SPLITS if s in std]
    found = []
    for k, a in enumerate(splits):
        for b in splits[k + 1:]:
            for start in range(0, len(std[a]), _BLOCK):
                corr = std[a][start:start + _BLOCK] @ std[b].T
                for i, j in zip(*np.nonzero(corr >= threshold)):
                    found.append(NearDuplicate(a, str(case_ids[a][start + i]), b,
                                               str(case_ids[b][j]), float(corr[i, j])))
    return sorted(found, key=lambda d: (-d.correlation, d.split_a, d.case_a, d.case_b))


def near_duplicate_warning(pairs: Sequence[NearDuplicate]) -> str | None:
    """The warning line for ``pairs`` (None when there are none)."""
    if not pairs:
        return None
    shown = "; ".join(p.render() for p in pairs[:_SHOWN])
    more = f" (and {len(pairs) - _SHOWN} more)" if len(pairs) > _SHOWN else ""
    return (f"{len(pairs)} near-duplicate image pair(s) across splits (16x16 area thumbnails, "
            f"unit sum, Pearson r >= {NEAR_DUPLICATE_CORRELATION}: the same acquisition resampled "
            f"or rescaled?): {shown}{more}; check them and drop one of each pair if so")


def dataset_near_duplicates(path: Path) -> str | None:
    """The near-duplicate warning of the dataset folder ``path`` (its ``image`` column decoded
    a batch of rows at a time: memory holds thumbnails, not images), or None: what
    ``thyroid-bench info`` prints."""
    thumbs, case_ids = {}, {}
    for split in SPLITS:
        parts, case_ids[split] = [], []
        for f in shard_files(path, split):
            try:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=_READ_BATCH,
                                                            columns=["case_id", "image"]):
                    case_ids[split] += batch.column("case_id").to_pylist()
                    pngs = image_bytes(batch.column("image"))
                    parts.append(thumbnails([decode_image(b) for b in pngs]))
            except (pa.ArrowException, OSError) as exc:
                raise shard_error(f, exc) from None
        thumbs[split] = np.concatenate(parts) if parts else thumbnails([])
    return near_duplicate_warning(near_duplicates(thumbs, case_ids))
