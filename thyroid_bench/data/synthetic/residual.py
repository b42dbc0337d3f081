"""The synthetic cohort ``tsb-residual`` 1.0.0: diagnostic I-131 scans after total thyroidectomy.

A phantom study for the task ``residual-tissue`` (Lai Phu Minh et al. 2023, J. Mil. Sci.
Technol. 88, doi 10.54939/1859-1043.j.mst.88.2023.131-138), built physics first as
``tsb-synthetic`` is (:mod:`thyroid_bench.data.synthetic.generator`). It is synthetic; no
clinical claim rests on it.

How a case is made
------------------
1. :func:`sample_patient` draws a latent patient in millimetres (origin at the thyroid bed,
   x to the right of the anterior image, y down, depth from the anterior skin): 0-4 remnant
   foci in the thyroid bed (sizes, depths, uptake in % of the administered activity; now and
   then a pyramidal-lobe remnant above the bed), the parotid and submandibular glands, nasal
   and oral activity, oesophageal retention in the midline (the classic mimic), the odd skin
   contamination or sternal-notch marker, and the body's blood pool. The administered
   activity, scan delay and camera give the counts per % of the activity.
2. :func:`render_views` projects it as the camera records it, anterior then posterior
   (a posterior view is the mirror image, its depths measured from the back): each source is
   attenuated by the tissue in front of it (I-131, 364 keV) and blurred with the high-energy
   collimator's depth-dependent Gaussian response (a Gaussian source stays Gaussian, so each
   is drawn analytically); intense foci get the six star spokes of septal penetration
   through a hexagonal-hole collimator; the expected image is sampled with Poisson noise.
3. :func:`read_consensus` has three simulated readers look at the latent patient: each sees
   focal uptake when a remnant's contrast-to-noise ratio passes their own threshold (or takes
   the oesophagus for a remnant), measures the thyroid-bed uptake as a conjugate-view ROI
   would (the attenuation-corrected activity in the ROI, from the latent patient, not from
   the pixels) with their own noise, and grades it (absent: no focal uptake; low < 1%; moderate 1-2%;
   high > 2%). The label is the median grade, ``uptake_pct`` the mean measurement.
4. :func:`generate_split` draws patients (intended grade in proportion to the quota still
   open) until every grade's quota is filled by *consensus* label.

Everything is deterministic from the seed: attempt ``j`` of split ``s`` draws from
``numpy.random.default_rng([seed, s, j, stream])`` (stream 0: latent patient, 1: readers,
2: images).
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import asdict, dataclass, replace
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import ndimage

from thyroid_bench.data.split_rows import SplitRows
from thyroid_bench.data.synthetic.common import per_split, render_iter, stratified_folds
from thyroid_bench.tasks import SPLITS, UNKNOWN_GRADE
from thyroid_bench.tasks.residual_tissue import RESIDUAL_TISSUE

__all__ = [
    "TASK", "NAME", "VERSION", "OFFICIAL_SEED", "COUNTS", "GRADE_LIMITS_PCT",
    "Camera", "CAMERAS", "SPLIT_CENTER", "Population", "POPULATIONS", "Source",
    "LatentPatient", "Reader", "READERS", "Findings", "sample_patient", "findings",
    "read_consensus", "render_views", "bed_window", "split_rows", "generate_split",
    "generate_cohort", "cohort_rows",
    "provenance", "case_id", "patient_id", "grade_of",
]

TASK = RESIDUAL_TISSUE
NAME = "tsb-residual"
VERSION = "1.0.0"
#: Seed of the official release (the source paper's year and journal issue: 2023, no. 88).
OFFICIAL_SEED = 202388
NUM_CLASSES = TASK.num_classes

#: Cases per grade (absent, low, moderate, high) and split. Present:absent mirrors the
#: curated subset's 863:912; the grade mix is ours.
COUNTS: dict[str, tuple[int, ...]] = {
    "train": (584, 221, 166, 165),
    "internal": (146, 55, 42, 41),
    "external": (182, 69, 52, 52),
}
#: Grade limits on thyroid-bed uptake (% of administered): low < 1, moderate 1-2, high > 2.
GRADE_LIMITS_PCT = (1.0, 2.0)

# --------------------------------------------------------------------------- physics
#: Broad-beam linear attenuation of soft tissue at 364 keV (narrow-beam water 0.111 /cm;
#: scatter in a 20% window lowers it to about 0.095 /cm).
MU_PER_MM = 0.0095
#: Physical half-life of I-131 (8.02 days).
HALF_LIFE_H = 192.5
#: Reference AP thickness of the neck (mm).
NECK_MM = 115.0


@dataclass(frozen=True)
class Camera:
    """A gamma camera, high-energy collimator and protocol: what a centre's images come from.

    System resolution at distance ``d`` from the collimator face,
    ``FWHM(d) = sqrt(R_int^2 + (a + b d)^2)``, ``b`` set by the datasheet FWHM at 100 mm.
    ``dwell_s`` is how long a point of the patient is seen (a sweep: detector length times
    the speed in s/mm; a static view: its duration). ``penetration`` is the fraction of a
    source's counts in the star spokes (septal penetration at 364 keV).
    """

    center: str
    description: str
    acquisition: str  # "whole-body sweep" or "static neck"
    matrix: int
    fov_mm: float
    dwell_s: float
    acquisition_s: float
    sensitivity_cps_per_mbq: float
    intrinsic_fwhm_mm: float
    collimator_fwhm_mm_at_face: float
    system_fwhm_mm_at_100mm: float
    penetration: float
    spoke_length_mm: float
    spoke_angle_deg: float
    anterior_gap_mm: float
    posterior_gap_mm: float
    bed_row_fraction: float  # where the bed falls, as a fraction of the image height
    placement_sd_mm: float  # how much that varies (crop rule or positioning)

    @property
    def pixel_spacing_mm(self) -> float:
        return self.fov_mm / self.matrix

    def fwhm_mm(self, distance_mm: float) -> float:
        """System FWHM (mm) for a source ``distance_mm`` from the collimator face."""
        r100 = math.sqrt(self.system_fwhm_mm_at_100mm ** 2 - self.intrinsic_fwhm_mm ** 2)
        r_col = self.collimator_fwhm_mm_at_face + (r100 - self.collimator_fwhm_mm_at_face) * distance_mm / 100
        return math.sqrt(self.intrinsic_fwhm_mm ** 2 + r_col ** 2)


CAMERAS: dict[str, Camera] = {
    # Millennium-MG-like dual head with HEGP collimators, whole-body sweep 512 x 1024 at
    # 7 min/m (0.42 s/mm); a 400 mm detector sees each point for 168 s. The model input is
    # the 256 x 256 head-and-neck crop (270 mm) of that whole-body image.
    "center1": Camera(
        center="center1", description="whole-body sweep 512 x 1024 at 7 min/m, 256 x 256 "
        "head-and-neck crop", acquisition="whole-body sweep", matrix=256, fov_mm=270.0,
        dwell_s=168.0, acquisition_s=168.0, sensitivity_cps_per_mbq=55.0, intrinsic_fwhm_mm=4.6,
        collimator_fwhm_mm_at_face=4.0, system_fwhm_mm_at_100mm=13.5, penetration=0.045,
        spoke_length_mm=30.0, spoke_angle_deg=0.0, anterior_gap_mm=40.0, posterior_gap_mm=15.0,
        bed_row_fraction=0.55, placement_sd_mm=12.0),
    # Another camera (Infinia-like, HEGP) with a static neck view: 256 x 256, 10 min, zoom
    # 1.25 on a 400 mm detector (320 mm field), camera close to the neck.
    "center2": Camera(
        center="center2", description="static neck 256 x 256, 10 min", acquisition="static neck",
        matrix=256, fov_mm=320.0, dwell_s=600.0, acquisition_s=600.0,
        sensitivity_cps_per_mbq=62.0, intrinsic_fwhm_mm=3.9, collimator_fwhm_mm_at_face=3.4,
        system_fwhm_mm_at_100mm=12.0, penetration=0.035, spoke_length_mm=26.0,
        spoke_angle_deg=30.0, anterior_gap_mm=20.0, posterior_gap_mm=20.0,
        bed_row_fraction=0.50, placement_sd_mm=7.0),
}
SPLIT_CENTER: dict[str, str] = {"train": "center1", "internal": "center1", "external": "center2"}


@dataclass(frozen=True)
class Population:
    """Who a centre scans and how: sex, age, diagnostic activity, scan delay, how often the
    oesophagus retains activity, skin contamination and markers."""

    female_fraction: float
    age_mean: float
    age_sd: float
    activity_mbq: tuple[float, float]
    delay_h: tuple[float, float]
    oesophagus: float
    contamination: float
    marker: float


POPULATIONS: dict[str, Population] = {
    "center1": Population(0.78, 44.0, 13.0, (111.0, 185.0), (48.0, 72.0), 0.35, 0.04, 0.03),
    "center2": Population(0.70, 49.0, 14.0, (74.0, 148.0), (72.0, 96.0), 0.50, 0.06, 0.25),
}


# --------------------------------------------------------------------------- latent patient
@dataclass(frozen=True)
class Source:
    """A Gaussian source of activity: centre, SDs (mm), % of the administered activity, its
    depth below the anterior skin and the body's AP thickness there (mm)."""

    kind: str
    x_mm: float
    y_mm: float
    sx_mm: float
    sy_mm: float
    pct: float
    depth_mm: float
    body_mm: float
    anterior_only: bool = False  # a marker placed for the anterior view


