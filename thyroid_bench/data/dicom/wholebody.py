"""The head-and-neck crop of a whole-body NM sweep: where it is cut and why.

Task ``residual-tissue`` reads post-thyroidectomy radioiodine scans; a camera that sweeps the
whole body stores a long image (256 x 1024 or 512 x 1024 pixels, columns x rows, head at row
0 as whole-body images are stored for display), while the model input is the square
head-and-neck region (Lai et al. 2023 use a 256 x 256 crop). The rule, applied to the
anterior and posterior views of one sweep together so that both are cut at the same rows:

1. **Row profile.** Sum the counts of each row over both views (twice the counts of one view:
   a steadier profile) and smooth it with a moving average over ``width // 64`` rows (4 rows,
   about 9 mm, on a 256-wide sweep) so that single noisy rows cannot trigger it.
2. **Body background.** Above the vertex a row holds only room background and scatter; along
   the body it holds the blood-pool and soft-tissue activity. ``air`` is the 5th percentile of
   the profile and ``body`` its 75th percentile (at least a quarter of a sweep is body even for
   a child, and percentiles ignore the few very hot rows of bladder, stomach or a remnant).
3. **Vertex.** The first row whose smoothed profile rises above ``air + 0.25 * (body - air)``.
   A head row carries less tissue than a torso row (about 15 cm against 35 cm of width), so a
   quarter of the body level is crossed within the top few centimetres of the skull; a sweep
   that starts inside the head gives vertex 0.
4. **Square.** A square whose side is the image width, starting ``width // 16`` rows above the
   vertex (16 rows, about 3.5 cm, on a 256-wide sweep: the threshold is crossed 1-3 cm below
   the top of the rounded skull, so the margin puts the crop's edge just above the head),
   moved down to row 0 or up to the last row when it would leave the image. On a 256-wide
   sweep with ~2.2 mm pixels this is a ~56 cm square: head, neck and upper chest, the region
   a reader looks at for thyroid-bed uptake and its mimics. Pixels are taken as square (the
   usual whole-body acquisition); the stored ``pixel_spacing_mm`` is the row spacing.
5. **Resolution.** When the width is a multiple of 256 above it (512-wide sweeps), blocks of
   ``k x k`` pixels are summed to reach 256 x 256: counts are kept whole and Poisson, and the
   pixel spacing is multiplied by ``k``. Other widths keep their own matrix.

A static neck view (Image Type STATIC, a square matrix, no sweep) is used as it is. Images
wider than they are long are not sweeps and are refused, as are sweeps whose profile has no
body above background (no vertex can be found).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MODEL_MATRIX",
    "AIR_PERCENTILE",
    "BODY_PERCENTILE",
    "VERTEX_FRACTION",
    "MARGIN_DIVISOR",
    "CropWindow",
    "row_profile",
    "find_vertex",
    "head_and_neck_window",
    "crop",
]

#: The matrix of the model input (Lai et al. 2023: a 256 x 256 head-and-neck crop).
MODEL_MATRIX = 256
#: Percentile of the row profile taken as air (room background above the head).
AIR_PERCENTILE = 5.0
#: Percentile of the row profile taken as the body level.
BODY_PERCENTILE = 75.0
#: The vertex is the first row above ``air + VERTEX_FRACTION * (body - air)``.
VERTEX_FRACTION = 0.25
#: The crop starts ``width // MARGIN_DIVISOR`` rows above the vertex.
MARGIN_DIVISOR = 16


@dataclass(frozen=True)
class CropWindow:
    """Where to cut a sweep: rows ``start .. start + side``, all columns; then ``k x k`` binning."""

    vertex: int
    start: int
    side: int
    binning: int


def row_profile(views: Sequence[np.ndarray]) -> np.ndarray:
    """Counts per row summed over ``views`` (same shape), smoothed over ``width // 64`` rows."""
    total = np.zeros(views[0].shape[0], dtype=np.float64)
    for view in views:
        total += np.asarray(view, dtype=np.float64).sum(axis=1)
    k = max(1, views[0].shape[1] // 64)
    if k == 1:
        return total
    padded = np.pad(total, (k // 2, k - 1 - k // 2), mode="edge")
    return np.convolve(padded, np.ones(k) / k, mode="valid")


def find_vertex(profile: np.ndarray) -> int:
    """The first row rising above the body background (rule steps 2-3); ``ValueError`` if none."""
    air = float(np.percentile(profile, AIR_PERCENTILE))
    body = float(np.percentile(profile, BODY_PERCENTILE))
    if not body > air:
        raise ValueError("no body above background in the row profile (no vertex)")
    above = np.flatnonzero(profile > air + VERTEX_FRACTION * (body - air))
    return int(above[0])


def head_and_neck_window(views: Sequence[np.ndarray]) -> CropWindow:
    """The crop of a whole-body sweep's views (same shape, rows x columns, head at row 0).

    ``ValueError`` names the fault: views of different shapes, an image wider than long, or no
    vertex.
    """
    shapes = {np.shape(v) for v in views}
    if len(shapes) != 1:
        raise ValueError(f"the views of one sweep differ in shape ({sorted(shapes)})")
    rows, width = views[0].shape
    if rows < width:
        raise ValueError(f"a whole-body image of {rows} rows x {width} columns is wider than long")
    vertex = find_vertex(row_profile(views))
    start = min(max(0, vertex - width // MARGIN_DIVISOR), rows - width)
    binning = width // MODEL_MATRIX if width > MODEL_MATRIX and width % MODEL_MATRIX == 0 else 1
    return CropWindow(vertex=vertex, start=start, side=width, binning=binning)


def crop(image: np.ndarray, window: CropWindow) -> np.ndarray:
    """Cut ``window`` out of ``image`` and sum ``binning x binning`` blocks (counts kept whole).

    Returns int64 counts: binning can exceed the 16-bit range, which the caller checks.
    """
    part = np.asarray(image, dtype=np.int64)[window.start:window.start + window.side]
    k = window.binning
    if k == 1:
        return part
    n = window.side // k
    return part.reshape(n, k, n, k).sum(axis=(1, 3))
