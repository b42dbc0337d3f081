"""Duplicate images in a DICOM archive: a later study whose pixels equal a kept study's.

One index for both readings of an archive (one image per study, and the anterior view of a
two-view study, :mod:`thyroid_bench.data.dicom.pairing`). Images are compared by their
:func:`~thyroid_bench.data.dicom.pixel_store.image_key` (shape and SHA-256 of the counts), so
the index holds a few dozen bytes per study, never pixels.
"""

from __future__ import annotations

from collections.abc import Hashable

from thyroid_bench.data.dicom.labels_csv import LabelRow

__all__ = ["ImageIndex"]


class ImageIndex:
    """The image keys of the studies kept so far, each with the labels-CSV row of its study."""

    def __init__(self) -> None:
        self._rows: dict[Hashable, LabelRow] = {}

    def duplicate(self, key: Hashable) -> str | None:
        """Why an image with ``key`` duplicates a kept study's (naming its labels line), or None."""
        twin = self._rows.get(key)
        if twin is None:
            return None
        return f"duplicate image: identical pixels to the study of labels line {twin.line}"

    def add(self, key: Hashable, row: LabelRow) -> None:
        """Keep the image key ``key`` of the study labelled by ``row`` (the first one kept)."""
        self._rows.setdefault(key, row)
