"""The synthetic cohort tsb-residual (task residual-tissue): counts, determinism, physics,
readers, the format round trip and `prepare`."""

from __future__ import annotations

import hashlib
import math
from dataclasses import replace

import numpy as np
import pytest

from thyroid_bench.cli import main
from thyroid_bench.data.format import read_manifest, read_split
from thyroid_bench.data.images import decode_image
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.synthetic import residual as R
from thyroid_bench.data.synthetic.prepare import cohort_for_task, prepare_synthetic
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.tasks import SPLITS

MINI = {"train": (5, 3, 3, 3), "internal": (2, 1, 1, 1), "external": (2, 1, 1, 1)}


@pytest.fixture(scope="module")
def mini(tmp_path_factory):
    """A scaled-down tsb-residual built by `prepare` (the full one takes about 25 s)."""
    home = tmp_path_factory.mktemp("residual")
    return prepare_synthetic(home=home, dataset="tsb-residual", counts=MINI, progress=False,
                             workers=1, preview=home / "preview.png")


@pytest.fixture(scope="module")
def official_sample():
    """The official cohort's accepted latent patients, labels and uptakes (no images)."""
    return {s: R._sample_split(s, R.OFFICIAL_SEED, R.COUNTS[s]) for s in SPLITS}


def test_counts_are_the_issues_table_and_mirror_the_curated_subset():
    assert R.COUNTS == {"train": (584, 221, 166, 165), "internal": (146, 55, 42, 41),
                        "external": (182, 69, 52, 52)}
    assert [sum(c) for c in R.COUNTS.values()] == [1136, 284, 355]
    absent = sum(c[0] for c in R.COUNTS.values())
    present = sum(sum(c[1:]) for c in R.COUNTS.values())
    assert (absent, present) == (912, 863)  # the curated subset of Lai et al.: 912 / 863


def test_official_sampling_fills_every_quota_by_consensus(official_sample):
    for split, accepted in official_sample.items():
        labels = np.array([a[2] for a in accepted])
        assert tuple(np.bincount(labels, minlength=4)) == R.COUNTS[split]
        assert {a[1].center for a in accepted} == {R.SPLIT_CENTER[split]}


def test_official_latent_cohort_is_that_of_release_1_0_0(official_sample):
    """The labels and uptakes behind the pinned fingerprint: a change here changes the
    official dataset (then rebuild, re-pin, bump the version)."""
    h = hashlib.sha256()
    for split in SPLITS:
        for j, _patient, label, uptake in official_sample[split]:
            h.update(f"{split}:{j}:{label}:{uptake:.2f}\n".encode())
    assert h.hexdigest()[:16] == "6d8d1443f8b47f0e"


def test_same_seed_same_pixels_other_seed_differs():
    counts = (2, 1, 1, 1)
    a = R.generate_split("internal", 5, counts=counts, progress=False)
    b = R.generate_split("internal", 5, counts=counts, progress=False)
    c = R.generate_split("internal", 6, counts=counts, progress=False)
    for ra, rb in zip(a, b, strict=True):
        assert ra["case_id"] == rb["case_id"] and ra["label"] == rb["label"]
        assert ra["uptake_pct"] == rb["uptake_pct"]
        np.testing.assert_array_equal(ra["image"], rb["image"])
        np.testing.assert_array_equal(ra["image_posterior"], rb["image_posterior"])
    assert any(not np.array_equal(ra["image"], rc["image"]) for ra, rc in zip(a, c))


def test_rendering_on_two_processes_gives_the_same_pixels():
    counts = (8, 4, 4, 4)  # 20 studies: more than one chunk, so the pool is used
    one = R.generate_split("external", 3, counts=counts, progress=False, workers=1)
    two = R.generate_split("external", 3, counts=counts, progress=False, workers=2)
    for a, b in zip(one, two, strict=True):
        np.testing.assert_array_equal(a["image"], b["image"])
        np.testing.assert_array_equal(a["image_posterior"], b["image_posterior"])


