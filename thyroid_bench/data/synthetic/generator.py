"""The synthetic reference cohort ``tsb-synthetic`` 1.0.0: physics-based thyroid phantoms.

A phantom study shaped like the two centres of Qiao et al. 2021 (BMC Medical
Imaging, doi 10.1186/s12880-021-00710-4): planar anterior 99mTc-pertechnetate
scintigrams of the neck taken with a low-energy high-resolution (LEHR)
parallel-hole collimator at 140 keV. It is synthetic; no clinical claim rests on
it.

How a case is made
------------------
1. :func:`sample_patient` draws a latent patient in millimetres (origin at the
   centre of the 280 mm field of view, x to the right of the image, y down): two
   thyroid lobes, an isthmus, sometimes a pyramidal lobe, hot and cold nodules,
   a low-frequency texture, the parotid and submandibular glands, the body
   outline (head, neck, shoulders) with its blood-pool background, the upper
   mediastinum, and sometimes oral, nasal or oesophageal activity or a
   sternal-notch point marker. Every structure has a distance from the
   collimator face. The intended class (the pattern the generator aims at)
   sets the gland's uptake, size and nodules through its entry of
   :data:`PATTERNS`, a table of :class:`PatternSpec` (one per class of the task).
2. :func:`render` projects each structure (an ellipsoid of uniform
   concentration projects to ``thickness * sqrt(1 - r^2)``), blurs each depth
   layer with the collimator's depth-dependent Gaussian response, bins to the
   centre's matrix, scales to the acquisition's count target and draws Poisson
   counts.
3. :func:`read_consensus` has three simulated readers apply the paper's criteria
   to the latent patient (thyroid-to-salivary uptake ratio, hot and cold areas
   and their contrast, heterogeneity), each with their own thresholds and
   perception noise; the majority is the label, a three-way split goes to the
   senior reader.
4. :func:`generate_split` samples patients (intended class drawn in proportion
   to the quota still open) until every class's quota of Table 1 is filled by
   *consensus* label (rejection sampling), so counts are exact and borderline
   cases carry the label readers gave them.

Everything is deterministic from the seed: each attempt ``j`` of split ``s``
draws from ``numpy.random.default_rng([seed, s, j, stream])`` (stream 0: latent
patient, 1: readers, 2: image), so a case does not depend on the order in which
images are rendered.

Units: lengths in mm; activity per unit area in "normal-lobe units" (the mean
projected activity of a normal lobe of :data:`NORMAL_LOBE_THICKNESS_MM` at
normal uptake is 1). Only ratios matter: each image is finally scaled to its
count target.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np
from scipy import ndimage

from thyroid_bench.data.split_rows import SplitRows
from thyroid_bench.data.synthetic.common import per_split, render_iter, stratified_folds
from thyroid_bench.tasks import SPLITS
from thyroid_bench.tasks.four_pattern import FOUR_PATTERN

#: The task this cohort serves, and its classes in output order.
TASK = FOUR_PATTERN
CLASS_NAMES: tuple[str, ...] = TASK.class_names
NUM_CLASSES = TASK.num_classes
PAPER_TYPES: tuple[str, ...] = tuple(c.code or "" for c in TASK.classes)

__all__ = [
    "TASK",
    "OFFICIAL_SEED",
    "NAME",
    "VERSION",
    "SPLITS",
    "TABLE1_COUNTS",
    "Acquisition",
    "ACQUISITIONS",
    "SPLIT_CENTER",
    "Demographics",
    "DEMOGRAPHICS",
    "Blob",
    "Lobe",
    "Nodule",
    "LatentPatient",
    "Reader",
    "READERS",
    "Findings",
    "PATTERNS",
    "PatternSpec",
    "Uniform",
    "ScaledBeta",
    "LogNormal",
    "Mixture",
    "Texture",
    "NoduleSite",
    "IncidentalNodule",
    "ToxicAdenoma",
    "Multinodular",
    "sample_patient",
    "findings",
    "read_consensus",
    "render",
    "split_rows",
    "generate_split",
    "generate_cohort",
    "cohort_rows",
    "provenance",
    "case_id",
    "patient_id",
]

NAME = "tsb-synthetic"
VERSION = "1.0.0"
#: Seed of the official release (the paper's publication date, 2021-06-11).
OFFICIAL_SEED = 20210611

#: Qiao et al. 2021, Table 1: images per class (types I, II, III, IV) and split.
TABLE1_COUNTS: dict[str, tuple[int, ...]] = {
    "train": (1040, 902, 97, 429),
    "internal": (260, 226, 25, 108),
    "external": (120, 49, 13, 120),
}

# --------------------------------------------------------------------------- acquisition
#: Field of view of both centres. The paper gives centre 1 as 256 x 256 with
#: 2.21 mm pixels, which would be a 566 mm field; a neck study on a large-field
#: camera with zoom covers about 280 mm, which we use for both centres.
FOV_MM = 280.0
#: Fine rendering grid: 256 x 256 over the field (1.09 mm); centre 2's 128 x 128
#: image is the exact 2 x 2 sum of it, as a camera's coarser matrix would be.
FINE_MATRIX = 256
FINE_PIXEL_MM = FOV_MM / FINE_MATRIX
#: Broad-beam linear attenuation coefficient of soft tissue at 140 keV (narrow-
#: beam water is 0.153 /cm; scatter accepted in a 15-20% window lowers it to
#: about 0.12 /cm in planar imaging).
MU_TISSUE_PER_MM = 0.012


@dataclass(frozen=True)
class Acquisition:
    """A camera, collimator and protocol: what a centre's images were taken with.

    The system resolution at distance ``d`` from the collimator face is
    ``FWHM(d) = sqrt(R_int^2 + R_col(d)^2)`` with the collimator's geometric
    resolution linear in distance, ``R_col(d) = a + b d``
    (Cherry, Sorenson & Phelps, *Physics in Nuclear Medicine*, 4th ed., ch. 14).
    ``a`` is the resolution at the face (about the hole diameter), ``b`` is
    fixed by the datasheet's system FWHM at 100 mm.
    """

    center: str
    matrix: int
    fov_mm: float
    total_counts: int
    acquisition_s: float
    collimator: str
    energy_kev: float
    system_fwhm_mm_at_100mm: float
    intrinsic_fwhm_mm: float
    collimator_fwhm_mm_at_face: float
    count_cv: float
    description: str

    @property
    def pixel_spacing_mm(self) -> float:
        """Pixel size of the stored image (mm)."""
        return self.fov_mm / self.matrix

    @property
    def collimator_slope(self) -> float:
        """``b`` in ``R_col(d) = a + b d`` (mm of FWHM per mm of distance)."""
        r_col_100 = math.sqrt(self.system_fwhm_mm_at_100mm ** 2 - self.intrinsic_fwhm_mm ** 2)
        return (r_col_100 - self.collimator_fwhm_mm_at_face) / 100.0

    def fwhm_mm(self, distance_mm: float) -> float:
        """System FWHM (mm) for a source ``distance_mm`` from the collimator face."""
        r_col = self.collimator_fwhm_mm_at_face + self.collimator_slope * distance_mm
        return math.sqrt(self.intrinsic_fwhm_mm ** 2 + r_col ** 2)


ACQUISITIONS: dict[str, Acquisition] = {
    # LEHR figures as on common datasheets: system FWHM 7.4 mm at 10 cm,
    # intrinsic 3.9 mm (e.g. GE Infinia / Discovery NM LEHR).
    "center1": Acquisition(
        center="center1", matrix=256, fov_mm=FOV_MM, total_counts=100_000, acquisition_s=300.0,
        collimator="LEHR parallel-hole", energy_kev=140.0, system_fwhm_mm_at_100mm=7.4,
        intrinsic_fwhm_mm=3.9, collimator_fwhm_mm_at_face=1.6, count_cv=0.05,
        description="256 x 256, 100k counts in 5 min",
    ),
    # A second, older camera: poorer intrinsic resolution (4.6 mm), the same
    # kind of collimator, a coarser matrix and three times the counts.
    "center2": Acquisition(
        center="center2", matrix=128, fov_mm=FOV_MM, total_counts=300_000, acquisition_s=600.0,
        collimator="LEHR parallel-hole", energy_kev=140.0, system_fwhm_mm_at_100mm=7.8,
        intrinsic_fwhm_mm=4.6, collimator_fwhm_mm_at_face=1.6, count_cv=0.05,
        description="128 x 128, 300k counts in 10 min",
    ),
}
SPLIT_CENTER: dict[str, str] = {"train": "center1", "internal": "center1", "external": "center2"}


@dataclass(frozen=True)
class Demographics:
    """Sex and age of a centre's patients (Qiao et al. 2021, cohort description)."""

    female_fraction: float
    age_mean: float
    age_sd: float
    age_min: int = 18
    age_max: int = 90


