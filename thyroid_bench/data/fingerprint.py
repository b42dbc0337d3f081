"""Content fingerprints of dataset format v1.

SHA-256 over the decoded content of each split (pixels, labels, ids, metadata, in case-id
order), never over file bytes, so a fingerprint survives re-compression and other pyarrow
versions. The dataset fingerprint hashes the split fingerprints in split order.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from thyroid_bench.data.columns import FLOAT_COLUMNS, INT_COLUMNS, META_COLUMNS
from thyroid_bench.data.images import decode_image
from thyroid_bench.tasks import SPLITS

__all__ = ["split_fingerprint", "dataset_fingerprint", "image_digest"]

def _canonical_meta(row: Mapping[str, Any]) -> bytes:
    meta = {}
    for col in META_COLUMNS:
        value = row[col]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            meta[col] = None
        elif col in FLOAT_COLUMNS:
            meta[col] = repr(float(value))
        elif col in INT_COLUMNS:
            meta[col] = int(value)
        else:
            meta[col] = str(value)
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def split_fingerprint(table: pd.DataFrame, images: Iterable[np.ndarray] | None = None) -> str:
    """SHA-256 over a split's decoded content, rows in case-id order.

    ``table`` has the format's columns, ``image`` as PNG bytes; ``images``
    (already decoded, in the table's row order) saves decoding twice.
    """
    decoded = list(images) if images is not None else [decode_image(b) for b in table["image"]]
    order = np.argsort(table["case_id"].to_numpy(dtype=str), kind="stable")
    records = table.to_dict("records")
    h = hashlib.sha256(b"thyroid-bench split fingerprint v1\n")
    for i in order:
        img = np.ascontiguousarray(decoded[i], dtype="<u2")
        h.update(_canonical_meta(records[i]))
        h.update(f"|{img.shape[0]}x{img.shape[1]}|".encode())
        h.update(img.tobytes())
    return h.hexdigest()


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """SHA-256 over the split fingerprints, in split order."""
    h = hashlib.sha256(b"thyroid-bench dataset fingerprint v1\n")
    for split in SPLITS:
        h.update(f"{split}:{split_fingerprints[split]}\n".encode())
    return h.hexdigest()


def image_digest(image: np.ndarray) -> str:
    """SHA-256 of an image's counts (little-endian uint16), to find identical images."""
    return hashlib.sha256(np.ascontiguousarray(image, "<u2").tobytes()).hexdigest()