@dataclass(frozen=True)
class LatentPatient:
    """Everything the images and the readers are made from (mm, % of administered activity)."""

    center: str
    intended_class: int
    sex: str
    age: int
    remnants: tuple[Source, ...]
    others: tuple[Source, ...]
    neck_mm: float
    head_mm: float
    chest_mm: float
    neck_half_width_mm: float
    head_half_width_mm: float
    blood_pct_per_ml: float  # body background concentration
    counts_per_pct: float  # counts of 1% of the activity, unattenuated, in this study
    bed_x_mm: float  # the thyroid bed in the anterior image, from its centre
    bed_y_mm: float

    @property
    def true_uptake_pct(self) -> float:
        """Total remnant uptake (% of administered)."""
        return float(sum(s.pct for s in self.remnants))

    @property
    def sources(self) -> tuple[Source, ...]:
        return self.remnants + self.others


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _lognormal(rng: np.random.Generator, median: float, sigma: float, hi: float) -> float:
    return float(min(median * math.exp(sigma * rng.standard_normal()), hi))


def _remnant_total(rng: np.random.Generator, intended: int) -> float:
    """Total thyroid-bed uptake (%) aimed at for an intended grade; readers decide the label."""
    if intended == 0:
        return 0.0 if rng.random() < 0.85 else _u(rng, 0.002, 0.03)  # none, or a trace
    if intended == 1:
        return _u(rng, 0.06, 1.0)
    if intended == 2:
        return _u(rng, 0.9, 2.15)
    return 2.0 + _lognormal(rng, 1.3, 0.8, 10.0)


