"""Content fingerprints of dataset format v1.

SHA-256 over the decoded content of each split (pixels, labels, ids, metadata, in case-id
order), never over file bytes, so a fingerprint survives re-compression and other pyarrow
versions. The dataset fingerprint hashes the split fingerprints in split order.

A task's extra columns are hashed too: a float column with the metadata (canonical
``repr(float)``, null for missing or NaN), an extra image column as its decoded pixels after
``image``'s. A task without extra columns hashes exactly what format v1 always hashed, so
its fingerprints do not change.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

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
from thyroid_bench.tasks import BASE_COLUMNS, SPLITS, Task

__all__ = ["split_fingerprint", "dataset_fingerprint", "image_digest"]

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
    order = np.argsort(table["case_id"].to_numpy(dtype=str), kind="stable")
    records = table.to_dict("records")
    h = hashlib.sha256(b"thyroid-bench split fingerprint v1\n")
    for i in order:
        h.update(_canonical_meta(records[i], meta, floats))
        _hash_pixels(h, decoded["image"][i], "")
        for col in more:
            _hash_pixels(h, decoded[col][i], col)
    return h.hexdigest()


def _hash_pixels(h: Any, image: np.ndarray, column: str) -> None:
    """Shape then little-endian uint16 pixels; an extra column's name goes before its shape."""
    img = np.ascontiguousarray(image, dtype="<u2")
    h.update(f"{column}|{img.shape[0]}x{img.shape[1]}|".encode())
    h.update(img.tobytes())


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """SHA-256 over the split fingerprints, in split order."""
    h = hashlib.sha256(b"thyroid-bench dataset fingerprint v1\n")
    for split in SPLITS:
        h.update(f"{split}:{split_fingerprints[split]}\n".encode())
    return h.hexdigest()


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of an image's counts (little-endian uint16), to find identical images."""
    return hashlib.sha256(np.ascontiguousarray(image, "<u2").tobytes()).hexdigest()
