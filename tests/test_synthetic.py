"""Tests of the synthetic reference cohort: counts, determinism, physics, readers, population."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections import Counter

import numpy as np
import pytest

from thyroid_bench.data.synthetic import generator as S

ROW_KEYS = {"case_id", "patient_id", "image", "label", "center", "fold", "matrix",
            "pixel_spacing_mm", "total_counts", "acquisition_s", "sex", "age"}
TINY = {"train": (3, 3, 2, 2), "internal": (2, 1, 1, 2), "external": (1, 2, 2, 1)}


@pytest.fixture(scope="module")
def tiny_cohort():
    return S.generate_cohort(123, counts=TINY, progress=False)


def test_table1_counts_add_up_to_the_papers_3389_images():
    assert sum(sum(v) for v in S.TABLE1_COUNTS.values()) == 3389
    assert S.TABLE1_COUNTS["external"] == (120, 49, 13, 120)


def test_exact_class_counts_per_split(tiny_cohort):
    for split, rows in tiny_cohort.items():
        got = Counter(r["label"] for r in rows)
        assert [got.get(k, 0) for k in range(4)] == list(TINY[split])


def test_full_external_split_has_table1_counts():
    # centre 2, 302 images: the whole Table 1 split, exact by consensus label
    rows = S.generate_split("external", progress=False)
    got = Counter(r["label"] for r in rows)
    assert tuple(got[k] for k in range(4)) == S.TABLE1_COUNTS["external"]
    assert {r["center"] for r in rows} == {"center2"}


def test_rows_have_the_format_v1_columns_and_consistent_metadata(tiny_cohort):
    for split, rows in tiny_cohort.items():
        acq = S.ACQUISITIONS[S.SPLIT_CENTER[split]]
        for r in rows:
            assert set(r) == ROW_KEYS
            img = r["image"]
            assert img.dtype == np.uint16 and img.shape == (acq.matrix, acq.matrix)
            assert r["matrix"] == acq.matrix
            assert r["pixel_spacing_mm"] == pytest.approx(280.0 / acq.matrix)
            assert r["total_counts"] == int(img.sum(dtype=np.int64))
            # preset-time acquisition: total within +-5 SD of the target (cv 5% plus Poisson)
            assert abs(r["total_counts"] / acq.total_counts - 1) < 5 * acq.count_cv
            assert r["acquisition_s"] == acq.acquisition_s
            assert r["sex"] in ("F", "M") and 18 <= r["age"] <= 90
            assert r["fold"] in ((0, 1, 2, 3, 4) if split == "train" else (-1,))
    assert tiny_cohort["internal"][0]["image"].shape == (256, 256)
    assert tiny_cohort["external"][0]["image"].shape == (128, 128)


def test_ids_unique_and_patients_never_shared_between_splits(tiny_cohort):
    cases = [r["case_id"] for rows in tiny_cohort.values() for r in rows]
    assert len(set(cases)) == len(cases)
    patients = {s: {r["patient_id"] for r in rows} for s, rows in tiny_cohort.items()}
    assert sum(len(p) for p in patients.values()) == len(cases)
    assert not (patients["train"] & patients["internal"] or patients["train"] & patients["external"]
                or patients["internal"] & patients["external"])
    assert S.case_id(123, "train", 0) == tiny_cohort["train"][0]["case_id"]


def test_train_folds_are_stratified_by_label():
    rows = S.generate_split("train", 5, counts=(10, 10, 5, 5), progress=False)
    folds = Counter(r["fold"] for r in rows)
    assert sorted(folds) == [0, 1, 2, 3, 4] and set(folds.values()) == {6}
    for k, n in enumerate((10, 10, 5, 5)):
        per_fold = Counter(r["fold"] for r in rows if r["label"] == k)
        assert max(per_fold.values()) - min(per_fold.get(f, 0) for f in range(5)) <= 1
        assert sum(per_fold.values()) == n


def test_rows_are_shuffled_not_class_sorted():
    labels = [r["label"] for r in S.generate_split("internal", 7, counts=(4, 4, 4, 4), progress=False)]
    assert labels != sorted(labels)
    assert labels != sorted(labels, reverse=True)


def test_same_seed_same_pixels_and_labels_other_seed_differs():
    a = S.generate_split("internal", 11, counts=(2, 2, 1, 1), progress=False)
    b = S.generate_split("internal", 11, counts=(2, 2, 1, 1), progress=False)
    c = S.generate_split("internal", 12, counts=(2, 2, 1, 1), progress=False)
    assert [r["case_id"] for r in a] == [r["case_id"] for r in b]
    assert [r["label"] for r in a] == [r["label"] for r in b]
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(a, b))
    assert [r["case_id"] for r in a] != [r["case_id"] for r in c]
    assert not any(np.array_equal(x["image"], y["image"]) for x, y in zip(a, c))


def test_rendering_on_several_processes_gives_the_same_pixels():
    # 40 images: three chunks of 16, so two worker processes each render some.
    one = S.generate_split("internal", 11, counts=(10, 10, 10, 10), progress=False, workers=1)
    two = S.generate_split("internal", 11, counts=(10, 10, 10, 10), progress=False, workers=2)
    assert [r["case_id"] for r in one] == [r["case_id"] for r in two]
    assert all(np.array_equal(x["image"], y["image"]) for x, y in zip(one, two, strict=True))
    assert len({r["image"].tobytes() for r in two}) == 40


def test_acquisition_resolution_matches_its_datasheet_figure():
    for acq in S.ACQUISITIONS.values():
        assert acq.fwhm_mm(100.0) == pytest.approx(acq.system_fwhm_mm_at_100mm)
        assert acq.fwhm_mm(0.0) == pytest.approx(math.hypot(acq.intrinsic_fwhm_mm,
                                                            acq.collimator_fwhm_mm_at_face))
        assert acq.fwhm_mm(50) < acq.fwhm_mm(100) < acq.fwhm_mm(150)
    assert S.ACQUISITIONS["center1"].fwhm_mm(100) == pytest.approx(7.4)
    assert S.ACQUISITIONS["center1"].pixel_spacing_mm == pytest.approx(1.09375)
    assert S.ACQUISITIONS["center2"].pixel_spacing_mm == pytest.approx(2.1875)


def _point_source_only(center: str) -> S.LatentPatient:
    """A patient whose only activity is a small marker at the thyroid's distance."""
    p = S.sample_patient(np.random.default_rng(3), center, 0)
    zero = lambda b: dataclasses.replace(b, peak=0.0)  # noqa: E731
    return dataclasses.replace(
        p, uptake=0.0, nodules=(), parotids=tuple(map(zero, p.parotids)),
        submandibulars=tuple(map(zero, p.submandibulars)), extras=(),
        background=0.0, head_background=0.0, trunk_background=0.0,
        mediastinum=zero(p.mediastinum),
        marker=S.Blob(0.55, -0.55, 0.3, 0.3, 0.0, 1000.0, "gauss"),
    )


