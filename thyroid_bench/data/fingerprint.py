"""Content fingerprints of dataset format v1.

SHA-256 over the decoded content of each split (pixels, labels, ids, metadata, in case-id
order), never over file bytes, so a fingerprint survives re-compression and other pyarrow
versions. The dataset fingerprint hashes the split fingerprints in split order.

A task's extra columns are hashed too: a float column with the metadata (canonical
``repr(float)``, null for missing or NaN), an extra image column as its decoded pixels after
``image``'s. A task without extra columns hashes exactly what format v1 always hashed, so
its fingerprints do not change.

Streaming: :class:`SplitHasher` takes a split's rows one at a time, in any order, with memory
that does not grow with the split. Rows given in case-id order are hashed as they come; rows in
any other order are spilled to an anonymous temporary file (as their PNG bytes when the caller
has them, as ``verify`` and ``write_dataset`` do: about the size of the split's shards; else
their pixels uncompressed) and are hashed in case-id order at the end, the PNGs decoded again.
Both give exactly :func:`split_fingerprint`'s value.
"""

from __future__ import annotations

import hashlib
import json
import os
import struct
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import pandas as pd

from thyroid_bench.data.columns import (
    FLOAT_COLUMNS,
    INT_COLUMNS,
    META_COLUMNS,
    extra_float_columns,
    extra_image_columns,
    meta_columns,
)
from thyroid_bench.data.images import decode_image
from thyroid_bench.errors import SpillError, spill_error
from thyroid_bench.tasks import BASE_COLUMNS, SPLITS, Task

__all__ = ["split_fingerprint", "dataset_fingerprint", "image_digest", "case_order", "in_case_order",
           "SplitHasher", "SPILL_ADVICE"]

_HEADER = b"thyroid-bench split fingerprint v1\n"

def _canonical_meta(row: Mapping[str, Any], columns: tuple[str, ...] = META_COLUMNS,
                    floats: frozenset[str] = frozenset(FLOAT_COLUMNS)) -> bytes:
    meta = {}
    for col in columns:
        value = row[col]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            meta[col] = None
        elif col in floats:
            meta[col] = repr(float(value))
        elif col in INT_COLUMNS:
            meta[col] = int(value)
        else:
            meta[col] = str(value)
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def split_fingerprint(table: pd.DataFrame, images: Iterable[np.ndarray] | None = None, *,
                      task: Task | None = None,
                      extra_images: Mapping[str, Iterable[np.ndarray]] | None = None) -> str:
    """SHA-256 over a split's decoded content, rows in case-id order.

    ``table`` has the task's columns, every image column as PNG bytes; ``images`` (``image``
    decoded, in the table's row order) and ``extra_images`` (each extra image column decoded)
    save decoding twice. ``task`` names the extra columns; without it the table must have
    format v1's base columns only.
    """
    extras = [c for c in table.columns if c not in BASE_COLUMNS]
    if task is None and extras:
        raise ValueError(f"the table has extra columns {extras}: pass the dataset's task")
    meta = META_COLUMNS if task is None else meta_columns(task)
    floats = frozenset((*FLOAT_COLUMNS, *(extra_float_columns(task) if task else ())))
    more = extra_image_columns(task) if task is not None else ()
    decoded = {"image": list(images) if images is not None else [decode_image(b) for b in table["image"]]}
    for col in more:
        given = (extra_images or {}).get(col)
        decoded[col] = list(given) if given is not None else [decode_image(b) for b in table[col]]
    order = case_order(table["case_id"])
    records = table.to_dict("records")
    h = hashlib.sha256(_HEADER)
    for i in order:
        for part in _row_parts(records[i], {c: decoded[c][i] for c in decoded}, meta, floats, more):
            h.update(part)
    return h.hexdigest()


def case_order(case_ids: Iterable[Any]) -> np.ndarray:
    """The order in which a split's rows are hashed: by case id (as text), ties in row order."""
    ids = case_ids.to_numpy(dtype=str) if isinstance(case_ids, pd.Series) else np.asarray(
        [str(c) for c in case_ids], dtype=str)
    return np.argsort(ids, kind="stable")


def in_case_order(case_ids: Iterable[Any]) -> bool:
    """Whether rows with these case ids already come in :func:`case_order` (so a
    :class:`SplitHasher` can hash each as it comes)."""
    order = case_order(case_ids)
    return bool((order == np.arange(len(order))).all())


def _row_parts(record: Mapping[str, Any], images: Mapping[str, np.ndarray], meta: tuple[str, ...],
               floats: frozenset[str], more: tuple[str, ...]) -> list[bytes]:
    """What one row adds to its split's hash: the canonical metadata, then each image column's
    shape and little-endian uint16 pixels (an extra column's name before its shape)."""
    parts = [_canonical_meta(record, meta, floats)]
    for column in ("", *more):
        parts += _image_parts(column, images[column or "image"])
    return parts


def _image_parts(column: str, image: np.ndarray) -> list[bytes]:
    img = np.ascontiguousarray(image, dtype="<u2")
    return [f"{column}|{img.shape[0]}x{img.shape[1]}|".encode(), img.tobytes()]


_LENGTH = struct.Struct("<Q")
#: What the spill file needs when the rows come in another order.
SPILL_ADVICE = "set TMPDIR to a disk with room (verify, run and submit spill there)"