def _remnants(rng: np.random.Generator, intended: int, neck_mm: float) -> tuple[Source, ...]:
    """0-4 foci in the thyroid bed sharing the total uptake; now and then one is pyramidal."""
    total = _remnant_total(rng, intended)
    if total <= 0:
        return ()
    n = int(rng.choice(4, p=(0.45, 0.33, 0.14, 0.08))) + 1
    shares = rng.dirichlet(np.full(n, 2.0))
    pyramidal = rng.random() < 0.12
    foci = []
    for i, share in enumerate(shares):
        pct = float(total * share)
        size = (2.0 + 2.5 * pct ** (1 / 3)) * _u(rng, 0.8, 1.2)
        if pyramidal and i == n - 1:
            foci.append(Source("pyramidal", float(rng.normal(0, 3)), _u(rng, -45, -28), 0.8 * size,
                               1.3 * size, pct, _u(rng, 8, 15), neck_mm))
            continue
        midline = rng.random() < 0.15
        x = float(rng.normal(0, 4)) if midline else float(rng.choice((-1, 1)) * _u(rng, 8, 22))
        y = float(np.clip(rng.normal(0, 9), -25, 25))
        foci.append(Source("remnant", x, y, size, size * _u(rng, 1.0, 1.6), pct,
                           _u(rng, 12, 28) * neck_mm / NECK_MM, neck_mm))
    return tuple(foci)


def _pair(rng: np.random.Generator, kind: str, x: tuple[float, float], y: tuple[float, float],
          sx: tuple[float, float], sy: tuple[float, float], median: float, depth: float,
          body: float) -> list[Source]:
    """Left and right glands of one kind, a little asymmetric."""
    x0, y0, level = _u(rng, *x), _u(rng, *y), _lognormal(rng, median, 0.5, 8 * median)
    return [Source(kind, side * x0 + float(rng.normal(0, 2)), y0 + float(rng.normal(0, 3)),
                   _u(rng, *sx), _u(rng, *sy), level * _u(rng, 0.8, 1.2), depth, body)
            for side in (-1, 1)]