@pytest.mark.parametrize("center", ["center1", "center2"])
def test_point_source_is_blurred_by_the_system_fwhm_at_its_distance(center):
    p = _point_source_only(center)
    acq = dataclasses.replace(S.ACQUISITIONS[center], total_counts=400_000, count_cv=0.0)
    img = S.render(p, acq, np.random.default_rng(0)).astype(float)
    px = acq.pixel_spacing_mm
    axis = (np.arange(acq.matrix) + 0.5) * px - 140.0
    w = img / img.sum()
    mx, my = (w.sum(0) * axis).sum(), (w.sum(1) * axis).sum()
    var_x = (w.sum(0) * (axis - mx) ** 2).sum()
    # expected: system blur + the marker's own size + the pixel's box (px^2 / 12; the
    # fine 1.09 mm grid's box adds again under centre 2's 2x2 binning)
    sigma_sys = acq.fwhm_mm(p.thyroid_distance_mm) / (2 * math.sqrt(2 * math.log(2)))
    expected = sigma_sys ** 2 + 0.3 ** 2 + px ** 2 / 12 + S.FINE_PIXEL_MM ** 2 / 12
    assert var_x == pytest.approx(expected, rel=0.12)
    assert (mx, my) == pytest.approx((0.55, -0.55), abs=0.3)