def test_rows_and_folds():
    rows = R.generate_split("train", 1, counts=(10, 5, 5, 5), progress=False)
    labels = np.array([r["label"] for r in rows])
    folds = np.array([r["fold"] for r in rows])
    assert tuple(np.bincount(labels, minlength=4)) == (10, 5, 5, 5)
    assert sorted(set(folds)) == [0, 1, 2, 3, 4]
    assert list(np.bincount(folds[labels == 0], minlength=5)) == [2, 2, 2, 2, 2]  # stratified
    assert list(labels) != sorted(labels)  # shuffled
    r = rows[0]
    assert r["image"].dtype == np.uint16 and r["image"].shape == (256, 256)
    assert r["image_posterior"].shape == r["image"].shape
    assert r["total_counts"] == int(r["image"].sum())
    assert r["pixel_spacing_mm"] == pytest.approx(270.0 / 256)
    ext = R.generate_split("external", 1, counts=(1, 1, 0, 0), progress=False)
    assert {x["center"] for x in ext} == {"center2"} and {x["fold"] for x in ext} == {-1}
    assert ext[0]["pixel_spacing_mm"] == pytest.approx(320.0 / 256)


def _one_remnant(depth_mm: float, pct: float = 3.0) -> R.LatentPatient:
    """A patient with a single remnant at ``depth_mm`` and nothing else but the blood pool."""
    base = R.sample_patient(np.random.default_rng(0), "center1", 3)
    focus = R.Source("remnant", 0.0, 0.0, 4.0, 4.0, pct, depth_mm, base.neck_mm)
    return replace(base, remnants=(focus,), others=(), neck_mm=115.0, bed_x_mm=0.0, bed_y_mm=0.0)


def _bed_counts(p: R.LatentPatient, images) -> tuple[int, int]:
    cam = R.CAMERAS[p.center]
    return tuple(int(img[R.bed_window(p, cam, v)].sum())
                 for img, v in zip(images, ("anterior", "posterior")))


def test_posterior_is_dimmer_where_the_source_is_near_the_front():
    cam = R.CAMERAS["center1"]
    shallow = _one_remnant(20.0)
    ant, post = _bed_counts(shallow, R.render_views(shallow, cam, np.random.default_rng(1)))
    # remnant counts scale as exp(-mu * depth): 20 mm in front, 95 mm from the back
    expected = math.exp(-R.MU_PER_MM * 20) / math.exp(-R.MU_PER_MM * 95)
    assert ant / post == pytest.approx(expected, rel=0.15)
    deep = _one_remnant(95.0)
    ant, post = _bed_counts(deep, R.render_views(deep, cam, np.random.default_rng(1)))
    assert post > 1.5 * ant


def test_posterior_view_is_mirrored_left_right():
    cam = R.CAMERAS["center2"]
    p = _one_remnant(57.5)  # mid-depth: the same counts front and back
    p = replace(p, remnants=(replace(p.remnants[0], x_mm=40.0),))
    ant, post = R.render_views(p, cam, np.random.default_rng(2))
    half = cam.matrix // 2
    assert ant[:, half:].sum() > 2 * ant[:, :half].sum()
    assert post[:, :half].sum() > 2 * post[:, half:].sum()


def test_intense_foci_draw_star_spokes_of_septal_penetration():
    cam = R.CAMERAS["center1"]
    star = R._star(cam)
    assert star.sum() == pytest.approx(1.0)
    c = star.shape[0] // 2
    k = int(20 / cam.pixel_spacing_mm)  # 20 mm out: along a spoke (0 deg) vs between (30 deg)
    between = star[c + round(k * math.sin(math.radians(30))), c + round(k * math.cos(math.radians(30)))]
    assert star[c, c + k] > 20 * between
    np.testing.assert_allclose(star, star[::-1, ::-1])  # each line runs both ways


def test_collimator_blur_grows_with_distance():
    for cam in R.CAMERAS.values():
        assert cam.fwhm_mm(100.0) == pytest.approx(cam.system_fwhm_mm_at_100mm)
        assert cam.fwhm_mm(0.0) < cam.fwhm_mm(50.0) < cam.fwhm_mm(150.0)


def test_high_grades_have_more_thyroid_bed_counts_than_absent():
    accepted = R._sample_split("internal", 11, (6, 0, 0, 6))
    cam = R.CAMERAS["center1"]
    bed = {0: [], 3: []}
    for j, p, label, _ in accepted:
        ant, _post = R.render_views(p, cam, np.random.default_rng(j))
        bed[label].append(ant[R.bed_window(p, cam)].sum() / ant.sum())
    assert min(bed[3]) > max(bed[0])