def _surroundings(rng: np.random.Generator, pop: Population, neck: float, head: float,
                  chest: float) -> tuple[Source, ...]:
    """Salivary glands, nose and mouth, oesophagus, contamination, marker (% of activity)."""
    out = _pair(rng, "parotid", (48, 60), (-100, -80), (8, 11), (12, 16), 0.15, 0.45 * head, head)
    out += _pair(rng, "submandibular", (28, 38), (-62, -48), (6, 8), (5, 7), 0.08, 0.35 * head, head)
    if rng.random() < 0.7:
        out.append(Source("oral", float(rng.normal(0, 3)), _u(rng, -105, -90), _u(rng, 10, 18),
                          _u(rng, 5, 9), _lognormal(rng, 0.10, 0.7, 1.0), 0.4 * head, head))
    if rng.random() < 0.6:
        out.append(Source("nasal", float(rng.normal(0, 2)), _u(rng, -150, -135), _u(rng, 5, 8),
                          _u(rng, 6, 10), _lognormal(rng, 0.05, 0.6, 0.5), 0.15 * head, head))
    if rng.random() < pop.oesophagus:
        out.append(Source("oesophagus", float(rng.normal(0, 3)), float(rng.normal(10, 20)),
                          _u(rng, 3.5, 6), _u(rng, 25, 60), _lognormal(rng, 0.12, 0.9, 1.5),
                          _u(rng, 0.55, 0.7) * neck, neck))
    if rng.random() < pop.contamination:
        back = rng.random() < 0.5
        out.append(Source("contamination", _u(rng, -70, 70), _u(rng, -40, 120), _u(rng, 1.5, 3),
                          _u(rng, 1.5, 3), _lognormal(rng, 0.05, 0.8, 1.0), chest if back else 0.0,
                          chest))
    if rng.random() < pop.marker:
        out.append(Source("marker", float(rng.normal(0, 3)), _u(rng, 35, 50), 1.5, 1.5,
                          _u(rng, 0.3, 1.0), 0.0, neck, anterior_only=True))
    return tuple(out)


def sample_patient(rng: np.random.Generator, center: str, intended_class: int) -> LatentPatient:
    """Draw a latent patient of ``center`` aiming at ``intended_class`` (readers decide the label)."""
    cam, pop = CAMERAS[center], POPULATIONS[center]
    sex = "F" if rng.random() < pop.female_fraction else "M"
    age = int(np.clip(round(rng.normal(pop.age_mean, pop.age_sd)), 18, 90))
    neck = float(np.clip(rng.normal(NECK_MM if sex == "F" else 125.0, 12), 85, 165))
    head, chest = neck * _u(rng, 1.45, 1.65), neck * _u(rng, 1.7, 2.0)
    remnants = _remnants(rng, intended_class, neck)
    others = _surroundings(rng, pop, neck, head, chest)
    activity = _u(rng, *pop.activity_mbq)
    decay = 2.0 ** (-_u(rng, *pop.delay_h) / HALF_LIFE_H)
    retained = _u(rng, 8.0, 25.0)  # % of the activity still in the blood pool and tissues
    placement = cam.placement_sd_mm
    return LatentPatient(
        center=center, intended_class=intended_class, sex=sex, age=age, remnants=remnants,
        others=others, neck_mm=neck, head_mm=head, chest_mm=chest,
        neck_half_width_mm=_u(rng, 52, 68) * neck / NECK_MM, head_half_width_mm=_u(rng, 72, 88),
        blood_pct_per_ml=retained / _u(rng, 55_000, 80_000),
        counts_per_pct=activity / 100.0 * decay * cam.sensitivity_cps_per_mbq * cam.dwell_s,
        bed_x_mm=float(rng.normal(0, placement / 3)),
        bed_y_mm=(cam.bed_row_fraction - 0.5) * cam.fov_mm + float(rng.normal(0, placement)),
    )


def grade_of(uptake_pct: float) -> int:
    """The grade (1 low, 2 moderate, 3 high) of a measured uptake when focal uptake is seen."""
    low, high = GRADE_LIMITS_PCT
    return 1 if uptake_pct < low else (2 if uptake_pct <= high else 3)


# --------------------------------------------------------------------------- readers
@dataclass(frozen=True)
class Reader:
    """A simulated reader: the contrast-to-noise ratio at which focal uptake is seen (Rose's
    criterion is about 5), perception noise (log SD), ROI measurement noise (log SD) and bias,
    how often the oesophagus is recognised for what it is, how much of it slips into the bed
    ROI, and how often a pyramidal remnant is left out of the ROI."""

    name: str
    detect_cnr: float
    perception_sd: float
    measure_sd: float
    bias: float
    recognises_oesophagus: float
    oesophagus_in_roi: float
    misses_pyramidal: float


READERS: tuple[Reader, ...] = (
    Reader("senior", 5.0, 0.15, 0.10, 1.00, 0.85, 0.15, 0.10),
    Reader("reader2", 4.5, 0.20, 0.15, 1.06, 0.70, 0.30, 0.30),
    Reader("reader3", 5.5, 0.20, 0.15, 0.95, 0.65, 0.30, 0.30),
)


@dataclass(frozen=True)
class Findings:
    """What a perfect reader would see: the most conspicuous remnant and the oesophagus in
    the bed (contrast-to-noise of the counts within their FWHM against the background), and
    the uptake (%) of the bed, of a pyramidal remnant and of the oesophagus inside the bed."""

    remnant_cnr: float
    oesophagus_cnr: float
    bed_pct: float
    pyramidal_pct: float
    oesophagus_bed_pct: float