DEMOGRAPHICS: dict[str, Demographics] = {
    "center1": Demographics(female_fraction=0.97, age_mean=41.0, age_sd=14.0),
    "center2": Demographics(female_fraction=0.71, age_mean=45.0, age_sd=14.0),
}

# --------------------------------------------------------------------------- anatomy
#: Anteroposterior thickness of a normal lobe (mm): lobes are about 4-6 cm long,
#: 1.3-2 cm wide and 1.3-2 cm thick in adults.
NORMAL_LOBE_THICKNESS_MM = 16.0
#: Mean projected activity of a uniformly filled ellipsoid is 2/3 of its peak.
_NORMAL_LOBE_MEAN_PATH_MM = 2.0 / 3.0 * NORMAL_LOBE_THICKNESS_MM
#: Count density of parotid and submandibular glands relative to a normal
#: thyroid on a 20-minute pertechnetate image (about 0.8 and 0.67).
PAROTID_TO_THYROID = 0.8
SUBMANDIBULAR_TO_THYROID = 0.67
#: Fraction of people without a visible isthmus (about 17%).
ISTHMUS_ABSENT = 0.17
#: Reference depth of the thyroid below the skin for attenuation (mm).
_REF_THYROID_DEPTH_MM = 20.0
#: FWHM (mm) used to judge how much of a nodule's contrast survives the blur.
_READING_FWHM_MM = 9.0


@dataclass(frozen=True)
class Blob:
    """An ellipsoidal (``profile='ellipsoid'``) or Gaussian structure in the image plane.

    ``half_width``/``half_length`` are the semi-axes across and along its long
    axis (for a Gaussian: the standard deviations); ``angle_deg`` turns the long
    axis from the image's vertical; ``peak`` is its activity per unit area at the
    centre in normal-lobe units.
    """

    x_mm: float
    y_mm: float
    half_width_mm: float
    half_length_mm: float
    angle_deg: float
    peak: float
    profile: str = "ellipsoid"


@dataclass(frozen=True)
class Lobe:
    """A thyroid lobe: a tapered ellipsoid of tissue (its thickness in mm at the centre)."""

    x_mm: float
    y_mm: float
    half_width_mm: float
    half_length_mm: float
    thickness_mm: float
    angle_deg: float
    taper: float  # > 0: lower pole wider than the upper pole


@dataclass(frozen=True)
class Nodule:
    """A spherical nodule; ``uptake`` is its concentration relative to normal thyroid tissue."""

    x_mm: float
    y_mm: float
    diameter_mm: float
    uptake: float
    host_thickness_mm: float  # thickness of gland tissue around it (mm)


@dataclass(frozen=True)
class LatentPatient:
    """Everything the image and the readers are made from (mm, normal-lobe units)."""

    center: str
    intended_class: int
    sex: str
    age: int
    thyroid_x_mm: float
    thyroid_y_mm: float
    rotation_deg: float
    lobes: tuple[Lobe, ...]
    isthmus: Lobe | None
    pyramidal: Lobe | None
    uptake: float  # extranodular tissue concentration relative to normal (1.0)
    texture: float  # amplitude (relative SD) of low-frequency uptake heterogeneity
    texture_scale_mm: float
    nodules: tuple[Nodule, ...]
    thyroid_depth_mm: float  # below the skin
    thyroid_distance_mm: float  # from the collimator face
    salivary_multiplier: float
    parotids: tuple[Blob, ...]
    submandibulars: tuple[Blob, ...]
    parotid_distance_mm: float
    submandibular_distance_mm: float
    extras: tuple[Blob, ...]  # oral, nasal, oesophageal activity (parotid-layer blur)
    marker: Blob | None  # sternal-notch point source, on the skin
    skin_distance_mm: float
    neck_half_width_mm: float
    head_half_width_mm: float
    background: float  # neck blood pool at the midline, normal-lobe units
    head_background: float
    trunk_background: float
    mediastinum: Blob
    count_scale: float  # this study's total counts relative to the protocol's target

    @property
    def gland_brightness(self) -> float:
        """Mean count density of the extranodular gland relative to a normal gland."""
        thick = float(np.mean([lb.thickness_mm for lb in self.lobes]))
        return self.uptake * thick / NORMAL_LOBE_THICKNESS_MM * self.attenuation

    @property
    def attenuation(self) -> float:
        """Attenuation of thyroid counts relative to a gland at the reference depth."""
        return math.exp(-MU_TISSUE_PER_MM * (self.thyroid_depth_mm - _REF_THYROID_DEPTH_MM))

    @property
    def parotid_brightness(self) -> float:
        """Mean count density of the parotids, normal-lobe units."""
        return float(np.mean([b.peak for b in self.parotids])) * 2.0 / 3.0


def _to_image(p: tuple[float, float], x0: float, y0: float, rot_deg: float) -> tuple[float, float]:
    """Patient frame (origin at the isthmus, unrotated) to image millimetres."""
    c, s = math.cos(math.radians(rot_deg)), math.sin(math.radians(rot_deg))
    u, v = p
    return x0 + c * u - s * v, y0 + s * u + c * v


def _lognormal(rng: np.random.Generator, median: float, sigma: float, lo: float, hi: float) -> float:
    return float(np.clip(median * math.exp(sigma * rng.standard_normal()), lo, hi))


# --------------------------------------------------------------------------- uptake patterns
#: Extranodular tissue below this concentration (relative to normal) counts as suppressed.
SUPPRESSED_UPTAKE = 0.6


@dataclass(frozen=True)
class Uniform:
    """A uniform draw on ``[lo, hi)``."""

    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        """One value."""
        return float(rng.uniform(self.lo, self.hi))


@dataclass(frozen=True)
class ScaledBeta:
    """``offset + scale * Beta(a, b)``."""

    offset: float
    scale: float
    a: float = 2.0
    b: float = 3.0

    def draw(self, rng: np.random.Generator) -> float:
        """One value."""
        return self.offset + self.scale * float(rng.beta(self.a, self.b))


@dataclass(frozen=True)
class LogNormal:
    """``median * exp(sigma * N(0, 1))`` clipped to ``[lo, hi]``."""

    median: float
    sigma: float
    lo: float
    hi: float

    def draw(self, rng: np.random.Generator) -> float:
        """One value."""
        return _lognormal(rng, self.median, self.sigma, self.lo, self.hi)