class SplitHasher:
    """A split's fingerprint from its rows given one at a time (:func:`split_fingerprint`'s value).

    ``task`` as for :func:`split_fingerprint` (None: format v1's base columns). ``ordered``: the
    rows come in case-id order (:func:`case_order` is the identity), so each is hashed at once
    and nothing is kept; otherwise each row goes to an anonymous temporary file in ``spill_dir``
    (default: the system's temporary folder), removed when the hasher is closed, and is read
    back in case-id order by :meth:`hexdigest`. A row given with its PNG bytes (``pngs`` of
    :meth:`add`, as the shards hold them: several times smaller than the pixels) is spilled as
    those and decoded again at the end; else its pixels are spilled. Memory holds a case id and
    two offsets per row, never pixels. An :class:`OSError` while spilling is a
    :class:`~thyroid_bench.errors.SpillError` naming the folder, the room needed (estimated for ``rows``, the
    split's, when known) and ``advice``.
    Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, task: Task | None = None, *, ordered: bool,
                 spill_dir: str | os.PathLike | None = None, rows: int | None = None,
                 advice: str = SPILL_ADVICE) -> None:
        self._meta = META_COLUMNS if task is None else meta_columns(task)
        self._floats = frozenset((*FLOAT_COLUMNS, *(extra_float_columns(task) if task else ())))
        self._more = extra_image_columns(task) if task is not None else ()
        self._ordered = ordered
        self._hash = hashlib.sha256(_HEADER)
        self._spill_dir = None if spill_dir is None else Path(spill_dir)
        self._rows, self._advice = rows, advice
        self._file: BinaryIO | None = None
        self._ids: list[str] = []
        self._ends: list[int] = [0]
        self._encoded = bytearray()  # per spilled row: 1 when spilled as PNG bytes
        self._last: str | None = None

    def add(self, record: Mapping[str, Any], images: Mapping[str, np.ndarray],
            pngs: Mapping[str, bytes] | None = None) -> None:
        """Add one row: ``record`` its columns (at least the hashed metadata), ``images`` its
        decoded image columns (``image`` and the task's extra image columns), ``pngs`` the same
        columns' PNG bytes when the caller has them (those decode to ``images``)."""
        case_id = str(record["case_id"])
        if self._ordered:
            if self._last is not None and case_id < self._last:
                raise ValueError(f"rows are not in case-id order ({case_id!r} after "
                                 f"{self._last!r}); create the hasher with ordered=False")
            self._last = case_id
            for part in _row_parts(record, images, self._meta, self._floats, self._more):
                self._hash.update(part)
            return
        if pngs is None:
            parts = _row_parts(record, images, self._meta, self._floats, self._more)
        else:
            parts = [_canonical_meta(record, self._meta, self._floats),
                     *(bytes(pngs[c]) for c in ("image", *self._more))]
            parts = [b for part in parts for b in (_LENGTH.pack(len(part)), part)]
        try:
            if self._file is None:
                self._file = tempfile.TemporaryFile(prefix="thyroid-bench-fingerprint-",
                                                    dir=self._spill_dir)
            for part in parts:
                self._file.write(part)
        except OSError as exc:
            raise self._spill_error(exc, sum(len(p) for p in parts)) from None
        self._ids.append(case_id)
        self._ends.append(self._ends[-1] + sum(len(p) for p in parts))
        self._encoded.append(pngs is not None)

    def _spill_error(self, exc: OSError, row_bytes: int) -> SpillError:
        """The spill failed: one line naming the folder and about how much room it needs."""
        return spill_error(exc, "a split's rows (to hash them in case-id order)", self._spill_dir,
                           written=self._ends[-1] + row_bytes, count=len(self._ids) + 1,
                           expected=self._rows, advice=self._advice)

    def _spilled(self, i: int, blob: bytes) -> Iterable[bytes]:
        """Spilled row ``i`` (its bytes ``blob``) as the parts the hash reads."""
        if not self._encoded[i]:
            return (blob,)
        fields, at = [], 0
        while at < len(blob):
            (n,) = _LENGTH.unpack_from(blob, at)
            fields.append(blob[at + _LENGTH.size:at + _LENGTH.size + n])
            at += _LENGTH.size + n
        parts = [fields[0]]
        for column, png in zip(("", *self._more), fields[1:]):
            parts += _image_parts(column, decode_image(png))
        return parts

    def hexdigest(self) -> str:
        """The split fingerprint of the rows added (then the hasher is closed)."""
        if not self._ordered and self._file is not None:
            ends = np.asarray(self._ends, dtype=np.int64)
            try:
                self._file.flush()
                for i in case_order(self._ids):
                    self._file.seek(int(ends[i]))
                    for part in self._spilled(int(i), self._file.read(int(ends[i + 1] - ends[i]))):
                        self._hash.update(part)
            except OSError as exc:
                raise self._spill_error(exc, 0) from None
        digest = self._hash.hexdigest()
        self.close()
        return digest

    def close(self) -> None:
        """Remove the spill file, if any."""
        if self._file is not None:
            self._file.close()
            self._file = None
        self._ids, self._ends, self._encoded = [], [0], bytearray()

    def __enter__(self) -> SplitHasher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """SHA-256 over the split fingerprints, in split order."""
    h = hashlib.sha256(b"thyroid-bench dataset fingerprint v1\n")
    for split in SPLITS:
        h.update(f"{split}:{split_fingerprints[split]}\n".encode())
    return h.hexdigest()


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of an image's counts (little-endian uint16), to find identical images."""
    return hashlib.sha256(np.ascontiguousarray(image, "<u2").tobytes()).hexdigest()