def _cnr(p: LatentPatient, s: Source, cam: Camera, pct: float | None = None) -> float:
    """Contrast-to-noise ratio of a source on the better view: counts inside its FWHM over
    the Poisson SD of those and the background counts under them."""
    best = 0.0
    bg_density = p.blood_pct_per_ml / 1000.0 * (1 - math.exp(-MU_PER_MM * p.neck_mm)) / MU_PER_MM
    for view in ("anterior", "posterior"):
        depth = s.depth_mm if view == "anterior" else s.body_mm - s.depth_mm
        gap = cam.anterior_gap_mm if view == "anterior" else cam.posterior_gap_mm
        sigma = cam.fwhm_mm(gap + depth) / 2.3548
        sx, sy = math.hypot(s.sx_mm, sigma), math.hypot(s.sy_mm, sigma)
        signal = 0.5 * (s.pct if pct is None else pct) * math.exp(-MU_PER_MM * depth) * p.counts_per_pct
        area = math.pi * 1.3863 * sx * sy
        background = bg_density * area * p.counts_per_pct
        best = max(best, signal / math.sqrt(signal + background + 1e-9))
    return best


def findings(patient: LatentPatient) -> Findings:
    """The reading criteria measured on a latent patient (before each reader's noise)."""
    cam = CAMERAS[patient.center]
    cnr = max((_cnr(patient, s, cam) for s in patient.remnants), default=0.0)
    oes = [s for s in patient.others if s.kind == "oesophagus"]
    oes_bed, oes_cnr = 0.0, 0.0
    if oes:
        s = oes[0]  # the part of it that lies over the bed (|y| < 30 mm)
        lo, hi = (-30 - s.y_mm) / s.sy_mm, (30 - s.y_mm) / s.sy_mm
        oes_bed = s.pct * 0.5 * (math.erf(hi / math.sqrt(2)) - math.erf(lo / math.sqrt(2)))
        oes_cnr = _cnr(patient, replace(s, sy_mm=min(s.sy_mm, 30.0)), cam, oes_bed)
    return Findings(
        remnant_cnr=cnr, oesophagus_cnr=oes_cnr,
        bed_pct=sum(s.pct for s in patient.remnants if s.kind == "remnant"),
        pyramidal_pct=sum(s.pct for s in patient.remnants if s.kind == "pyramidal"),
        oesophagus_bed_pct=oes_bed,
    )


def _read(reader: Reader, f: Findings, rng: np.random.Generator) -> tuple[int, float]:
    """One reader's grade and ROI uptake (%), with their noise."""
    sd = reader.perception_sd
    sees = f.remnant_cnr * math.exp(sd * rng.standard_normal()) > reader.detect_cnr
    mimic = (f.oesophagus_cnr * math.exp(sd * rng.standard_normal()) > reader.detect_cnr
             and rng.random() > reader.recognises_oesophagus)
    in_roi = f.bed_pct + (0.0 if rng.random() < reader.misses_pyramidal else f.pyramidal_pct)
    in_roi += reader.oesophagus_in_roi * f.oesophagus_bed_pct
    measured = reader.bias * in_roi * math.exp(reader.measure_sd * rng.standard_normal())
    measured = max(0.0, measured + 0.01 * rng.standard_normal())  # background subtraction
    return (grade_of(measured) if sees or mimic else 0), measured


def read_consensus(patient: LatentPatient, rng: np.random.Generator) -> tuple[int, float, list[int]]:
    """The consensus grade (median of the three readers), the consensus uptake (mean of their
    ROI measurements, % to 0.01) and each reader's grade."""
    f = findings(patient)
    reads = [_read(r, f, rng) for r in READERS]
    grades = [g for g, _ in reads]
    return sorted(grades)[1], round(float(np.mean([m for _, m in reads])), 2), grades


# --------------------------------------------------------------------------- rendering
def _axis(cam: Camera) -> np.ndarray:
    """Pixel centres (mm from the image centre)."""
    return (np.arange(cam.matrix) + 0.5) * cam.pixel_spacing_mm - cam.fov_mm / 2


def _gauss(img: np.ndarray, axis: np.ndarray, x: float, y: float, sx: float, sy: float,
           counts: float) -> None:
    """Add ``counts`` as a separable 2-D Gaussian (integral over the image plane)."""
    pix = axis[1] - axis[0]
    cols = np.flatnonzero(np.abs(axis - x) < 4 * sx)
    rows = np.flatnonzero(np.abs(axis - y) < 4 * sy)
    if cols.size == 0 or rows.size == 0:
        return
    gx = np.exp(-0.5 * ((axis[cols] - x) / sx) ** 2) * pix / (sx * math.sqrt(2 * math.pi))
    gy = np.exp(-0.5 * ((axis[rows] - y) / sy) ** 2) * pix / (sy * math.sqrt(2 * math.pi))
    img[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1] += counts * np.outer(gy, gx)