@dataclass(frozen=True)
class Mixture:
    """A mixture of uniforms: a draw ``u`` on [0, 1) picks part ``i`` for the first cumulative
    probability ``bounds[i]`` above ``u`` (the last part takes the rest), then draws it."""

    parts: tuple[Uniform, ...]
    bounds: tuple[float, ...]  # cumulative probabilities of all parts but the last

    def draw(self, rng: np.random.Generator) -> float:
        """One value."""
        u = rng.random()
        for bound, part in zip(self.bounds, self.parts[:-1]):
            if u < bound:
                return part.draw(rng)
        return self.parts[-1].draw(rng)


@dataclass(frozen=True)
class Texture:
    """Heterogeneity amplitude ``U(lo, hi)``; ``hi_unsuppressed`` (when set) replaces ``hi``
    for a gland whose uptake is not suppressed (at least :data:`SUPPRESSED_UPTAKE`)."""

    lo: float
    hi: float
    hi_unsuppressed: float | None = None

    def draw(self, rng: np.random.Generator, uptake: float) -> float:
        """One amplitude for a gland of ``uptake``."""
        active = self.hi_unsuppressed is not None and uptake >= SUPPRESSED_UPTAKE
        return float(rng.uniform(self.lo, self.hi_unsuppressed if active else self.hi))


class _LobeFrame(NamedTuple):
    """A lobe in the patient frame before rotation (mm; ``u`` across, ``v`` down)."""

    u: float
    v: float
    half_width: float
    half_length: float
    thickness: float
    tilt: float


class _NoduleDraw(NamedTuple):
    """A nodule before placement: in lobe 0 (the image's left) or 1, ``along``/``across`` as
    fractions of the lobe's half-length/half-width, its diameter and concentration."""

    lobe: int
    along: float
    across: float
    diameter_mm: float
    uptake: float


@dataclass(frozen=True)
class NoduleSite:
    """Where a nodule sits and its size: either lobe with equal chance, ``along`` the lobe
    (fraction of the half-length, positive down), ``N(0, across_sd)`` across it (fraction
    of the half-width), diameter in mm."""

    along: Uniform
    across_sd: float
    diameter_mm: Uniform

    def draw(self, rng: np.random.Generator) -> tuple[int, float, float, float]:
        """(lobe, along, across, diameter)."""
        return (int(rng.integers(0, 2)), self.along.draw(rng), float(rng.normal(0, self.across_sd)),
                self.diameter_mm.draw(rng))


@dataclass(frozen=True)
class IncidentalNodule:
    """With ``probability``, one nodule at ``site`` of ``relative`` times the gland's uptake."""

    probability: float
    site: NoduleSite
    relative: Uniform

    def draw(self, rng: np.random.Generator, uptake: float, frames: tuple[_LobeFrame, ...],
             trachea_half: float) -> tuple[tuple[_LobeFrame, ...], tuple[_NoduleDraw, ...]]:
        """The lobes (unchanged) and zero or one nodule."""
        if rng.random() < self.probability:
            return frames, (_NoduleDraw(*self.site.draw(rng), uptake * self.relative.draw(rng)),)
        return frames, ()


@dataclass(frozen=True)
class ToxicAdenoma:
    """One hot nodule that expands its lobe (its half-width, half-length and thickness to
    at least ``min_half_width`` etc. times the nodule's diameter), then perhaps a ``satellite``.

    Its concentration is ``hot_suppressed`` (relative to normal tissue) in a suppressed
    gland, else ``hot_relative`` times the gland's uptake.
    """

    diameter_mm: LogNormal
    hot_suppressed: Uniform
    hot_relative: Uniform
    along: Uniform
    across_sd: float
    min_half_width: float
    min_half_length: float
    min_thickness: float
    satellite: IncidentalNodule

    def draw(self, rng: np.random.Generator, uptake: float, frames: tuple[_LobeFrame, ...],
             trachea_half: float) -> tuple[tuple[_LobeFrame, ...], tuple[_NoduleDraw, ...]]:
        """The lobes (the adenoma's one expanded) and the nodules."""
        side = int(rng.integers(0, 2))
        d = self.diameter_mm.draw(rng)
        f = frames[side]
        hw = max(f.half_width, self.min_half_width * d)
        hl = max(f.half_length, self.min_half_length * d)
        grown = _LobeFrame((1 if side else -1) * (trachea_half + hw), f.v, hw, hl,
                           max(f.thickness, self.min_thickness * d), f.tilt)
        frames = tuple(grown if i == side else fr for i, fr in enumerate(frames))
        hot = (self.hot_suppressed.draw(rng) if uptake < SUPPRESSED_UPTAKE
               else uptake * self.hot_relative.draw(rng))
        adenoma = _NoduleDraw(side, self.along.draw(rng), float(rng.normal(0, self.across_sd)), d, hot)
        frames, satellites = self.satellite.draw(rng, uptake, frames, trachea_half)
        return frames, (adenoma, *satellites)


@dataclass(frozen=True)
class Multinodular:
    """``count`` nodules (``rng.integers`` bounds): the first hot, the second cold, each
    further one hot with ``hot_probability``; concentrations relative to the gland's uptake."""

    count: tuple[int, int]
    hot_probability: float
    hot_relative: Uniform
    cold_relative: Uniform
    site: NoduleSite

    def draw(self, rng: np.random.Generator, uptake: float, frames: tuple[_LobeFrame, ...],
             trachea_half: float) -> tuple[tuple[_LobeFrame, ...], tuple[_NoduleDraw, ...]]:
        """The lobes (unchanged) and the nodules."""
        n = int(rng.integers(*self.count))
        hot = [True, False] + [rng.random() < self.hot_probability for _ in range(n - 2)]
        nodules = []
        for is_hot in hot:
            relative = (self.hot_relative if is_hot else self.cold_relative).draw(rng)
            nodules.append(_NoduleDraw(*self.site.draw(rng), uptake * relative))
        return frames, tuple(nodules)


@dataclass(frozen=True)
class PatternSpec:
    """How the generator makes a gland of one uptake pattern (one class of the task).

    ``enlargement`` widens the lobes by ``1 + e`` (lengthens by ``1 + e/2``);
    ``asymmetry_sd`` is the SD of each lobe's size factor; ``uptake`` is the
    extranodular concentration relative to normal; ``pyramidal_probability`` the
    chance of a visible pyramidal lobe.
    """

    name: str
    enlargement: Uniform | ScaledBeta
    asymmetry_sd: float
    uptake: LogNormal | Mixture
    texture: Texture
    nodules: IncidentalNodule | ToxicAdenoma | Multinodular
    pyramidal_probability: float


_INCIDENTAL_COLD = IncidentalNodule(
    probability=0.05, site=NoduleSite(Uniform(-0.6, 0.6), 0.2, Uniform(7.0, 14.0)),
    relative=Uniform(0.1, 0.5))

