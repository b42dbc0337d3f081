"""Duplicate images in a DICOM archive: a later study whose pixels equal a kept study's.

One index for both readings of an archive (one image per study, and the anterior view of a
two-view study, :mod:`thyroid_bench.data.dicom.pairing`): candidates share shape and pixel
sum, and their pixels are then compared exactly.
"""

from __future__ import annotations

from collections import defaultdict

import numpy as np

from thyroid_bench.data.dicom.labels_csv import LabelRow

__all__ = ["ImageIndex"]


class ImageIndex:
    """The images of the studies kept so far, each with the labels-CSV row of its study."""

    def __init__(self) -> None:
        self._by_key: dict[tuple, list[tuple[LabelRow, np.ndarray]]] = defaultdict(list)

    def duplicate(self, image: np.ndarray, total_counts: int) -> str | None:
        """Why ``image`` duplicates a kept study's (naming its labels line), or None."""
        twin = next((r for r, img in self._by_key[(image.shape, total_counts)]
                     if np.array_equal(img, image)), None)
        if twin is None:
            return None
        return f"duplicate image: identical pixels to the study of labels line {twin.line}"

    def add(self, image: np.ndarray, total_counts: int, row: LabelRow) -> None:
        """Keep ``image`` (of the study labelled by ``row``)."""
        self._by_key[(image.shape, total_counts)].append((row, image))
