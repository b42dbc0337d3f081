"""One pass over a split's shards, a batch of rows at a time: what ``verify`` checks of its images.

:func:`~thyroid_bench.data.verify.verify_dataset` reads each split twice, neither time whole:
its columns without the images (:meth:`SplitShards.table`: ids, labels, folds, metadata, a
few hundred bytes a row), then its images :data:`BATCH` rows at a time
(:func:`scan_images`), decoding each, checking it against its row's ``matrix`` and
``total_counts`` (and an extra image against ``image``'s shape), and keeping of it only its
16 x 16 thumbnail (:func:`~thyroid_bench.data.isolation.thumbnails`), its digest
(:func:`~thyroid_bench.data.fingerprint.image_digest`) and its part of the content
fingerprint (:class:`~thyroid_bench.data.fingerprint.SplitHasher`, which spills to a
temporary file, as PNG bytes, when the rows are not in case-id order: about the split's
shards' size in the system's temporary folder, or ``$TMPDIR``). Memory holds one shard's PNGs at most,
whatever the size of the split. The problems found are those, worded and ordered as,
the whole split in memory gave: every ``image`` problem (its decoding stops at the first image
that does not decode), then each extra image column's (their decoding stops at the first that
does not decode, column by column; shapes are compared only when every ``image`` decoded).
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thyroid_bench.data.columns import extra_image_columns
from thyroid_bench.data.fingerprint import SplitHasher, image_digest, in_case_order
from thyroid_bench.data.images import decode_image
from thyroid_bench.data.isolation import thumbnails
from thyroid_bench.data.shards import (image_bytes, image_fields, open_shard, read_split, shard_error,
                                       shard_files)
from thyroid_bench.tasks import Task

__all__ = ["BATCH", "SplitShards", "ImageScan", "scan_images"]

#: Rows whose images are decoded and checked at a time.
BATCH = 64


class SplitShards:
    """A split's shards in a dataset folder, their footers read (:class:`~thyroid_bench.errors.
    DatasetError` naming a shard that cannot be read, or when there is none): the columns they
    hold and, on demand, their rows."""

    def __init__(self, path: Path, split: str) -> None:
        self.path, self.split = path, split
        self.files = shard_files(path, split)
        self.columns: list[str] = []
        self.image_columns: list[str] = []
        for f in self.files:
            schema = open_shard(f).schema_arrow
            self.columns += [c for c in schema.names if c not in self.columns]
            self.image_columns += [c for c in image_fields(schema) if c not in self.image_columns]

    def table(self) -> pd.DataFrame:
        """Every column but the images, every row, in file order (as
        :func:`~thyroid_bench.data.shards.read_split` reads them)."""
        return read_split(self.path, self.split, [c for c in self.columns if c not in self.image_columns])

    def image_batches(self, columns: Sequence[str], size: int = BATCH) -> Iterator[dict[str, list]]:
        """The PNG bytes of ``columns``, ``size`` rows at a time, in file order."""
        for f in self.files:
            try:
                for batch in pq.ParquetFile(f).iter_batches(batch_size=size, columns=list(columns)):
                    yield {c: image_bytes(batch.column(c)) for c in columns}
            except (pa.ArrowException, OSError) as exc:
                raise shard_error(f, exc) from None


@dataclass
class ImageScan:
    """What :func:`scan_images` found: problems, and, when every image decoded, the split's
    content fingerprint, thumbnails (file order) and image digests."""

    problems: list[str]
    fingerprint: str | None = None
    thumbs: np.ndarray | None = None
    digests: set[str] | None = None


@dataclass
class _Findings:
    """The image problems of a split so far, kept as the whole split in memory reported them."""

    split: str
    extras: tuple[str, ...]
    image: list[str] = field(default_factory=list)
    image_failed: bool = False
    shapes: dict[str, list[str]] = field(default_factory=dict)     # per extra: shape problems
    failures: dict[str, list[str]] = field(default_factory=dict)   # per extra: its decode failure
    stop: int | None = None  # extra columns from this index on are no longer decoded

    def decode(self, record: Mapping[str, Any], pngs: Mapping[str, Any]) -> dict[str, np.ndarray] | None:
        """One row's images decoded and checked; None once any image of the split failed."""
        case_id, out = record["case_id"], {}
        if not self.image_failed:
            try:
                img = decode_image(pngs["image"])
            except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding
                self.image.append(f"split {self.split}: image of case {case_id} does not decode ({exc})")
                self.image_failed = True
            else:
                self._check_image(case_id, img, record["matrix"], record["total_counts"])
                out["image"] = img
        for k, col in enumerate(self.extras[:self.stop]):
            try:
                extra = decode_image(pngs[col])
            except Exception as exc:  # noqa: BLE001
                self.failures[col] = [f"split {self.split}: {col} of case {case_id} does not decode ({exc})"]
                for later in self.extras[k + 1:]:  # never reached, column by column
                    self.shapes.pop(later, None)
                    self.failures.pop(later, None)
                self.stop = k
                break
            if "image" in out and extra.shape != out["image"].shape:
                self.shapes.setdefault(col, []).append(
                    f"split {self.split}: case {case_id} {col} {extra.shape} differs from image "
                    f"{out['image'].shape}")
            out[col] = extra
        return None if self.image_failed or self.stop is not None else out

    def _check_image(self, case_id: Any, img: np.ndarray, matrix: Any, total: Any) -> None:
        if img.shape != (matrix, matrix):
            self.image.append(f"split {self.split}: case {case_id} image {img.shape} but matrix {matrix}")
        if int(img.sum(dtype=np.int64)) != int(total):
            self.image.append(f"split {self.split}: case {case_id} pixel sum {int(img.sum())} != "
                              f"total_counts {total}")

    def problems(self) -> list[str]:
        """Every problem, in the whole-split order (see the module docstring)."""
        out = list(self.image)
        for col in self.extras:
            out += ([] if self.image_failed else self.shapes.get(col, [])) + self.failures.get(col, [])
        return out


def scan_images(shards: SplitShards, table: pd.DataFrame, task: Task,
                spill_dir: str | os.PathLike | None = None) -> ImageScan:
    """Decode and check every image of a split (``table``: its rows' other columns, from
    :meth:`SplitShards.table`), a batch at a time; see the module docstring."""
    extras = extra_image_columns(task)
    findings = _Findings(shards.split, extras)
    thumbs: list[np.ndarray] = []
    digests: set[str] = set()
    with SplitHasher(task, ordered=in_case_order(table["case_id"]),
                     spill_dir=spill_dir, rows=len(table)) as hasher:
        start = 0
        for batch in shards.image_batches(["image", *extras]):
            records = table.iloc[start:start + len(batch["image"])].to_dict("records")
            decoded = []
            for j, record in enumerate(records):
                pngs = {c: batch[c][j] for c in batch}
                images = findings.decode(record, pngs)
                if images is not None:
                    hasher.add(record, images, pngs)
                    digests.update(image_digest(im) for im in images.values())
                    decoded.append(images["image"])
            if len(decoded) == len(records):
                thumbs.append(thumbnails(decoded))
            start += len(records)
        if findings.image_failed or findings.stop is not None:
            return ImageScan(findings.problems())
        fingerprint = hasher.hexdigest()
    return ImageScan(findings.problems(), fingerprint,
                     np.concatenate(thumbs) if thumbs else thumbnails([]), digests)