#: One :class:`PatternSpec` per class of :data:`TASK`, in class order (typical figures from
#: thyroid scintigraphy teaching material; the intervals are the generator's, not measurements).
#:
#: * I, diffusely increased (Graves' disease): gland enlarged 15-80% across, uptake median
#:   3.2x normal (1.2-12x), homogeneous; pyramidal lobe visible in about a third.
#: * II, diffusely decreased (thyroiditis, iodine load, suppression): uptake 0-0.15x in 40%
#:   and 0.15-0.75x in 60%, gland normal or small.
#: * III, focal increased (toxic adenoma): one hot nodule of 12-45 mm (median 24 mm, 2.5-7x
#:   normal concentration in a suppressed gland); extranodular tissue fully (40%), partly
#:   (40%) or not (20%) suppressed; a small cold nodule in 15%.
#: * IV, heterogeneous (multinodular goitre): gland enlarged, lobes asymmetric, 2-6 nodules
#:   of 8-24 mm, at least one hot and one cold, patchy texture.
#:
#: Types I and II have the odd incidental cold nodule (5%).
PATTERNS: tuple[PatternSpec, ...] = (
    PatternSpec(
        name="diffusely_increased", enlargement=ScaledBeta(0.15, 0.65), asymmetry_sd=0.06,
        uptake=LogNormal(3.2, 0.4, 1.2, 12.0), texture=Texture(0.02, 0.15),
        nodules=_INCIDENTAL_COLD, pyramidal_probability=0.35,
    ),
    PatternSpec(
        name="diffusely_decreased", enlargement=Uniform(-0.15, 0.10), asymmetry_sd=0.06,
        uptake=Mixture(parts=(Uniform(0.0, 0.15), Uniform(0.15, 0.75)), bounds=(0.4,)),
        texture=Texture(0.03, 0.15), nodules=_INCIDENTAL_COLD, pyramidal_probability=0.12,
    ),
    PatternSpec(
        name="focal_increased", enlargement=Uniform(-0.05, 0.25), asymmetry_sd=0.06,
        uptake=Mixture(parts=(Uniform(0.0, 0.12), Uniform(0.15, 0.60), Uniform(0.60, 1.30)),
                       bounds=(0.40, 0.80)),
        texture=Texture(0.02, 0.08, hi_unsuppressed=0.18),
        nodules=ToxicAdenoma(
            diameter_mm=LogNormal(24.0, 0.3, 12.0, 45.0), hot_suppressed=Uniform(2.5, 7.0),
            hot_relative=Uniform(1.3, 3.0), along=Uniform(-0.35, 0.55), across_sd=0.2,
            min_half_width=0.45, min_half_length=0.65, min_thickness=0.6,
            satellite=IncidentalNodule(
                probability=0.15, site=NoduleSite(Uniform(-0.6, 0.6), 0.2, Uniform(8.0, 16.0)),
                relative=Uniform(0.05, 0.4)),
        ),
        pyramidal_probability=0.12,
    ),
    PatternSpec(
        name="heterogeneous_uptake", enlargement=ScaledBeta(0.05, 0.6), asymmetry_sd=0.15,
        uptake=LogNormal(1.3, 0.3, 0.6, 3.0), texture=Texture(0.12, 0.35),
        nodules=Multinodular(
            count=(2, 7), hot_probability=0.5, hot_relative=Uniform(1.5, 3.2),
            cold_relative=Uniform(0.05, 0.35),
            site=NoduleSite(Uniform(-0.7, 0.7), 0.25, Uniform(8.0, 24.0)),
        ),
        pyramidal_probability=0.12,
    ),
)


# --------------------------------------------------------------------------- latent patient
class _Pose(NamedTuple):
    """Where the gland sits: the isthmus at (x0, y0) mm, the neck turned by ``rot`` degrees."""

    x0: float
    y0: float
    rot: float

    def to_image(self, p: tuple[float, float]) -> tuple[float, float]:
        return _to_image(p, self.x0, self.y0, self.rot)


def sample_patient(rng: np.random.Generator, center: str, intended_class: int) -> "LatentPatient":
    """Draw a latent patient of ``center`` aiming at ``intended_class`` (an index of :data:`TASK`).

    The class's :class:`PatternSpec` in :data:`PATTERNS` sets the gland's size,
    uptake, texture, nodules and pyramidal lobe; everything else (demographics,
    positioning, salivary glands, extra activity, body and distances) is drawn
    alike for every class.
    """
    if center not in DEMOGRAPHICS:
        raise ValueError(f"unknown centre {center!r}; expected one of {sorted(DEMOGRAPHICS)}")
    if not 0 <= intended_class < len(PATTERNS):
        raise ValueError(f"intended_class must be 0-{len(PATTERNS) - 1}, got {intended_class}")
    sex, age = _sex_and_age(rng, DEMOGRAPHICS[center])
    body = 1.0 if sex == "F" else 1.08
    # Positioning: the isthmus a little below the centre of the field.
    pose = _Pose(float(rng.normal(0.0, 5.0)), float(rng.normal(40.0, 8.0)), float(rng.normal(0.0, 4.0)))
    gland = _gland(rng, PATTERNS[intended_class], pose, body)
    salivary = _salivary(rng, pose, body)
    extras = _extras(rng, pose)
    marker = _marker(rng, pose)
    surroundings = _surroundings(rng, center, pose, body)
    return LatentPatient(
        center=center, intended_class=intended_class, sex=sex, age=age,
        thyroid_x_mm=pose.x0, thyroid_y_mm=pose.y0, rotation_deg=pose.rot,
        **gland, **salivary, extras=extras, marker=marker, **surroundings,
    )


def _sex_and_age(rng: np.random.Generator, demo: Demographics) -> tuple[str, int]:
    sex = "F" if rng.random() < demo.female_fraction else "M"
    age = int(round(float(np.clip(rng.normal(demo.age_mean, demo.age_sd), demo.age_min, demo.age_max))))
    return sex, age


def _gland(rng: np.random.Generator, spec: PatternSpec, pose: _Pose, body: float) -> dict[str, Any]:
    """The thyroid of pattern ``spec``: LatentPatient's lobe, nodule, uptake and texture fields."""
    enlarge = spec.enlargement.draw(rng)
    frames, trachea_half = _lobe_frames(rng, spec.asymmetry_sd, enlarge, body)
    uptake = spec.uptake.draw(rng)
    texture = spec.texture.draw(rng, uptake)
    texture_scale = float(rng.uniform(5.0, 10.0))
    frames, drawn = spec.nodules.draw(rng, uptake, frames, trachea_half)
    lobes = []
    for f in frames:
        x, y = pose.to_image((f.u, f.v))
        lobes.append(Lobe(x, y, f.half_width, f.half_length, f.thickness, f.tilt + pose.rot,
                          float(rng.uniform(0.2, 0.45))))
    nodules = tuple(_place_nodule(nd, frames, pose) for nd in drawn)
    isthmus = _isthmus(rng, frames, enlarge, pose)
    pyramidal = _pyramidal(rng, spec.pyramidal_probability, pose)
    return dict(lobes=tuple(lobes), isthmus=isthmus, pyramidal=pyramidal, uptake=uptake,
                texture=texture, texture_scale_mm=texture_scale, nodules=nodules)


def _lobe_frames(rng: np.random.Generator, asymmetry_sd: float, enlarge: float,
                 body: float) -> tuple[tuple[_LobeFrame, ...], float]:
    """Both lobes (the one on the image's left first) and the trachea's half-width (mm)."""
    length0 = float(rng.uniform(40.0, 60.0)) * body
    width0 = float(rng.uniform(14.0, 21.0)) * body
    thick0 = float(rng.uniform(13.0, 20.0)) * body
    trachea_half = float(rng.uniform(4.0, 7.0))
    lobe_rise = float(rng.uniform(0.15, 0.3))
    frames = []
    for side in (-1, 1):
        f = float(np.clip(rng.normal(1.0, asymmetry_sd), 0.7, 1.4))
        hl = 0.5 * length0 * (1.0 + 0.5 * enlarge) * f
        hw = 0.5 * width0 * (1.0 + enlarge) * f
        th = thick0 * (1.0 + enlarge) * f
        tilt = side * float(rng.uniform(3.0, 14.0))  # upper poles diverge
        frames.append(_LobeFrame(side * (trachea_half + hw), -lobe_rise * 2.0 * hl, hw, hl, th, tilt))
    return tuple(frames), trachea_half


