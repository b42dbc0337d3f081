"""A split's rows as the dataset writer takes them: the compact columns at once, the images in batches.

:func:`~thyroid_bench.data.format.write_dataset` takes each split either as a list of rows
(dicts holding every column, images as 2-D uint16 arrays of counts) or as a
:class:`SplitRows`: the rows' columns without their images (ids, label, fold, metadata: a few
hundred bytes a row) and an iterable of the rows' images in the same order, which the writer
draws from one shard at a time. The checks that need a whole split (its size and train folds,
the optional columns, leakage between splits, withheld labels, the case-id order the
fingerprint hashes in) run on the compact columns before the first image is asked for; the
images of a source that renders or reads them lazily (the synthetic generators, a DICOM
archive) are never all in memory at once.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np

from thyroid_bench.errors import DatasetError, ThyroidBenchError

__all__ = ["SplitRows", "as_split_rows"]


@dataclass
class SplitRows:
    """One split for the writer: ``meta`` every row's columns but its images, in row order;
    ``images`` one mapping per row, in the same order, from each image column (``image`` and the
    task's extra image columns) to its 2-D uint16 counts. Images given as a sequence are in
    memory already (:attr:`in_memory`): the writer then checks every row before it writes any."""

    meta: Sequence[Mapping[str, Any]]
    images: Iterable[Mapping[str, np.ndarray]]

    def __len__(self) -> int:
        return len(self.meta)

    @property
    def in_memory(self) -> bool:
        """Whether the images are a sequence (in memory), which can be read twice."""
        return isinstance(self.images, Sequence)

    def rows(self) -> Iterator[dict[str, Any]]:
        """Every whole row (its ``meta`` with its images), in order; only :attr:`in_memory`."""
        assert self.in_memory, "a lazy source's images can be read once only"
        return ({**m, **im} for m, im in zip(self.meta, self.images))

    def batches(self, size: int, split: str) -> Iterator[tuple[int, list[dict[str, Any]]]]:
        """(index of the first row, whole rows) for every ``size`` rows, in order: each row its
        ``meta`` with its images; :class:`DatasetError` when the images run out early or are
        more than the rows, or when drawing them fails (a lazy source's own error, unless it
        is already one of thyroid-bench's, is named in one line)."""
        images = iter(self.images)
        for start in range(0, max(len(self.meta), 1), size):  # an empty split: one empty batch
            meta = self.meta[start:start + size]
            try:
                batch = list(islice(images, len(meta)))
            except ThyroidBenchError:
                raise
            except Exception as exc:  # noqa: BLE001 - whatever the source raises, one line
                raise DatasetError(
                    f"split {split!r}: the images of rows {start}-{start + len(meta) - 1} could not "
                    f"be drawn from the split's source ({type(exc).__name__}: {exc}); nothing was "
                    "written: fix the source (the archive, the pixels put aside) and run again") from exc
            if len(batch) < len(meta):
                raise DatasetError(f"split {split!r}: {len(self.meta)} rows but images for only "
                                   f"{start + len(batch)}")
            yield start, [{**m, **im} for m, im in zip(meta, batch)]
        if next(images, None) is not None:
            raise DatasetError(f"split {split!r}: more images than its {len(self.meta)} rows")


def as_split_rows(rows: SplitRows | Iterable[Mapping[str, Any]], image_columns: Sequence[str]) -> SplitRows:
    """``rows`` as a :class:`SplitRows`: itself, or a list of whole rows split into their
    compact columns and their images (the list stays as it is: its images are in memory)."""
    if isinstance(rows, SplitRows):
        return rows
    rows = rows if isinstance(rows, list) else list(rows)
    images = set(image_columns)
    meta = [{k: v for k, v in row.items() if k not in images} for row in rows]
    return SplitRows(meta, [{c: row[c] for c in image_columns if c in row} for row in rows])