def test_counts_are_poisson_variance_equals_mean():
    p = S.sample_patient(np.random.default_rng(8), "center1", 1)
    acq = S.ACQUISITIONS["center1"]
    stack = np.stack([S.render(p, acq, np.random.default_rng(i)) for i in range(40)]).astype(float)
    top = stack[:, :110, :]  # head and salivary glands: no thyroid texture there
    mean, var = top.mean(0), top.var(0, ddof=1)
    sel = mean > 3
    assert sel.sum() > 200
    assert var[sel].mean() / mean[sel].mean() == pytest.approx(1.0, abs=0.1)
    assert not np.array_equal(stack[0], stack[1])


def _ellipse_mask(x, y, hw, hl, angle_deg, acq):
    axis = (np.arange(acq.matrix) + 0.5) * acq.pixel_spacing_mm - 140.0
    gx, gy = np.meshgrid(axis, axis)
    t = math.radians(angle_deg)
    p = math.cos(t) * (gx - x) + math.sin(t) * (gy - y)
    q = -math.sin(t) * (gx - x) + math.cos(t) * (gy - y)
    return (p / hw) ** 2 + (q / hl) ** 2 <= 1.0


def _measure(cls: int, n: int = 20):
    """Thyroid/parotid count ratio, thyroid peak/mean and smoothed CV, from rendered images."""
    from scipy.ndimage import uniform_filter

    acq = S.ACQUISITIONS["center1"]
    out = []
    for i in range(n):
        p = S.sample_patient(np.random.default_rng([99, cls, i]), "center1", cls)
        img = S.render(p, acq, np.random.default_rng([98, cls, i])).astype(float)
        thy = np.zeros(img.shape, bool)
        for lb in p.lobes:
            thy |= _ellipse_mask(lb.x_mm, lb.y_mm, 0.8 * lb.half_width_mm, 0.8 * lb.half_length_mm,
                                 lb.angle_deg, acq)
        par = np.zeros(img.shape, bool)
        for b in p.parotids:
            par |= _ellipse_mask(b.x_mm, b.y_mm, 0.8 * b.half_width_mm, 0.8 * b.half_length_mm,
                                 b.angle_deg, acq)
        smooth = uniform_filter(img, 5)
        out.append((img[thy].mean() / img[par].mean(), smooth[thy].max() / img[thy].mean(),
                    smooth[thy].std() / smooth[thy].mean()))
    return np.array(out)


def test_classes_differ_as_their_definitions_say():
    m = {k: _measure(k) for k in range(4)}
    med = {k: np.median(v, axis=0) for k, v in m.items()}
    # I: thyroid well above the salivary glands; II: below them
    assert med[0][0] > 2.0 and med[1][0] < 0.9 and med[0][0] > 4 * med[1][0]
    assert np.mean(m[0][:, 0] > m[1][:, 0].max()) > 0.9
    # III: one hot focus, the rest suppressed -> peak far above the gland's mean
    assert med[2][1] > 1.3 * med[0][1]
    # IV: heterogeneous -> smoothed uptake varies more within the gland than in I
    assert med[3][2] > 1.2 * med[0][2]


def test_readers_disagree_sometimes_and_consensus_mostly_matches_intent():
    rng_all = [np.random.default_rng([5, i]) for i in range(400)]
    unanimous = off_intent = 0
    for i, rng in enumerate(rng_all):
        p = S.sample_patient(rng, "center1", i % 4)
        label, readers = S.read_consensus(p, rng)
        assert len(readers) == 3 and label in readers
        unanimous += len(set(readers)) == 1
        off_intent += label != p.intended_class
    assert 0.6 < unanimous / 400 < 0.98  # borderline cases exist
    assert 0.01 < off_intent / 400 < 0.15  # no classifier can reach 100%