def _place_nodule(drawn: _NoduleDraw, frames: tuple[_LobeFrame, ...], pose: _Pose) -> Nodule:
    """A drawn nodule in image millimetres, with the thickness of gland tissue around it."""
    along, across = drawn.along, drawn.across
    u, v, hw, hl, th, tilt = frames[drawn.lobe]
    t = math.radians(tilt)
    p, q = across * hw, along * hl  # lobe-local: p across, q along (down)
    du, dv = math.cos(t) * p - math.sin(t) * q, math.sin(t) * p + math.cos(t) * q
    r2 = min(1.0, across ** 2 + along ** 2)
    host = th * math.sqrt(max(0.0, 1.0 - r2))
    x, y = pose.to_image((u + du, v + dv))
    return Nodule(x, y, drawn.diameter_mm, drawn.uptake, host)


def _isthmus(rng: np.random.Generator, frames: tuple[_LobeFrame, ...], enlarge: float,
             pose: _Pose) -> Lobe | None:
    if rng.random() < ISTHMUS_ABSENT:
        return None
    span = 0.5 * abs(frames[1].u - frames[0].u)
    x, y = pose.to_image((0.0, float(rng.uniform(-2.0, 5.0))))
    return Lobe(x, y, span, float(rng.uniform(4.0, 7.0)) * (1 + 0.5 * max(enlarge, 0.0)),
                float(rng.uniform(4.0, 8.0)) * (1 + max(enlarge, 0.0)), pose.rot, 0.0)


def _pyramidal(rng: np.random.Generator, probability: float, pose: _Pose) -> Lobe | None:
    if not rng.random() < probability:
        return None
    plen = float(rng.uniform(15.0, 35.0))
    x, y = pose.to_image((float(rng.normal(3.0, 3.0)), -4.0 - 0.5 * plen))
    return Lobe(x, y, float(rng.uniform(2.5, 4.0)), 0.5 * plen, float(rng.uniform(3.0, 6.0)),
                float(rng.normal(0.0, 8.0)) + pose.rot, 0.3)


@dataclass(frozen=True)
class _SalivaryGland:
    """A paired salivary gland: count ratio to a normal thyroid, size (mm) and turn (degrees)."""

    to_thyroid: float
    half_width: Uniform
    half_length: Uniform
    angle: Uniform


_PAROTID = _SalivaryGland(PAROTID_TO_THYROID, Uniform(12.0, 16.0), Uniform(18.0, 25.0),
                          Uniform(0.0, 15.0))
_SUBMANDIBULAR = _SalivaryGland(SUBMANDIBULAR_TO_THYROID, Uniform(8.0, 11.0), Uniform(10.0, 13.0),
                                Uniform(40.0, 80.0))


def _salivary(rng: np.random.Generator, pose: _Pose, body: float) -> dict[str, Any]:
    """Parotid and submandibular glands (pertechnetate is trapped there independent of TSH)."""
    sal = _lognormal(rng, 1.0, 0.2, 0.5, 2.0)
    parotids, submands = [], []
    par_uv = float(rng.uniform(55.0, 68.0)) * body, -float(rng.uniform(85.0, 105.0))
    sub_uv = float(rng.uniform(33.0, 45.0)) * body, -float(rng.uniform(45.0, 62.0))
    for side in (-1, 1):
        parotids.append(_salivary_blob(rng, _PAROTID, side, par_uv, sal, pose))
        submands.append(_salivary_blob(rng, _SUBMANDIBULAR, side, sub_uv, sal, pose))
    return dict(salivary_multiplier=sal, parotids=tuple(parotids), submandibulars=tuple(submands))


def _salivary_blob(rng: np.random.Generator, gland: _SalivaryGland, side: int,
                   uv: tuple[float, float], sal: float, pose: _Pose) -> Blob:
    x, y = pose.to_image((side * uv[0] + rng.normal(0, 2), uv[1] + rng.normal(0, 3)))
    mean = gland.to_thyroid * sal * _lognormal(rng, 1.0, 0.1, 0.7, 1.4)
    return Blob(x, y, gland.half_width.draw(rng), gland.half_length.draw(rng),
                side * gland.angle.draw(rng) + pose.rot, 1.5 * mean)


def _extras(rng: np.random.Generator, pose: _Pose) -> tuple[Blob, ...]:
    """Oral, nasal and oesophageal activity, each present by chance."""
    extras: list[Blob] = []
    rot = pose.rot
    if rng.random() < 0.30:  # saliva in the mouth
        x, y = pose.to_image((float(rng.normal(0, 3)), -float(rng.uniform(70.0, 85.0))))
        extras.append(Blob(x, y, float(rng.uniform(6.0, 12.0)), float(rng.uniform(4.0, 7.0)),
                           rot, float(rng.uniform(0.3, 1.5)), "gauss"))
    if rng.random() < 0.40:  # nasal mucosa
        x, y = pose.to_image((float(rng.normal(0, 2)), -float(rng.uniform(120.0, 135.0))))
        extras.append(Blob(x, y, float(rng.uniform(6.0, 9.0)), float(rng.uniform(5.0, 8.0)),
                           rot, float(rng.uniform(0.2, 0.6)), "gauss"))
    if rng.random() < 0.07:  # swallowed saliva in the oesophagus
        plen = float(rng.uniform(20.0, 40.0))
        x, y = pose.to_image((float(rng.uniform(0.0, 6.0)), float(rng.uniform(0.0, 25.0))))
        extras.append(Blob(x, y, float(rng.uniform(3.0, 5.0)), plen, rot, float(rng.uniform(0.2, 0.7))))
    return tuple(extras)


def _marker(rng: np.random.Generator, pose: _Pose) -> Blob | None:
    """Sometimes a sternal-notch marker: a point source on the skin."""
    if not rng.random() < 0.08:
        return None
    x, y = pose.to_image((float(rng.normal(0, 2)), float(rng.uniform(32.0, 45.0))))
    total = float(rng.uniform(40.0, 200.0))  # normal-lobe units x mm^2 (a normal lobe: ~650)
    return Blob(x, y, 1.0, 1.0, 0.0, total / (2 * math.pi), "gauss")


def _surroundings(rng: np.random.Generator, center: str, pose: _Pose, body: float) -> dict[str, Any]:
    """Distances from the collimator, body outline, blood pool, mediastinum and count scale."""
    gap = float(rng.uniform(20.0, 50.0))  # collimator face to the skin of the neck
    depth = float(rng.uniform(15.0, 30.0))
    neck_bg = float(rng.uniform(0.10, 0.18))
    x, y = pose.to_image((0.0, float(rng.uniform(95.0, 120.0))))
    mediastinum = Blob(x, y, float(rng.uniform(25.0, 40.0)), float(rng.uniform(25.0, 35.0)), pose.rot,
                       neck_bg * float(rng.uniform(1.0, 2.5)), "gauss")
    parotid_distance = gap + float(rng.uniform(60.0, 85.0))
    submandibular_distance = gap + float(rng.uniform(35.0, 55.0))
    neck_half_width = float(rng.uniform(48.0, 58.0)) * body
    head_half_width = float(rng.uniform(68.0, 80.0)) * body
    head_background = neck_bg * float(rng.uniform(1.0, 1.3))
    trunk_background = neck_bg * float(rng.uniform(0.6, 0.9))
    count_scale = float(math.exp(ACQUISITIONS[center].count_cv * rng.standard_normal()))
    return dict(
        thyroid_depth_mm=depth, thyroid_distance_mm=gap + depth, skin_distance_mm=gap,
        parotid_distance_mm=parotid_distance, submandibular_distance_mm=submandibular_distance,
        neck_half_width_mm=neck_half_width, head_half_width_mm=head_half_width,
        background=neck_bg, head_background=head_background, trunk_background=trunk_background,
        mediastinum=mediastinum, count_scale=count_scale,
    )