def test_uptake_agrees_with_the_grade_for_most_cases_but_not_all(official_sample):
    rows = [(label, uptake) for split in SPLITS for _, _, label, uptake in official_sample[split]]
    present = [(g, u) for g, u in rows if g > 0]
    agree = [R.grade_of(u) == g for g, u in present]
    assert 0.85 < np.mean(agree) < 1.0
    absent = np.array([u for g, u in rows if g == 0])
    assert np.median(absent) < 0.05
    grades = np.array([g for g, _ in present])
    uptakes = np.array([u for _, u in present])
    assert np.median(uptakes[grades == 1]) < 1 < np.median(uptakes[grades == 2]) < 2 < \
        np.median(uptakes[grades == 3])


def test_readers_disagree_and_the_oesophagus_is_sometimes_taken_for_a_remnant(official_sample):
    patients = [p for split in SPLITS for _, p, _, _ in official_sample[split]][:600]
    rng = np.random.default_rng(0)
    reads = [R.read_consensus(p, rng)[2] for p in patients]
    assert 0.02 < np.mean([len(set(r)) > 1 for r in reads]) < 0.5
    mimics = [p for p, r in zip(patients, reads) if not p.remnants and max(r) > 0]
    assert mimics and all(any(s.kind == "oesophagus" for s in p.others) for p in mimics)


def test_scaled_down_build_verifies_and_opens_with_plain_datasets(mini, tmp_path):
    import datasets

    report = verify_dataset(mini)
    assert report.ok, report.problems
    assert report.official is None  # a scaled-down variant is not the pinned release
    manifest = read_manifest(mini)
    assert manifest.task == "residual-tissue" and manifest.synthetic
    assert manifest.splits["train"].class_counts == dict(zip(("absent", "low", "moderate", "high"),
                                                             MINI["train"]))
    # its own cache: `datasets` caches a local folder under its base name ("1.0.0") and a hash
    # of the card's features and file patterns, so another 1.0.0 folder of the same task
    # loaded earlier in this process would be served instead
    dd = datasets.load_dataset(str(mini), cache_dir=str(tmp_path / "hf"))
    assert {s: dd[s].num_rows for s in SPLITS} == {s: sum(c) for s, c in MINI.items()}
    assert isinstance(dd["train"].features["image_posterior"], datasets.Image)
    table = read_split(mini, "external").set_index("case_id")
    for row in dd["external"]:
        np.testing.assert_array_equal(np.asarray(row["image_posterior"]),
                                      decode_image(table.loc[row["case_id"], "image_posterior"]))
        assert row["uptake_pct"] == table.loc[row["case_id"], "uptake_pct"]
    assert (mini.parent.parent / "preview.png").stat().st_size > 10_000


def test_scaled_down_build_is_reproducible(mini, tmp_path):
    again = prepare_synthetic(home=tmp_path, dataset="tsb-residual", counts=MINI, progress=False,
                              workers=1)
    assert read_manifest(again).fingerprint == read_manifest(mini).fingerprint


def test_card_says_what_is_simulated_and_what_is_known(mini):
    card = (mini / "README.md").read_text()
    assert "**This is a phantom study.**" in card
    for fact in ("108 Military Central Hospital", "1,775", "863", "912", "Millennium MG",
                 "256 x 1024 at 15 min/m", "10.54939/1859-1043.j.mst.88.2023.131-138",
                 "10.3389/fonc.2021.762643", "sensitivity 84.85%", "below 1% neck",
                 "  - name: image_posterior\n    dtype: image"):
        assert fact in card, fact


def test_pinned_official_fingerprint_and_task_wiring():
    assert pinned_fingerprint("tsb-residual", "1.0.0") is not None
    assert cohort_for_task("residual-tissue") == "tsb-residual"
    assert cohort_for_task("four-pattern") == "tsb-synthetic"


def test_cli_refuses_a_cohort_of_another_task(capsys):
    assert main(["prepare", "--task", "residual-tissue", "--dataset", "tsb-synthetic"]) == 2
    assert "serves task four-pattern, not residual-tissue" in capsys.readouterr().err
    assert main(["prepare", "--dataset", "tsb-nope"]) == 2
    assert "not a synthetic cohort" in capsys.readouterr().err
