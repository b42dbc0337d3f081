"""Images put aside on disk while an archive is ingested, so memory holds none of them.

``prepare --source dicom`` reads an archive in path order but writes its studies in case-id
order (keyed pseudonyms), after checks that need every study (duplicates, the patient-level
split, the split sizes). A study's counts are therefore read once, put in a
:class:`PixelStore` (raw counts, uint8 when every count fits, else uint16, appended to one
anonymous temporary file), and fetched again when the writer draws that study's shard. What
stays in memory per study is a :class:`StoredImage` (an offset and a shape) and an
:func:`image_key` (shape and SHA-256 of the counts), which finds exact duplicate images as
comparing the pixels did.

The file has no name (the operating system removes it when it is closed or the process
dies), lies in the dataset home when one exists (on the disk the dataset goes to; a system
temporary folder can be memory-backed) and holds the archive's pixels uncompressed: disk space
about that of the archive's pixel data is needed while the archive is ingested (``--home`` on a
disk with room; a full disk is a :class:`~thyroid_bench.errors.SpillError` naming the folder
and about how much room is needed).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

from thyroid_bench.data.fingerprint import image_digest
from thyroid_bench.errors import SpillError, os_error_line, printable, spill_error

__all__ = ["StoredImage", "PixelStore", "image_key", "spill_folder", "SPILL_ADVICE"]

#: What to do when the pixels do not fit where they are put aside.
SPILL_ADVICE = ("use --home on a disk with room (the pixels wait in the dataset home), or free "
                "space there")


@dataclass(frozen=True, slots=True)
class StoredImage:
    """Where a :class:`PixelStore` keeps one image: its byte offset, shape and stored dtype."""

    offset: int
    shape: tuple[int, int]
    dtype: str

    @property
    def nbytes(self) -> int:
        return self.shape[0] * self.shape[1] * np.dtype(self.dtype).itemsize


def image_key(image: np.ndarray) -> tuple[tuple[int, ...], str]:
    """What identifies an image's counts: its shape and the SHA-256 of its little-endian uint16
    counts (two images have the same key exactly when their counts are equal)."""
    return np.shape(image), image_digest(image)


def spill_folder(*candidates: str | os.PathLike | None) -> Path | None:
    """The first candidate folder that exists, else the nearest existing folder above the first
    candidate (none is created); None (the system's temporary folder) when there is none."""
    paths = [Path(c).expanduser() for c in candidates if c is not None]
    for path in paths:
        if path.is_dir():
            return path
    for parent in (paths[0].parents if paths else ()):
        if parent.is_dir() and os.access(parent, os.W_OK | os.X_OK):
            return parent
    return None


class PixelStore:
    """Images appended to an anonymous temporary file in ``folder`` (default: the system's
    temporary folder) and read back by :class:`StoredImage`. One thread at a time; use as a
    context manager, or call :meth:`close`."""

    def __init__(self, folder: str | os.PathLike | None = None, *, expected: int | None = None) -> None:
        self._folder = None if folder is None else Path(folder)
        self._expected = expected  # images the archive may hold: sizes the room an error asks for
        self._end, self._count = 0, 0
        try:
            self._file: BinaryIO = tempfile.TemporaryFile(prefix="thyroid-bench-pixels-",
                                                          dir=self._folder)
        except OSError as exc:
            raise self._no_room(exc, 0) from None

    def put(self, image: np.ndarray) -> StoredImage:
        """Keep a 2-D image of counts (0-65535); uint8 on disk when it fits. An
        :class:`OSError` (a full disk) is a :class:`~thyroid_bench.errors.SpillError` naming
        the folder and about how much room the archive's pixels need."""
        counts = np.asarray(image)
        dtype = "u1" if counts.dtype == np.uint8 or (counts.size and int(counts.max()) <= 255) else "<u2"
        data = np.ascontiguousarray(counts, dtype=dtype).tobytes()
        try:
            self._file.seek(self._end)
            self._file.write(data)
        except OSError as exc:
            raise self._no_room(exc, len(data)) from None
        ref = StoredImage(self._end, (int(counts.shape[0]), int(counts.shape[1])), dtype)
        self._end += len(data)
        self._count += 1
        return ref

    def _no_room(self, exc: OSError, size: int) -> SpillError:
        return spill_error(exc, "the archive's pixels (read until the writer draws them)",
                           self._folder, written=self._end + size, count=self._count + 1,
                           expected=self._expected, advice=SPILL_ADVICE)

    def get(self, ref: StoredImage) -> np.ndarray:
        """The image ``ref`` points to, as uint16 counts."""
        try:
            self._file.seek(ref.offset)
            data = self._file.read(ref.nbytes)
        except OSError as exc:
            raise SpillError(os_error_line(exc, f"reading back the archive's pixels put aside in "
                                                f"{printable(self._folder or tempfile.gettempdir())}")) from None
        return np.frombuffer(data, dtype=ref.dtype).reshape(ref.shape).astype(np.uint16)

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> PixelStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