# --------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class Reader:
    """A simulated nuclear-medicine reader: thresholds and perception noise.

    ``perception_sd`` is the SD of the multiplicative (log-normal) error with
    which the reader perceives each ratio; the thresholds are the reader's own
    criteria for the paper's patterns.
    """

    name: str
    perception_sd: float
    low_ratio: float  # thyroid/parotid below this reads "diminished" (type II)
    hot_contrast: float  # a focus this many times its surroundings counts as hot
    cold_contrast: float  # an area below this fraction of its surroundings counts as cold
    dominance: float  # a hot focus this strong reads focal despite minor other findings
    heterogeneity: float  # visible texture (relative SD) above this reads heterogeneous


READERS: tuple[Reader, ...] = (
    Reader("senior", 0.12, 0.95, 1.45, 0.70, 2.4, 0.15),
    Reader("reader2", 0.16, 0.85, 1.35, 0.75, 2.8, 0.13),
    Reader("reader3", 0.16, 1.05, 1.55, 0.66, 2.1, 0.18),
)


@dataclass(frozen=True)
class Findings:
    """What a perfect reader would see in a latent patient (before perception noise)."""

    thyroid_to_parotid: float  # brightest thyroid tissue / parotid count density
    nodule_contrasts: tuple[float, ...]  # observed contrast of each nodule against its surroundings
    visible_texture: float  # texture amplitude as visible against the background


def findings(patient: LatentPatient) -> Findings:
    """The paper's reading criteria measured on a latent patient.

    A nodule's contrast is its count density over that of the gland around it
    (background included), shrunk towards 1 by the blur for small nodules
    (recovery ``D^2 / (D^2 + FWHM^2)``).
    """
    att = patient.attenuation
    bg = patient.background
    unit = _NORMAL_LOBE_MEAN_PATH_MM
    gland = patient.gland_brightness
    brightest = gland
    contrasts = []
    for nd in patient.nodules:
        d = nd.diameter_mm
        host = max(nd.host_thickness_mm, 1.0)
        around = att * patient.uptake * host / unit + bg
        inside = att * (nd.uptake * d + patient.uptake * max(host - d, 0.0)) / unit + bg
        rec = d * d / (d * d + _READING_FWHM_MM ** 2)
        c = 1.0 + (inside / around - 1.0) * rec
        contrasts.append(c)
        if c > 1.0:
            brightest = max(brightest, (inside - bg) * rec * 2.0 / 3.0)
    sal = patient.parotid_brightness
    return Findings(
        thyroid_to_parotid=brightest / sal,
        nodule_contrasts=tuple(contrasts),
        visible_texture=patient.texture * gland / (gland + bg),
    )


def _read(reader: Reader, f: Findings, rng: np.random.Generator) -> int:
    """One reader's label (0-3) for the findings, with perception noise."""
    sd = reader.perception_sd
    ratio = f.thyroid_to_parotid * math.exp(sd * rng.standard_normal())
    seen = [c * math.exp(sd * rng.standard_normal()) for c in f.nodule_contrasts]
    hot = [c for c in seen if c > reader.hot_contrast]
    n_cold = sum(c < reader.cold_contrast for c in seen)
    het = f.visible_texture * math.exp(2.0 * sd * rng.standard_normal()) > reader.heterogeneity
    if len(hot) >= 2:
        return 3
    if len(hot) == 1:
        if n_cold == 0 and not het:
            return 2
        if hot[0] > reader.dominance and n_cold == 0:
            return 2
        return 3
    if n_cold >= 2 or het:
        return 3
    return 1 if ratio < reader.low_ratio else 0


def read_consensus(patient: LatentPatient, rng: np.random.Generator) -> tuple[int, list[int]]:
    """The consensus label of the three readers and their individual labels.

    Majority vote; when all three disagree the senior reader (the first) decides.
    """
    f = findings(patient)
    labels = [_read(r, f, rng) for r in READERS]
    for lab in labels:
        if labels.count(lab) >= 2:
            return lab, labels
    return labels[0], labels


# --------------------------------------------------------------------------- rendering
_AXIS = (np.arange(FINE_MATRIX) + 0.5) * FINE_PIXEL_MM - FOV_MM / 2.0


def _window(cx: float, cy: float, ext: float) -> tuple[slice, slice] | None:
    j0 = max(0, int(math.floor((cx - ext + FOV_MM / 2) / FINE_PIXEL_MM)))
    j1 = min(FINE_MATRIX, int(math.ceil((cx + ext + FOV_MM / 2) / FINE_PIXEL_MM)) + 1)
    i0 = max(0, int(math.floor((cy - ext + FOV_MM / 2) / FINE_PIXEL_MM)))
    i1 = min(FINE_MATRIX, int(math.ceil((cy + ext + FOV_MM / 2) / FINE_PIXEL_MM)) + 1)
    if j0 >= j1 or i0 >= i1:
        return None
    return slice(i0, i1), slice(j0, j1)


def _shape(cx: float, cy: float, hw: float, hl: float, angle_deg: float, profile: str,
           taper: float = 0.0) -> tuple[tuple[slice, slice], np.ndarray] | None:
    """Unit-peak profile of an (optionally tapered) ellipse over its window of the fine grid."""
    gauss = profile == "gauss"
    ext = max(hw * (1 + abs(taper)), hl) * (3.5 if gauss else 1.0) + FINE_PIXEL_MM
    win = _window(cx, cy, ext)
    if win is None:
        return None
    dx = _AXIS[win[1]][None, :] - cx
    dy = _AXIS[win[0]][:, None] - cy
    t = math.radians(angle_deg)
    c, s = math.cos(t), math.sin(t)
    p = c * dx + s * dy  # across
    q = -s * dx + c * dy  # along (down when angle is 0)
    if taper:
        hw_eff = hw * (1.0 + taper * np.clip(q / hl, -1.0, 1.0))
        r2 = (p / hw_eff) ** 2 + (q / hl) ** 2
    else:
        r2 = (p / hw) ** 2 + (q / hl) ** 2
    if gauss:
        return win, np.exp(-0.5 * r2)
    return win, np.sqrt(np.clip(1.0 - r2, 0.0, None))


def _add(layer: np.ndarray, blob: Blob) -> None:
    got = _shape(blob.x_mm, blob.y_mm, blob.half_width_mm, blob.half_length_mm, blob.angle_deg,
                 blob.profile)
    if got is not None:
        layer[got[0]] += blob.peak * got[1]


def _blur_bbox(layer: np.ndarray, fwhm_mm: float) -> np.ndarray:
    """Gaussian blur of a layer, computed only around its non-zero part."""
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / FINE_PIXEL_MM
    rows = np.flatnonzero(layer.any(axis=1))
    if rows.size == 0:
        return layer
    cols = np.flatnonzero(layer.any(axis=0))
    pad = int(math.ceil(4.0 * sigma)) + 1
    i0, i1 = max(0, rows[0] - pad), min(layer.shape[0], rows[-1] + pad + 1)
    j0, j1 = max(0, cols[0] - pad), min(layer.shape[1], cols[-1] + pad + 1)
    out = np.zeros_like(layer)
    out[i0:i1, j0:j1] = ndimage.gaussian_filter(layer[i0:i1, j0:j1], sigma, mode="constant",
                                                truncate=4.0)
    return out