@lru_cache(maxsize=4)
def _star(cam: Camera) -> np.ndarray:
    """Unit-sum star of septal penetration for ``cam``: six spokes of a hexagonal-hole
    collimator (three lines through the source) about 1.2 mm wide, decaying over
    ``spoke_length_mm``, on the pixel grid (odd size, centred)."""
    pix = cam.pixel_spacing_mm
    half = int(math.ceil(3 * cam.spoke_length_mm / pix))
    d = np.arange(-half, half + 1) * pix
    dx, dy = d[None, :], d[:, None]
    star = np.zeros((d.size, d.size))
    for k in range(3):
        t = math.radians(cam.spoke_angle_deg + 60 * k)
        along = np.abs(dx * math.cos(t) + dy * math.sin(t))
        across = -dx * math.sin(t) + dy * math.cos(t)
        star += np.exp(-along / cam.spoke_length_mm - 0.5 * (across / 1.2) ** 2)
    return star / star.sum()


def _spokes(img: np.ndarray, axis: np.ndarray, x: float, y: float, counts: float,
            cam: Camera) -> None:
    """Septal penetration: add ``counts`` as the camera's star centred on the source's pixel."""
    star = _star(cam)
    half = star.shape[0] // 2
    i, j = (int(np.argmin(np.abs(axis - v))) for v in (y, x))
    r0, r1 = max(0, i - half), min(img.shape[0], i + half + 1)
    c0, c1 = max(0, j - half), min(img.shape[1], j + half + 1)
    img[r0:r1, c0:c1] += counts * star[r0 - i + half:r1 - i + half, c0 - j + half:c1 - j + half]


def _body(p: LatentPatient, cam: Camera) -> np.ndarray:
    """Expected counts of the blood pool: concentration times the attenuated path through an
    elliptic body section whose width and thickness go from head to neck to shoulders. The
    path is the same seen from the front or the back, so both views share it. It is smooth:
    made on a 2x coarser grid, blurred there with the response at mid-depth, repeated."""
    axis = _axis(cam).reshape(-1, 2).mean(axis=1)
    pix = 2 * cam.pixel_spacing_mm
    y = axis - p.bed_y_mm
    head = 0.5 * (1 + np.tanh((-70.0 - y) / 10.0))  # 1 above the mandible
    chest = 0.5 * (1 + np.tanh((y - 70.0) / 15.0))  # 1 below the shoulders
    half = (p.neck_half_width_mm + (p.head_half_width_mm - p.neck_half_width_mm) * head
            + 2.2 * 14.0 * np.logaddexp(0.0, (y - 40.0) / 14.0))
    thick = p.neck_mm + (p.head_mm - p.neck_mm) * head + (p.chest_mm - p.neck_mm) * chest
    level = 1.0 - 0.2 * head + 0.3 * chest
    u = (axis[None, :] - p.bed_x_mm) / half[:, None]
    t = thick[:, None] * np.sqrt(np.clip(1.0 - u * u, 0.0, None))
    path = (1.0 - np.exp(-MU_PER_MM * t)) / MU_PER_MM  # mm, attenuation-weighted
    counts = (p.blood_pct_per_ml / 1000.0) * level[:, None] * path * pix * pix * p.counts_per_pct
    sigma = cam.fwhm_mm(cam.anterior_gap_mm + p.neck_mm / 2) / 2.3548 / pix
    counts = ndimage.gaussian_filter(counts, sigma, mode="nearest", truncate=3.0)
    return np.repeat(np.repeat(counts / 4.0, 2, axis=0), 2, axis=1)


#: Penetration counts below which spokes are not drawn: spread over the star they are
#: well under a count per pixel, lost in the noise.
_SPOKES_SEEN = 150.0


def _view(p: LatentPatient, cam: Camera, view: str, body: np.ndarray) -> np.ndarray:
    """Expected counts of one view, in the anterior image's frame (the caller mirrors the
    posterior): the body's blood pool plus every source, attenuated and blurred for its depth."""
    axis = _axis(cam)
    img = body.copy()
    for s in p.sources:
        if view == "posterior" and s.anterior_only:
            continue
        depth = s.depth_mm if view == "anterior" else s.body_mm - s.depth_mm
        gap = cam.anterior_gap_mm if view == "anterior" else cam.posterior_gap_mm
        sigma = cam.fwhm_mm(gap + depth) / 2.3548
        counts = s.pct * p.counts_per_pct * math.exp(-MU_PER_MM * depth)
        x, y = p.bed_x_mm + s.x_mm, p.bed_y_mm + s.y_mm
        _gauss(img, axis, x, y, math.hypot(s.sx_mm, sigma), math.hypot(s.sy_mm, sigma),
               counts * (1 - cam.penetration))
        if counts * cam.penetration > _SPOKES_SEEN:
            _spokes(img, axis, x, y, counts * cam.penetration, cam)
    return img