def test_three_way_split_goes_to_the_senior_reader(monkeypatch):
    labels = iter([2, 0, 3, 1, 1, 0])
    monkeypatch.setattr(S, "_read", lambda reader, f, rng: next(labels))
    p = S.sample_patient(np.random.default_rng(0), "center1", 0)
    assert S.read_consensus(p, np.random.default_rng(0)) == (2, [2, 0, 3])
    assert S.read_consensus(p, np.random.default_rng(0)) == (1, [1, 1, 0])


def test_a_clear_hot_nodule_with_suppressed_gland_reads_focal_and_no_uptake_reads_decreased():
    p = S.sample_patient(np.random.default_rng(1), "center1", 2)
    hot = dataclasses.replace(p, uptake=0.02, texture=0.0,
                              nodules=(dataclasses.replace(p.nodules[0], diameter_mm=30.0, uptake=5.0),))
    assert S.read_consensus(hot, np.random.default_rng(0))[0] == 2
    flat = dataclasses.replace(p, uptake=0.05, texture=0.0, nodules=())
    assert S.read_consensus(flat, np.random.default_rng(0))[0] == 1
    graves = dataclasses.replace(p, uptake=5.0, texture=0.0, nodules=())
    assert S.read_consensus(graves, np.random.default_rng(0))[0] == 0


@pytest.mark.parametrize("center,female,age", [("center1", 0.97, 41.0), ("center2", 0.71, 45.0)])
def test_sex_and_age_follow_the_centre(center, female, age):
    ps = [S.sample_patient(np.random.default_rng([17, i]), center, i % 4) for i in range(500)]
    f = np.mean([p.sex == "F" for p in ps])
    ages = np.array([p.age for p in ps])
    assert abs(f - female) < 3.5 * math.sqrt(female * (1 - female) / 500) + 0.005
    assert abs(ages.mean() - age) < 3.5 * 14 / math.sqrt(500) + 0.5
    assert 11 < ages.std() < 16 and ages.min() >= 18 and ages.max() <= 90