def _thyroid_layer(p: LatentPatient, rng: np.random.Generator) -> np.ndarray:
    """Count density of the gland: tissue thickness x concentration, nodules replacing tissue."""
    tissue = np.zeros((FINE_MATRIX, FINE_MATRIX))
    parts = list(p.lobes) + [x for x in (p.isthmus, p.pyramidal) if x is not None]
    for lb in parts:
        got = _shape(lb.x_mm, lb.y_mm, lb.half_width_mm, lb.half_length_mm, lb.angle_deg,
                     "ellipsoid", lb.taper)
        if got is not None:
            np.maximum(tissue[got[0]], lb.thickness_mm * got[1], out=tissue[got[0]])
    rows = np.flatnonzero(tissue.any(axis=1))
    cols = np.flatnonzero(tissue.any(axis=0))
    activity = np.zeros_like(tissue)
    if rows.size == 0:
        return activity
    win = slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)
    t = tissue[win]
    # Low-frequency texture: white noise smoothed at the patient's scale, unit SD.
    noise = ndimage.gaussian_filter(rng.standard_normal(t.shape), p.texture_scale_mm / FINE_PIXEL_MM,
                                    mode="reflect")
    noise /= max(float(noise.std()), 1e-12)
    conc = p.uptake * np.clip(1.0 + p.texture * noise, 0.0, None)
    extra = np.zeros_like(t)
    taken = np.zeros_like(t)
    ax_x, ax_y = _AXIS[win[1]], _AXIS[win[0]]
    for nd in p.nodules:
        r = nd.diameter_mm / 2.0
        sub = _window(nd.x_mm, nd.y_mm, r + FINE_PIXEL_MM)
        if sub is None:
            continue
        # the nodule's window inside the gland window (nodules may bulge out of it)
        i0, i1 = max(sub[0].start, win[0].start), min(sub[0].stop, win[0].stop)
        j0, j1 = max(sub[1].start, win[1].start), min(sub[1].stop, win[1].stop)
        if i0 >= i1 or j0 >= j1:
            continue
        ly = slice(i0 - win[0].start, i1 - win[0].start)
        lx = slice(j0 - win[1].start, j1 - win[1].start)
        dx = ax_x[lx][None, :] - nd.x_mm
        dy = ax_y[ly][:, None] - nd.y_mm
        chord = 2.0 * np.sqrt(np.clip(r * r - dx * dx - dy * dy, 0.0, None))
        extra[ly, lx] += nd.uptake * chord
        taken[ly, lx] += chord
    scale = p.attenuation / _NORMAL_LOBE_MEAN_PATH_MM
    activity[win] = (conc * np.clip(t - taken, 0.0, None) + extra) * scale
    return activity


_COARSE = 2  # the background is computed on the 128 x 128 grid (2.19 mm) and repeated
_CAXIS = _AXIS.reshape(-1, _COARSE).mean(axis=1)
_CX, _CY = np.meshgrid(_CAXIS, _CAXIS)


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * z))


def _background(p: LatentPatient, fwhm_mm: float) -> np.ndarray:
    """Blood pool of head, neck and shoulders, plus the upper mediastinum, on the coarse grid.

    Activity per unit area is a level times the body's AP thickness profile
    (an elliptic cross-section, ``sqrt(1 - (u / half_width)^2)``); the outline
    narrows from the head (mandible) to the neck and widens to the shoulders.
    It is smooth, so it is computed on the 2.19 mm grid and blurred there with
    the system FWHM at mid-neck depth. Values are per fine pixel.
    """
    t = math.radians(p.rotation_deg)
    c, s = math.cos(t), math.sin(t)
    dx, dy = _CX - p.thyroid_x_mm, _CY - p.thyroid_y_mm
    u = c * dx + s * dy
    v = -s * dx + c * dy
    nw, hw = p.neck_half_width_mm, p.head_half_width_mm
    head = _sigmoid((-48.0 - v) / 5.0)  # 1 above the mandible, 0 below
    w = 14.0
    shoulder = 2.6 * w * np.logaddexp(0.0, (v - 38.0) / w)  # slope 2.6 below the neck
    half = nw + (hw - nw) * head + shoulder
    trunk = _sigmoid((v - 45.0) / 10.0)
    level = (p.background + (p.head_background - p.background) * head
             + (p.trunk_background - p.background) * trunk)
    bg = level * np.sqrt(np.clip(1.0 - (u / half) ** 2, 0.0, None))
    m = p.mediastinum
    mu = c * (_CX - m.x_mm) + s * (_CY - m.y_mm)
    mv = -s * (_CX - m.x_mm) + c * (_CY - m.y_mm)
    bg += m.peak * np.exp(-0.5 * ((mu / m.half_width_mm) ** 2 + (mv / m.half_length_mm) ** 2))
    sigma = fwhm_mm / (2.0 * math.sqrt(2.0 * math.log(2.0))) / (FINE_PIXEL_MM * _COARSE)
    return ndimage.gaussian_filter(bg, sigma, mode="nearest", truncate=3.0)


def render(patient: LatentPatient, acq: Acquisition, rng: np.random.Generator) -> np.ndarray:
    """Render a latent patient as ``acq`` would record it: a uint16 image of raw counts.

    Depth layers (thyroid + marker, submandibular glands, parotids + mouth/nose/
    oesophagus) are each blurred with the system FWHM at their distance; the
    smooth body background is made on the coarse grid and blurred there with the
    FWHM at mid-neck depth. The expected image is binned to the
    acquisition's matrix, scaled to ``acq.total_counts * patient.count_scale``
    and sampled with Poisson noise.
    """
    thy = _thyroid_layer(patient, rng)
    if patient.marker is not None:
        _add(thy, patient.marker)
    img = _blur_bbox(thy, acq.fwhm_mm(patient.thyroid_distance_mm))
    sub = np.zeros_like(img)
    for b in patient.submandibulars:
        _add(sub, b)
    img += _blur_bbox(sub, acq.fwhm_mm(patient.submandibular_distance_mm))
    par = np.zeros_like(img)
    for b in patient.parotids + patient.extras:
        _add(par, b)
    img += _blur_bbox(par, acq.fwhm_mm(patient.parotid_distance_mm))
    bg = _background(patient, acq.fwhm_mm(patient.skin_distance_mm + 50.0))
    if acq.matrix == FINE_MATRIX:
        img += np.repeat(np.repeat(bg, _COARSE, axis=0), _COARSE, axis=1)
    else:
        f = FINE_MATRIX // acq.matrix
        if f * acq.matrix != FINE_MATRIX or f != _COARSE:
            raise ValueError(f"matrix {acq.matrix} is not supported: use {FINE_MATRIX} or "
                             f"{FINE_MATRIX // _COARSE}")
        img = img.reshape(acq.matrix, f, acq.matrix, f).sum(axis=(1, 3)) + (f * f) * bg
    lam = img * (acq.total_counts * patient.count_scale / img.sum())
    counts = rng.poisson(lam)
    return np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)


# --------------------------------------------------------------------------- cohort
def case_id(seed: int, split: str, index: int) -> str:
    """Pseudonymous, stable case id of row ``index`` of ``split``."""
    h = hashlib.sha256(f"{NAME}/case/{seed}/{split}/{index}".encode()).hexdigest()
    return f"tsb1-{h[:12]}"


def patient_id(seed: int, split: str, index: int) -> str:
    """Pseudonymous patient id (one image per patient; never shared between splits)."""
    h = hashlib.sha256(f"{NAME}/patient/{seed}/{split}/{index}".encode()).hexdigest()
    return f"tsbp-{h[:12]}"


