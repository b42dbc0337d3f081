"""Images of dataset format v1: lossless 16-bit grayscale PNGs of the raw counts.

Counts are data; scaling them to [0, 255] is a model transform (the harness's).
"""

from __future__ import annotations

import io

import numpy as np
from PIL import Image

__all__ = ["encode_image", "decode_image"]


def encode_image(counts: np.ndarray) -> bytes:
    """Encode a 2-D array of raw counts as a lossless 16-bit grayscale PNG."""
    arr = np.asarray(counts)
    if arr.ndim != 2:
        raise ValueError(f"an image must be 2-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ValueError(f"counts must lie in 0-65535 for a 16-bit PNG, got {arr.min()}-{arr.max()}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint16)).save(buf, format="PNG",
                                                                      compress_level=1)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG written by :func:`encode_image` back to its uint16 counts."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
            raise ValueError(f"expected a 16-bit grayscale PNG, got mode {im.mode}")
        return np.asarray(im).astype(np.uint16, copy=False)