def render_views(patient: LatentPatient, cam: Camera, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """The anterior and posterior views as ``cam`` records them: uint16 raw counts, the
    posterior mirrored left-right as a posterior view is."""
    out, body = [], _body(patient, cam)
    for view in ("anterior", "posterior"):
        counts = rng.poisson(_view(patient, cam, view, body))
        img = np.minimum(counts, np.iinfo(np.uint16).max).astype(np.uint16)
        out.append(img if view == "anterior" else img[:, ::-1].copy())
    return out[0], out[1]


def bed_window(patient: LatentPatient, cam: Camera, view: str = "anterior",
               half_mm: float = 30.0) -> tuple[slice, slice]:
    """Rows and columns of a square ROI of half-size ``half_mm`` over the thyroid bed in a
    rendered view (the posterior is mirrored)."""
    axis = _axis(cam)
    x = patient.bed_x_mm if view == "anterior" else -patient.bed_x_mm
    cols = np.flatnonzero(np.abs(axis - x) <= half_mm)
    rows = np.flatnonzero(np.abs(axis - patient.bed_y_mm) <= half_mm)
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


# --------------------------------------------------------------------------- cohort
def case_id(seed: int, split: str, index: int) -> str:
    """Pseudonymous, stable case id of row ``index`` of ``split``."""
    return "tsr1-" + hashlib.sha256(f"{NAME}/case/{seed}/{split}/{index}".encode()).hexdigest()[:12]


def patient_id(seed: int, split: str, index: int) -> str:
    """Pseudonymous patient id (one study per patient; never shared between splits)."""
    return "tsrp-" + hashlib.sha256(f"{NAME}/patient/{seed}/{split}/{index}".encode()).hexdigest()[:12]


def _check_counts(split: str, counts: Any) -> tuple[int, ...]:
    try:
        out = tuple(int(c) for c in counts)
    except (TypeError, ValueError):
        out = ()
    if len(out) != NUM_CLASSES or any(c < 0 for c in out) or list(out) != list(counts):
        raise ValueError(f"counts for split {split!r} must be {NUM_CLASSES} non-negative integers "
                         f"in grade order {TASK.class_names}, got {counts!r}")
    return out


def _sample_split(split: str, seed: int, quota: tuple[int, ...]) -> list[tuple[int, LatentPatient, int, float]]:
    """Rejection sampling until every grade's quota is filled by consensus label."""
    s = SPLITS.index(split)
    left = np.array(quota, dtype=float)
    accepted: list[tuple[int, LatentPatient, int, float]] = []
    total, j = int(left.sum()), 0
    while len(accepted) < total:
        if j >= 50 * total + 1000:
            raise RuntimeError(f"{split}: quotas {quota} not filled after {j} attempts")
        rng = np.random.default_rng([seed, s, j, 0])
        intended = int(rng.choice(NUM_CLASSES, p=left / left.sum()))
        patient = sample_patient(rng, SPLIT_CENTER[split], intended)
        label, uptake, _ = read_consensus(patient, np.random.default_rng([seed, s, j, 1]))
        if left[label] > 0:
            left[label] -= 1
            accepted.append((j, patient, label, uptake))
        j += 1
    return accepted


def _render_one(job: tuple[Camera, int, int, int, LatentPatient]) -> tuple[np.ndarray, np.ndarray]:
    """Render one accepted patient from its own seeded image stream (also in a worker)."""
    cam, seed, s, j, patient = job
    return render_views(patient, cam, np.random.default_rng([seed, s, j, 2]))


def split_rows(split: str, seed: int = OFFICIAL_SEED, *, counts: tuple[int, ...] | None = None,
               progress: bool = True, workers: int = 1) -> SplitRows:
    """One split for the dataset writer: every row's columns now, both views rendered as the
    writer draws them (:func:`~thyroid_bench.data.synthetic.common.render_iter`). Rows, pixels
    and order are :func:`generate_split`'s; ``total_counts`` is left to the writer, which takes
    it from the anterior view."""
    if split not in SPLITS:
        raise ValueError(f"unknown split {split!r}; expected one of {SPLITS}")
    quota = _check_counts(split, COUNTS[split] if counts is None else counts)
    s, cam = SPLITS.index(split), CAMERAS[SPLIT_CENTER[split]]
    accepted = _sample_split(split, seed, quota)
    accepted = [accepted[i] for i in np.random.default_rng([seed, s]).permutation(len(accepted))]
    labels = np.array([a[2] for a in accepted], dtype=int)
    folds = (stratified_folds(labels, NUM_CLASSES, TASK.folds, np.random.default_rng([seed, s, 1]))
             if split == "train" else np.full(labels.size, -1, dtype=int))
    assert UNKNOWN_GRADE not in labels  # every synthetic case has a grade
    meta = [{
        "case_id": case_id(seed, split, i), "patient_id": patient_id(seed, split, i),
        "label": int(label), "center": cam.center, "fold": int(folds[i]),
        "matrix": cam.matrix, "pixel_spacing_mm": cam.pixel_spacing_mm,
        "total_counts": None, "acquisition_s": cam.acquisition_s,
        "sex": patient.sex, "age": patient.age, "uptake_pct": float(uptake),
    } for i, (_j, patient, label, uptake) in enumerate(accepted)]
    views = render_iter(_render_one, [(cam, seed, s, j, p) for j, p, _, _ in accepted], workers,
                        progress, f"{NAME} {split}", "study")
    return SplitRows(meta, ({"image": anterior, "image_posterior": posterior}
                            for anterior, posterior in views))


def generate_split(split: str, seed: int = OFFICIAL_SEED, *, counts: tuple[int, ...] | None = None,
                   progress: bool = True, workers: int = 1) -> list[dict[str, Any]]:
    """Generate one split as rows of task residual-tissue (``image`` the anterior view,
    ``image_posterior`` the posterior, uint16 counts; ``uptake_pct`` the readers' mean).

    ``counts`` (per grade) overrides :data:`COUNTS`. Rows come in a deterministic shuffled
    order; ``train`` rows carry folds 0-4 stratified by grade. The pixels do not depend on
    ``workers``. :func:`split_rows` gives the same rows with their views drawn lazily.
    """
    lazy = split_rows(split, seed, counts=counts, progress=progress, workers=workers)
    rows = []
    for meta, views in zip(lazy.meta, lazy.images, strict=True):
        anterior = views["image"]
        rows.append({
            "case_id": meta["case_id"], "patient_id": meta["patient_id"], "image": anterior,
            **{k: v for k, v in meta.items() if k not in ("case_id", "patient_id", "uptake_pct")},
            "total_counts": int(anterior.sum(dtype=np.int64)),
            "image_posterior": views["image_posterior"], "uptake_pct": meta["uptake_pct"],
        })
    return rows


def generate_cohort(seed: int = OFFICIAL_SEED, *, counts: dict[str, tuple[int, ...]] | None = None,
                    progress: bool = True, workers: int = 1) -> dict[str, list[dict[str, Any]]]:
    """All three splits (``counts`` per split overrides :data:`COUNTS`)."""
    return per_split(generate_split, seed, counts, progress=progress, workers=workers)


def cohort_rows(seed: int = OFFICIAL_SEED, *, counts: dict[str, tuple[int, ...]] | None = None,
                progress: bool = True, workers: int = 1) -> dict[str, SplitRows]:
    """:func:`generate_cohort` for the dataset writer: each split a :func:`split_rows`."""
    return per_split(split_rows, seed, counts, progress=progress, workers=workers)


def provenance(seed: int) -> dict[str, Any]:
    """JSON-able description of the generator for a dataset manifest."""
    return {
        "generator": "thyroid_bench.data.synthetic.residual", "name": NAME, "version": VERSION,
        "seed": int(seed), "official_seed": OFFICIAL_SEED, "synthetic": True,
        "counts": {k: list(v) for k, v in COUNTS.items()}, "split_center": dict(SPLIT_CENTER),
        "cameras": {k: {**asdict(c), "pixel_spacing_mm": c.pixel_spacing_mm,
                        "fwhm_mm_at": {str(d): round(c.fwhm_mm(d), 3) for d in (0, 50, 100, 150)}}
                    for k, c in CAMERAS.items()},
        "populations": {k: asdict(p) for k, p in POPULATIONS.items()},
        "physics": {
            "isotope": "I-131, 364 keV, half-life 8.02 d", "mu_per_mm": MU_PER_MM,
            "collimator_response": "Gaussian, FWHM(d) = sqrt(R_int^2 + (a + b d)^2), per source",
            "septal_penetration": "six spokes (hexagonal holes), exponential fall-off",
            "noise": "Poisson", "posterior": "mirrored left-right, depth from the back",
            "rng": "numpy.random.default_rng([seed, split_index, attempt, stream]); "
                   "stream 0 latent patient, 1 readers, 2 images",
        },
        "readers": {
            "readers": [asdict(r) for r in READERS],
            "rule": "focal uptake seen when a remnant's CNR passes the reader's threshold, or the "
                    "oesophagus is taken for one; grade by the reader's ROI uptake: < 1% low, "
                    "1-2% moderate, > 2% high; nothing seen: absent",
            "consensus": "median grade of three; uptake_pct the mean of the three ROI values",
        },
        "grade_limits_pct": list(GRADE_LIMITS_PCT), "class_names": list(TASK.class_names),
    }