def _check_counts(split: str, counts: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in counts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != NUM_CLASSES or any(c < 0 for c in out) or list(out) != [c for c in counts]:
        raise ValueError(f"counts for split {split!r} must be {NUM_CLASSES} non-negative integers "
                         f"in class order {CLASS_NAMES}, got {counts!r}")
    return out


def _sample_split(split: str, seed: int, quota: tuple[int, ...]):
    """Rejection sampling until every class's quota is filled by consensus label."""
    s = SPLITS.index(split)
    center = SPLIT_CENTER[split]
    left = np.array(quota, dtype=float)
    accepted: list[tuple[int, LatentPatient, int, list[int]]] = []
    total = int(left.sum())
    max_attempts = 50 * total + 1000
    j = 0
    while len(accepted) < total:
        if j >= max_attempts:
            raise RuntimeError(f"{split}: quotas {quota} not filled after {j} attempts")
        rng = np.random.default_rng([seed, s, j, 0])
        intended = int(rng.choice(NUM_CLASSES, p=left / left.sum()))
        patient = sample_patient(rng, center, intended)
        label, readers = read_consensus(patient, np.random.default_rng([seed, s, j, 1]))
        if left[label] > 0:
            left[label] -= 1
            accepted.append((j, patient, label, readers))
        j += 1
    return accepted, j


def _render_one(task: tuple[Acquisition, int, int, int, LatentPatient]) -> np.ndarray:
    """Render one accepted patient from its own seeded image stream (also in a worker)."""
    acq, seed, s, j, patient = task
    return render(patient, acq, np.random.default_rng([seed, s, j, 2]))


def split_rows(split: str, seed: int = OFFICIAL_SEED, *, counts: tuple[int, ...] | None = None,
               progress: bool = True, workers: int = 1) -> SplitRows:
    """One split for the dataset writer: every row's columns now (the latent patients are
    sampled and read at once), its images rendered as the writer draws them
    (:func:`~thyroid_bench.data.synthetic.common.render_iter`), so the split is never in
    memory whole. Rows, pixels and order are :func:`generate_split`'s; ``total_counts`` is left
    to the writer, which takes it from the image."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    quota = _check_counts(split, TABLE1_COUNTS[split] if counts is None else counts)
    s = SPLITS.index(split)
    acq = ACQUISITIONS[SPLIT_CENTER[split]]
    accepted, _ = _sample_split(split, seed, quota)
    order = np.random.default_rng([seed, s]).permutation(len(accepted))
    accepted = [accepted[i] for i in order]
    folds = np.full(len(accepted), -1, dtype=int)
    if split == "train":
        labels = np.array([a[2] for a in accepted], dtype=int)
        folds = stratified_folds(labels, NUM_CLASSES, TASK.folds, np.random.default_rng([seed, s, 1]))
    meta = [{
        "case_id": case_id(seed, split, i),
        "patient_id": patient_id(seed, split, i),
        "label": int(label),
        "center": acq.center,
        "fold": int(folds[i]),
        "matrix": acq.matrix,
        "pixel_spacing_mm": acq.pixel_spacing_mm,
        "total_counts": None,
        "acquisition_s": acq.acquisition_s,
        "sex": patient.sex,
        "age": patient.age,
    } for i, (_j, patient, label, _readers) in enumerate(accepted)]
    images = render_iter(_render_one, [(acq, seed, s, j, patient) for j, patient, _l, _r in accepted],
                         workers, progress, f"{NAME} {split}", "img")
    return SplitRows(meta, ({"image": image} for image in images))


def generate_split(split: str, seed: int = OFFICIAL_SEED, *,
                   counts: tuple[int, ...] | None = None,
                   progress: bool = True, workers: int = 1) -> list[dict[str, Any]]:
    """Generate one split as rows in format v1 (``image`` a uint16 array of raw counts).

    ``counts`` (per class, schema order) overrides Table 1, e.g. for tiny test
    cohorts. Rows come in a deterministic shuffled order; ``train`` rows carry
    folds 0-4 stratified by label, the other splits fold -1. ``workers``
    processes render the images; every image has its own seeded stream, so the
    pixels do not depend on ``workers``. :func:`split_rows` gives the same rows with their
    images drawn lazily.
    """
    lazy = split_rows(split, seed, counts=counts, progress=progress, workers=workers)
    rows = []
    for meta, images in zip(lazy.meta, lazy.images, strict=True):
        image = images["image"]
        rows.append({"case_id": meta["case_id"], "patient_id": meta["patient_id"], "image": image,
                     **{k: v for k, v in meta.items() if k not in ("case_id", "patient_id")},
                     "total_counts": int(image.sum(dtype=np.int64))})
    return rows


def generate_cohort(seed: int = OFFICIAL_SEED, *,
                    counts: dict[str, tuple[int, ...]] | None = None,
                    progress: bool = True, workers: int = 1) -> dict[str, list[dict[str, Any]]]:
    """Generate all three splits (``counts`` per split overrides Table 1) with ``workers``
    rendering processes."""
    return per_split(generate_split, seed, counts, progress=progress, workers=workers)


def cohort_rows(seed: int = OFFICIAL_SEED, *, counts: dict[str, tuple[int, ...]] | None = None,
                progress: bool = True, workers: int = 1) -> dict[str, SplitRows]:
    """:func:`generate_cohort` for the dataset writer: each split a :func:`split_rows`, its
    images rendered as they are written."""
    return per_split(split_rows, seed, counts, progress=progress, workers=workers)


def provenance(seed: int) -> dict[str, Any]:
    """JSON-able description of the generator for a dataset manifest."""
    return {
        "generator": "thyroid_bench.data.synthetic.generator",
        "name": NAME,
        "version": VERSION,
        "seed": int(seed),
        "official_seed": OFFICIAL_SEED,
        "synthetic": True,
        "table1_counts": {k: list(v) for k, v in TABLE1_COUNTS.items()},
        "split_center": dict(SPLIT_CENTER),
        "acquisitions": {
            k: {**asdict(a), "pixel_spacing_mm": a.pixel_spacing_mm,
                "fwhm_mm_at": {str(d): round(a.fwhm_mm(d), 3) for d in (0, 50, 100, 150)}}
            for k, a in ACQUISITIONS.items()
        },
        "demographics": {k: asdict(d) for k, d in DEMOGRAPHICS.items()},
        "physics": {
            "fov_mm": FOV_MM,
            "fine_grid": [FINE_MATRIX, FINE_MATRIX],
            "fine_pixel_mm": FINE_PIXEL_MM,
            "normal_lobe_thickness_mm": NORMAL_LOBE_THICKNESS_MM,
            "parotid_to_thyroid": PAROTID_TO_THYROID,
            "submandibular_to_thyroid": SUBMANDIBULAR_TO_THYROID,
            "isthmus_absent_fraction": ISTHMUS_ABSENT,
            "mu_tissue_per_mm": MU_TISSUE_PER_MM,
            "collimator_response": "Gaussian, FWHM(d) = sqrt(R_int^2 + (a + b d)^2), per depth layer",
            "noise": "Poisson",
            "rng": "numpy.random.default_rng([seed, split_index, attempt, stream]); "
                   "stream 0 latent patient, 1 readers, 2 image",
        },
        "readers": {
            "readers": [asdict(r) for r in READERS],
            "rule": "hot foci >= 2 -> IV; one hot focus -> III when nothing else is seen, or "
                    "when the gland is merely heterogeneous and the focus dominant, else IV; "
                    "no hot focus: >= 2 cold areas or heterogeneous -> IV, else "
                    "thyroid/parotid below low_ratio -> II, otherwise I",
            "consensus": "majority of three; a three-way split goes to the senior reader",
            "sampling": "intended class drawn in proportion to open quota; a case is kept when "
                        "its consensus label's quota is still open",
        },
        "class_names": list(CLASS_NAMES),
        "paper_types": list(PAPER_TYPES),
    }