def test_pattern_table_has_one_spec_per_class_of_the_task():
    assert len(S.PATTERNS) == S.TASK.num_classes == 4
    assert tuple(p.name for p in S.PATTERNS) == S.TASK.class_names
    assert all(isinstance(p, S.PatternSpec) for p in S.PATTERNS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        S.PATTERNS[0].pyramidal_probability = 1.0  # type: ignore[misc]
    # the per-class rules of the paper's patterns
    assert isinstance(S.PATTERNS[2].nodules, S.ToxicAdenoma)
    assert isinstance(S.PATTERNS[3].nodules, S.Multinodular)
    assert [p.asymmetry_sd for p in S.PATTERNS] == [0.06, 0.06, 0.06, 0.15]


def test_the_pattern_table_drives_the_gland(monkeypatch):
    # a table entry with fixed draws: its values appear in the patient as given
    fixed = S.PatternSpec(
        name="fixed", enlargement=S.Uniform(0.5, 0.5), asymmetry_sd=0.0,
        uptake=S.Mixture(parts=(S.Uniform(2.0, 2.0), S.Uniform(2.0, 2.0)), bounds=(0.5,)),
        texture=S.Texture(0.07, 0.07), pyramidal_probability=1.0,
        nodules=S.Multinodular(count=(3, 4), hot_probability=1.0, hot_relative=S.Uniform(2.5, 2.5),
                               cold_relative=S.Uniform(0.2, 0.2),
                               site=S.NoduleSite(S.Uniform(0.1, 0.1), 0.0, S.Uniform(10.0, 10.0))),
    )
    monkeypatch.setattr(S, "PATTERNS", (fixed,))
    p = S.sample_patient(np.random.default_rng(4), "center1", 0)
    assert p.uptake == 2.0 and p.texture == 0.07 and p.pyramidal is not None
    assert sorted(nd.uptake for nd in p.nodules) == [0.4, 5.0, 5.0]  # hot, cold, hot x uptake 2
    assert {nd.diameter_mm for nd in p.nodules} == {10.0}
    # enlargement 0.5, no asymmetry: both lobes 1.5 x the drawn base thickness (13-20 mm x body)
    assert p.lobes[0].thickness_mm == p.lobes[1].thickness_mm
    assert 13.0 * 1.5 <= p.lobes[0].thickness_mm / (1.0 if p.sex == "F" else 1.08) <= 20.0 * 1.5
    with pytest.raises(ValueError, match="intended_class must be 0-0"):
        S.sample_patient(np.random.default_rng(4), "center1", 1)


def test_a_toxic_adenoma_expands_its_lobe_to_hold_the_nodule():
    for i in range(30):
        p = S.sample_patient(np.random.default_rng([6, i]), "center1", 2)
        adenoma = p.nodules[0]
        lobe = min(p.lobes, key=lambda lb: math.hypot(lb.x_mm - adenoma.x_mm, lb.y_mm - adenoma.y_mm))
        assert lobe.half_width_mm >= 0.45 * adenoma.diameter_mm - 1e-9
        assert lobe.half_length_mm >= 0.65 * adenoma.diameter_mm - 1e-9
        assert lobe.thickness_mm >= 0.6 * adenoma.diameter_mm - 1e-9
        assert 12.0 <= adenoma.diameter_mm <= 45.0
        hot = adenoma.uptake if p.uptake < S.SUPPRESSED_UPTAKE else adenoma.uptake / p.uptake
        assert (2.5 <= hot <= 7.0) if p.uptake < S.SUPPRESSED_UPTAKE else (1.3 <= hot <= 3.0)


def _plain(x):
    """A latent patient as JSON-able values, floats to 9 significant digits."""
    if dataclasses.is_dataclass(x):
        return {f.name: _plain(getattr(x, f.name)) for f in dataclasses.fields(x)}
    if isinstance(x, (tuple, list)):
        return [_plain(v) for v in x]
    if isinstance(x, float):
        return f"{x:.9g}"
    return x


def test_latent_patients_and_readers_are_those_of_release_1_0_0():
    # Digest of 100 latent patients and their readers' labels, computed with the generator as
    # it was before the pattern table replaced its per-class branches: the random draws keep
    # their order and parameters, so tsb-synthetic 1.0.0 keeps its fingerprint.
    h = hashlib.sha256()
    for k in range(4):
        for i in range(25):
            rng = np.random.default_rng([2021, k, i])
            p = S.sample_patient(rng, ("center1", "center2")[i % 2], k)
            label, readers = S.read_consensus(p, rng)
            h.update(json.dumps([_plain(p), label, readers]).encode())
    assert h.hexdigest() == "6164ef5930086f7b04dff5e169512f2ff54aba3e87a66f9cbb442f56a28336ab"


def test_bad_arguments_raise_clear_errors():
    with pytest.raises(ValueError, match="unknown split"):
        S.generate_split("test", counts=(1, 1, 1, 1), progress=False)
    with pytest.raises(ValueError, match="4 non-negative integers"):
        S.generate_split("train", counts=(1, 1, 1), progress=False)
    with pytest.raises(ValueError, match="non-negative"):
        S.generate_split("train", counts=(1, -1, 1, 1), progress=False)
    with pytest.raises(ValueError, match="unknown splits"):
        S.generate_cohort(counts={"validation": (1, 1, 1, 1)}, progress=False)
    with pytest.raises(ValueError, match="unknown centre"):
        S.sample_patient(np.random.default_rng(0), "center3", 0)


def test_provenance_is_json_and_describes_the_generator():
    prov = json.loads(json.dumps(S.provenance(42)))
    assert prov["seed"] == 42 and prov["name"] == "tsb-synthetic" and prov["synthetic"] is True
    assert prov["acquisitions"]["center2"]["matrix"] == 128
    assert prov["acquisitions"]["center1"]["fwhm_mm_at"]["100"] == pytest.approx(7.4)
    assert [r["name"] for r in prov["readers"]["readers"]] == [r.name for r in S.READERS]
