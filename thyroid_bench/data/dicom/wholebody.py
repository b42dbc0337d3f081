"""The head-and-neck window of a whole-body NM sweep: where it is cut and why.

Task ``residual-tissue`` reads post-thyroidectomy radioiodine scans; a camera that sweeps the
whole body stores a long image (256 x 1024 or 512 x 1024 pixels, columns x rows, head at row
0 as whole-body images are stored for display), while the model input is the square
head-and-neck region (Lai et al. 2023 use a 256 x 256 crop). A model trained on the synthetic
cohort ``tsb-residual`` learns the field of its centre 1
(:data:`thyroid_bench.data.synthetic.residual.CAMERAS`, ``center1``): a native-resolution
256 x 256 crop of a 512-wide sweep, 270 mm across at 1.05 mm pixels, centred on the neck, the
thyroid bed 0.55 of the way down (148.5 mm below the top edge, SD 12 mm), so the top edge
passes through the nose (the generator's nasal activity lies 135-150 mm above the bed), the
parotids (80-100 mm above the bed) and submandibular glands (48-62 mm) sit in the upper half,
the mandible 70 mm above the bed, and the bottom edge 121.5 mm below the bed crosses the upper
chest. A real 512-wide sweep is cut to that same field. The rule, applied to the anterior and
posterior views of one sweep together so that both are cut at the same rows:

1. **Row profile.** Sum the counts of each row over both views (twice the counts of one view:
   a steadier profile) and smooth it with a moving average over ``width // 64`` rows (about
   9 mm on any sweep: 4 rows of 2.2 mm, 8 of 1.1 mm) so that single noisy rows cannot trigger it.
2. **Body background.** Above the vertex a row holds only room background and scatter; along
   the body it holds the blood-pool and soft-tissue activity. ``air`` is the 5th percentile of
   the profile and ``body`` its 75th percentile (at least a quarter of a sweep is body even for
   a child, and percentiles ignore the few very hot rows of bladder, stomach or a remnant).
3. **Vertex.** The first row whose smoothed profile rises above ``air + 0.25 * (body - air)``.
   A head row carries less tissue than a torso row (about 15 cm against 35 cm of width), so a
   quarter of the body level is crossed within the top few centimetres of the skull (about
   :data:`THRESHOLD_DEPTH_MM`, 2 cm, below its top); a sweep that starts inside the head gives
   vertex 0, and its window is placed from row 0 as from a detected vertex.
4. **Window of a sweep wider than 256 pixels** (512 wide, ~1.1 mm pixels): a 256 x 256 window
   at native resolution, no binning (counts untouched, pixel spacing kept), as tsb-residual's
   centre 1 is cut.

   * *Rows*: the window starts :data:`WINDOW_OFFSET_MM` (111.5 mm) below the vertex,
     converted to rows with the row spacing (``PixelSpacing``; when the file does not state
     it, a 540 mm detector width over the image width, 1.05 mm at 512). The offset puts the
     thyroid bed where tsb-residual puts it: the skull's top lies
     :data:`VERTEX_TO_BED_MM` (280 mm) above the bed, since the generator's mandible lies
     70 mm above the bed and an adult head is about 21-23 cm from vertex to chin (280-300 mm;
     the cohort is 78% women, the shorter end), and its sternal-notch marker lies 35-50 mm
     below the bed while the notch lies about 30-33 cm below the vertex (255-295 mm);
     tsb-residual's top edge lies :data:`BED_BELOW_FIELD_TOP_MM` (0.55 x 270 mm) above the
     bed, so 280 - 148.5 = 131.5 mm below the skull's top, i.e. 131.5 - 20 = 111.5 mm below
     the detected vertex. The anatomical spread (1-2 cm) is that of the generator's own
     placement (SD 12 mm).
   * *Columns*: each view's window is centred on that view's body: the count-weighted median
     column of its head rows (:data:`HEAD_MM`, 15 cm from the vertex: the skull is symmetric
     and holds no thyroid bed; a median ignores a hot parotid, contamination or marker), after
     taking off the columns' 25th percentile (the air beside a 15 cm head on a 54 cm
     detector). tsb-residual centres its field on the neck (SD 4 mm); a patient lying a few
     centimetres off the table's axis would otherwise shift the neck off the window's centre,
     and each view on its own because a posterior view stored as acquired is the mirror image
     (a body off-centre to one side in the anterior view lies to the other in the posterior).
   * Windows that would leave the image are moved back inside it. Pixels are taken as square
     (the usual whole-body acquisition); the stored ``pixel_spacing_mm`` is the row spacing.
     The field is 256 pixels across: 27 cm only for pixels of about 1.05 mm (a 512 matrix over
     a 54 cm detector); a finer matrix gives a smaller field.

5. **Window of a sweep 256 pixels wide or narrower** (~2.2 mm pixels, the whole body's width):
   a square whose side is the image width, starting ``width // 16`` rows above the vertex
   (16 rows, about 3.5 cm, on a 256-wide sweep: the margin puts the crop's edge just above the
   head), moved down to row 0 or up to the last row when it would leave the image. This is
   what a 256 x 256 crop of such a sweep can be: ~56 cm from above the head to the upper
   chest. **Its field is about twice as large as tsb-residual's** (270 mm) at half its
   resolution, so a model trained on tsb-residual sees these images at half the scale.

A static neck view (Image Type STATIC, a square matrix, no sweep) is used as it is. Images
wider than they are long are not sweeps and are refused, as are sweeps whose profile has no
body above background (no vertex can be found).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

__all__ = [
    "MODEL_MATRIX",
    "AIR_PERCENTILE",
    "BODY_PERCENTILE",
    "VERTEX_FRACTION",
    "MARGIN_DIVISOR",
    "VERTEX_TO_BED_MM",
    "BED_BELOW_FIELD_TOP_MM",
    "THRESHOLD_DEPTH_MM",
    "WINDOW_OFFSET_MM",
    "HEAD_MM",
    "NOMINAL_DETECTOR_WIDTH_MM",
    "CropWindow",
    "row_profile",
    "find_vertex",
    "body_centre_column",
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
#: A sweep 256 wide or narrower: the crop starts ``width // MARGIN_DIVISOR`` rows above the vertex.
MARGIN_DIVISOR = 16
#: Skull top to thyroid bed (mm) of an adult, fitted to tsb-residual's landmarks (docstring).
VERTEX_TO_BED_MM = 280.0
#: tsb-residual centre 1: the thyroid bed lies 0.55 of the way down its 270 mm field.
BED_BELOW_FIELD_TOP_MM = 0.55 * 270.0
#: How far below the skull's top the vertex threshold is crossed (1-3 cm).
THRESHOLD_DEPTH_MM = 20.0
#: A sweep wider than 256: the window starts this far below the detected vertex (111.5 mm).
WINDOW_OFFSET_MM = VERTEX_TO_BED_MM - BED_BELOW_FIELD_TOP_MM - THRESHOLD_DEPTH_MM
#: Rows below the vertex whose counts centre the window horizontally (the skull).
HEAD_MM = 150.0
#: Detector width assumed when a file states no pixel spacing (spacing = this / width).
NOMINAL_DETECTOR_WIDTH_MM = 540.0


@dataclass(frozen=True)
class CropWindow:
    """Where to cut a sweep: rows ``start .. start + side``, and for view ``k`` (in the order
    the views were given) columns ``columns[k] .. columns[k] + side``; counts untouched."""

    vertex: int
    start: int
    side: int
    columns: tuple[int, ...]


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


def body_centre_column(view: np.ndarray, rows: slice) -> float:
    """The count-weighted median column of ``view[rows]`` above the columns' 25th percentile
    (rule step 4), in pixel units from the left edge; the image centre when nothing is above."""
    profile = np.asarray(view, dtype=np.float64)[rows].sum(axis=0)
    profile = np.clip(profile - np.percentile(profile, 25.0), 0.0, None)
    if not profile.sum() > 0:
        return view.shape[1] / 2
    cumulative = np.cumsum(profile)
    return float(np.searchsorted(cumulative, cumulative[-1] / 2)) + 0.5


def _spacing(pixel_spacing_mm: float | None, width: int) -> float:
    """The row spacing, or the nominal one of a sweep whose file states none."""
    if pixel_spacing_mm is None or not math.isfinite(pixel_spacing_mm) or pixel_spacing_mm <= 0:
        return NOMINAL_DETECTOR_WIDTH_MM / width
    return float(pixel_spacing_mm)


def head_and_neck_window(views: Sequence[np.ndarray], pixel_spacing_mm: float | None = None
                         ) -> CropWindow:
    """The window of a whole-body sweep's views (same shape, rows x columns, head at row 0).

    ``pixel_spacing_mm`` (the row spacing) places the window of a sweep wider than 256 pixels;
    None or not a positive number: :data:`NOMINAL_DETECTOR_WIDTH_MM` over the width.
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
    if width <= MODEL_MATRIX:
        start = min(max(0, vertex - width // MARGIN_DIVISOR), rows - width)
        return CropWindow(vertex=vertex, start=start, side=width, columns=(0,) * len(views))
    spacing = _spacing(pixel_spacing_mm, width)
    side = MODEL_MATRIX
    start = min(max(0, vertex + int(round(WINDOW_OFFSET_MM / spacing))), rows - side)
    head = slice(vertex, vertex + max(1, int(round(HEAD_MM / spacing))))
    columns = tuple(min(max(0, int(round(body_centre_column(v, head) - side / 2))), width - side)
                    for v in views)
    return CropWindow(vertex=vertex, start=start, side=side, columns=columns)


def crop(image: np.ndarray, window: CropWindow, view: int = 0) -> np.ndarray:
    """Cut ``window`` out of ``image``, the view given ``view``-th to :func:`head_and_neck_window`
    (its columns); a copy, counts and dtype as in ``image``."""
    c = window.columns[view]
    return np.array(np.asarray(image)[window.start:window.start + window.side, c:c + window.side])
