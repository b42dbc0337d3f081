"""DICOM ingestion for task residual-tissue: whole-body sweeps (dual-head files and separate
view files) and static neck views paired into two-view studies, the head-and-neck crop rule,
grade and presence-only labels, uptake_pct, accounting and no identifier in the output."""

from __future__ import annotations

import csv
import io
from pathlib import Path

import numpy as np
import pytest

from conftest import output_haystacks
from thyroid_bench.data.dicom.deid import Pseudonymizer
from thyroid_bench.data.dicom.ingest import list_archive, prepare_dicom, read_dicom_file
from thyroid_bench.data.dicom.labels_csv import read_labels_csv
from thyroid_bench.data.dicom.report import organiser_report_path
from thyroid_bench.data.dicom.wholebody import (
    BED_BELOW_FIELD_TOP_MM,
    MARGIN_DIVISOR,
    VERTEX_TO_BED_MM,
    WINDOW_OFFSET_MM,
    crop,
    head_and_neck_window,
)
from thyroid_bench.data.images import decode_image
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.shards import read_split
from thyroid_bench.data.synthetic.residual import CAMERAS
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import UNKNOWN_GRADE, get_task
from thyroid_bench.testing.dicom_writer import (
    CANARY_PREFIX,
    FILLER_CENTERS,
    filler_rows,
    sweep_phantom,
    write_archive,
)

SEED = 23
TASK = get_task("residual-tissue")
UPTAKE = {0: 0.2, 1: 0.6, 2: 1.5, 3: 3.25}


# --------------------------------------------------------------------------- the crop rule
@pytest.mark.parametrize("vertex", [0, 60, 200])
def test_crop_of_a_256_wide_sweep_starts_just_above_the_head(vertex):
    ant, post = sweep_phantom(1, vertex=vertex, remnant=30.0)
    window = head_and_neck_window([ant, post], 2.21)
    # The threshold is crossed in the top 1-3 cm of the skull (2.21 mm rows) ...
    assert vertex <= window.vertex <= vertex + 14
    # ... and the square of the image width starts the margin above it, inside the image.
    assert window.start == max(0, window.vertex - 256 // MARGIN_DIVISOR)
    assert window.start <= vertex and (window.side, window.columns) == (256, (0, 0))
    cut = crop(ant, window)
    assert cut.shape == (256, 256)
    np.testing.assert_array_equal(cut, ant[window.start:window.start + 256])
    # The thyroid-bed focus (26 cm below the vertex) is inside the crop, near its middle column.
    row, col = np.unravel_index(np.argmax(cut), cut.shape)
    assert abs(window.start + row - (vertex + 260 / 2.21)) < 10 and abs(col - 128) < 10


def test_a_512_wide_sweep_gives_a_native_256_window_at_the_offset_below_the_vertex():
    """A 512-wide sweep (1.105 mm rows) whose skull starts at row 100: 256 x 256 at native
    resolution, starting WINDOW_OFFSET_MM (111.5 mm, 101 rows) below the detected vertex,
    which lies about THRESHOLD_DEPTH_MM (20 mm, 18 rows) below the skull's top."""
    assert WINDOW_OFFSET_MM == pytest.approx(111.5)
    ant, post = sweep_phantom(2, rows=2048, cols=512, vertex=100, spacing_mm=1.105)
    window = head_and_neck_window([ant, post], 1.105)
    assert abs(window.vertex - (100 + 20 / 1.105)) <= 5
    assert window.start == window.vertex + 101 and window.side == 256
    expected = 100 + round((280.0 - 148.5) / 1.105)  # 131.5 mm below the skull's top: row 219
    assert abs(window.start - expected) <= 5
    # The body is centred: columns 128-383 of both views.
    assert all(abs(c - 128) <= 2 for c in window.columns)
    for k, view in enumerate((ant, post)):
        cut = crop(view, window, k)
        assert cut.shape == (256, 256) and cut.dtype == np.uint16
        c = window.columns[k]
        np.testing.assert_array_equal(cut, view[window.start:window.start + 256, c:c + 256])
    # Without a stated spacing a 512-wide sweep is taken as 540 mm wide (1.055 mm rows).
    assert head_and_neck_window([ant, post], float("nan")).start == \
        window.vertex + round(111.5 / (540 / 512))


def test_each_view_of_a_512_wide_sweep_is_centred_on_its_body():
    """A body 60 mm right of the image centre: the anterior window moves 54 columns right;
    the posterior view, mirrored as acquired, moves as far left; a window never leaves it."""
    ant, post = sweep_phantom(3, rows=2048, cols=512, vertex=100, spacing_mm=1.105, shift_mm=60.0)
    window = head_and_neck_window([ant, post[:, ::-1]], 1.105)
    assert abs(window.columns[0] - (128 + 60 / 1.105)) <= 2
    assert abs(window.columns[1] - (128 - 60 / 1.105)) <= 2
    far = sweep_phantom(3, rows=2048, cols=512, vertex=100, spacing_mm=1.105, shift_mm=200.0)
    assert head_and_neck_window(far, 1.105).columns == (256, 256)


def test_a_512_wide_sweep_puts_the_thyroid_bed_where_tsb_residual_does():
    """A sweep at tsb-residual's centre-1 pixel size with its bed VERTEX_TO_BED_MM below the
    skull's top: the bed lands at the row and column tsb-residual draws it on average."""
    cam = CAMERAS["center1"]
    assert BED_BELOW_FIELD_TOP_MM == pytest.approx(cam.bed_row_fraction * cam.fov_mm)
    spacing = cam.pixel_spacing_mm
    ant, post = sweep_phantom(4, rows=1024, cols=512, vertex=80, spacing_mm=spacing,
                              remnant=3000.0, bed_mm=VERTEX_TO_BED_MM)
    window = head_and_neck_window([ant, post], spacing)
    cut = crop(ant, window).astype(float)
    rows, cols = np.indices(cut.shape)
    hot = cut > 1000  # the focus only
    weight = cut[hot].sum()
    bed_row, bed_col = (rows * cut)[hot].sum() / weight, (cols * cut)[hot].sum() / weight
    # tsb-residual: bed_y_mm = (bed_row_fraction - 0.5) * fov_mm, pixel centres at (i + 0.5) * pix.
    expected_row = cam.bed_row_fraction * cam.fov_mm / spacing - 0.5  # 140.3
    assert abs(bed_row - expected_row) <= 4 and abs(bed_col - (cam.matrix / 2 - 0.5)) <= 2


def test_crop_rule_refuses_what_is_not_a_sweep():
    with pytest.raises(ValueError, match="wider than long"):
        head_and_neck_window([np.ones((64, 128), dtype=np.uint16)])
    with pytest.raises(ValueError, match="no vertex"):
        head_and_neck_window([np.full((256, 64), 3, dtype=np.uint16)])
    with pytest.raises(ValueError, match="differ in shape"):
        head_and_neck_window([np.ones((256, 64)), np.ones((256, 32))])


# --------------------------------------------------------------------------- labels CSV
def _csv(tmp_path, text):
    path = tmp_path / "labels.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_labels_csv_grades_presence_and_uptake(tmp_path):
    rows, _ = read_labels_csv(_csv(tmp_path, "path,grade,present,center,uptake_pct\n"
                                   "a.dcm,moderate,,c1,1.5\n"
                                   "b.dcm,0,no,c1,\n"
                                   "c.dcm,,Yes,c1,0.4\n"
                                   "d.dcm,,false,c1,0\n"), TASK)
    assert [(r.label, r.value) for r in rows] == [(2, 1.5), (0, None), (UNKNOWN_GRADE, 0.4), (0, 0.0)]
    rows, _ = read_labels_csv(_csv(tmp_path, "path,label,center\na.dcm,high,c1\n"), TASK)
    assert rows[0].label == 3 and rows[0].value is None


def test_labels_csv_faults_of_this_task_name_the_line(tmp_path):
    path = _csv(tmp_path, "path,grade,present,center,uptake_pct\n"
                "a.dcm,high,no,c1,3\n"      # 2: grade and presence disagree
                "b.dcm,,maybe,c1,\n"        # 3: unknown presence
                "c.dcm,,,c1,\n"             # 4: neither given
                "d.dcm,low,,c1,-1\n"        # 5: negative uptake
                "e.dcm,low,,c1,nan\n")      # 6: not finite
    with pytest.raises(DatasetError) as err:
        read_labels_csv(path, TASK)
    msg = str(err.value)
    assert "5 problem(s)" in msg
    for line, words in [(2, "disagree"), (3, "'maybe'"), (4, "neither grade nor present"),
                        (5, "uptake_pct '-1'"), (6, "uptake_pct 'nan'")]:
        assert f"line {line}: " in msg and words in msg, (line, msg)
    with pytest.raises(DatasetError, match="grade or present"):
        read_labels_csv(_csv(tmp_path, "path,center\na.dcm,c1\n"), TASK)
    with pytest.raises(DatasetError, match="not both"):
        read_labels_csv(_csv(tmp_path, "path,label,grade,center\na.dcm,1,1,c1\n"), TASK)


def test_labels_csv_uptake_is_a_plain_percentage_and_grades_read_as_printed(tmp_path):
    """uptake_pct is % of the administered activity: at most 100, written as a plain number
    (Python's float() would also take '1_0' as 10); a grade reads back as the card and the
    reports print it ('grade 2')."""
    path = _csv(tmp_path, "path,grade,center,uptake_pct\n"
                "a.dcm,high,c1,1e308\n"     # 2: finite but not a percentage
                "b.dcm,high,c1,100.5\n"     # 3: above 100%
                "c.dcm,low,c1,1_0\n"        # 4: not a plain number
                f"d.dcm,low,c1,{'9' * 500}\n")  # 5: cut in the message
    with pytest.raises(DatasetError) as err:
        read_labels_csv(path, TASK)
    msg = str(err.value)
    assert "4 problem(s)" in msg and len(msg) < 1500
    for line, raw in [(2, "'1e308'"), (3, "'100.5'"), (4, "'1_0'"), (5, "'" + "9" * 40 + "...'")]:
        assert f"line {line}: uptake_pct {raw} is not a finite number from 0 to 100" in msg, msg
    rows, _ = read_labels_csv(_csv(tmp_path, "path,grade,center,uptake_pct\n"
                                   "a.dcm,grade 2,c1,100\nb.dcm,Grade-0,c1,-0\n"
                                   "c.dcm,grade 3,c1,2.5e0\n"), TASK)
    assert [(r.label, r.value) for r in rows] == [(2, 100.0), (0, 0.0), (3, 2.5)]
    assert str(rows[1].value) == "0.0"  # not -0.0
    assert [TASK.parse_label(TASK.class_code(k)) for k in range(4)] == [0, 1, 2, 3]
    with pytest.raises(ValueError, match="'grade III' is not a class"):
        get_task("four-pattern").parse_label("grade III")  # 'grade' is the ordinal word only


# --------------------------------------------------------------------------- an archive
def _static(rng, n=128, level=3.0):
    return rng.poisson(level, (n, n)).astype(np.uint16)


def _rows():
    """22 studies of 34 files, and 3 files that are refused."""
    rng = np.random.default_rng(SEED)
    rows = []
    for p in range(10):  # centre 1: dual-head whole-body sweeps, both views in one file
        ant, post = sweep_phantom(100 + p, vertex=20 + 9 * p, remnant=8.0 * (p % 4))
        rows.append({"image": ant, "frames": [(ant, "anterior"), (post, "posterior")],
                     "whole_body": True, "label": p % 4, "center": "center1",
                     "patient": f"dh-{p}", "sex": "FM"[p % 2], "age": 30 + p,
                     "uptake_pct": None if p == 9 else UPTAKE[p % 4], "kind": "dual"})
    for p in range(6):  # centre 1: anterior and posterior sweeps in two files of one study
        ant, post = sweep_phantom(200 + p, vertex=40 + 11 * p)
        for view, img in (("posterior", post), ("anterior", ant)):
            rows.append({"image": img, "view": view, "whole_body": True, "label": (p + 1) % 4,
                         "center": "center1", "patient": f"two-{p}", "study": f"two-{p}",
                         "uptake_pct": UPTAKE[(p + 1) % 4], "labelled": view == "anterior" or p == 0,
                         "kind": f"two-{view}"})
    for p in range(6):  # centre 2: static neck views used as they are
        for view in ("anterior", "posterior"):
            rows.append({"image": _static(rng), "view": view, "label": p % 4, "center": "center2",
                         "patient": f"neck-{p}", "study": f"neck-{p}", "pixel_spacing_mm": 1.8,
                         "uptake_pct": UPTAKE[p % 4], "labelled": view == "anterior",
                         "kind": f"static-{view}"})
    rows += [
        {"image": _static(rng), "view": "anterior", "label": 1, "center": "center1",
         "patient": "lonely", "study": "lonely", "uptake_pct": 0.5,
         "bad": "its study has no posterior view"},
        {"image": _static(rng), "label": 0, "center": "center1", "patient": "ct",
         "overrides": {"Modality": "CT"}, "bad": "modality CT, not NM"},
        {"image": _static(rng), "view": "posterior", "label": 0, "center": "center1",
         "patient": "unlabelled", "labelled": False, "bad": "no label row"},
    ]
    return rows


def _write(tmp, label_column="grade"):
    rows = _rows()
    if label_column == "present":  # only detection known: a present study's grade is not
        rows = [dict(r, label=UNKNOWN_GRADE) if r["label"] else r for r in rows]
    return write_archive(tmp / "archive", rows, seed=SEED, task=TASK, label_column=label_column,
                         label_style="mixed"), rows


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("residual")
    archive, rows = _write(tmp)
    key_file = tmp / "secret" / "pseudonym.key"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="residual-test",
                         version="1.0.0", key_file=key_file, external_centers=["center2"],
                         home=tmp / "home", workers=1, task="residual-tissue")
    return {"tmp": tmp, "archive": archive, "rows": rows, "path": path, "key_file": key_file}


def _table(path: Path):
    import pandas as pd

    frames = [read_split(path, s).assign(split=s) for s in ("train", "internal", "external")]
    return pd.concat(frames, ignore_index=True)


def _rejected(path: Path, key_file: Path) -> dict[str, str]:
    """Real path -> reason, from the organiser's report beside the key (the dataset's
    rejected.csv names files by pseudonym only)."""
    report = organiser_report_path(key_file, path.parent.name, path.name)
    return {r["file"]: r["reason"] for r in csv.DictReader(io.StringIO(report.read_text()))}


def test_every_file_is_ingested_or_rejected_with_its_reason(built):
    files = list_archive(built["archive"].root)
    table, rejected = _table(built["path"]), _rejected(built["path"], built["key_file"])
    assert len(files) == 37 and len(table) == 22
    expected = {s.path: r["bad"] for s, r in zip(built["archive"].studies, built["rows"]) if "bad" in r}
    assert {f: next(w for w in expected.values() if w in why) for f, why in rejected.items()} == expected
    ingest = read_manifest(built["path"]).provenance["ingest"]
    assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"], ingest["studies"]) == \
        (37, 34, 3, 22)
    assert ingest["ingested"] + ingest["rejected"] == len(files)


def test_views_are_paired_cropped_and_stored_as_acquired(built):
    pseud = Pseudonymizer(built["key_file"].read_bytes())
    table = _table(built["path"]).set_index("case_id")
    written = list(zip(built["archive"].studies, built["rows"]))
    checked = set()
    for k, (s, r) in enumerate(written):
        if r.get("kind") == "dual":
            ant, post = r["frames"][0][0], r["frames"][1][0]
        elif r.get("kind") in ("two-anterior", "static-anterior"):
            ant, post = r["image"], written[k - 1][1]["image"] if r["kind"] == "two-anterior" \
                else written[k + 1][1]["image"]
        else:
            continue
        row = table.loc[pseud.case(s.uids[2])]
        if r.get("whole_body"):
            window = head_and_neck_window([ant, post], 2.21)
            ant, post = crop(ant, window, 0), crop(post, window, 1)
            assert window.start <= 20 + 11 * 9  # every phantom's skull top is below row 119
        np.testing.assert_array_equal(decode_image(row["image"]), ant)
        np.testing.assert_array_equal(decode_image(row["image_posterior"]), post)  # not mirrored
        assert row["label"] == r["label"] and row["center"] == r["center"]
        assert row["matrix"] == ant.shape[0] == (256 if r.get("whole_body") else 128)
        assert row["total_counts"] == int(ant.sum())
        assert row["pixel_spacing_mm"] == pytest.approx(r.get("pixel_spacing_mm", 2.21))
        expected = r["uptake_pct"]
        assert (np.isnan(row["uptake_pct"]) if expected is None else row["uptake_pct"] == expected)
        assert row["patient_id"] == pseud.patient(s.center, s.identity.issuer, s.identity.patient_id)
        checked.add(row.name)
    assert len(checked) == len(table) == 22
    assert set(table.loc[table["split"] == "external", "center"]) == {"center2"}
    assert (table.loc[table["split"] == "external", "matrix"] == 128).all()


def test_dataset_verifies_and_counts_grades(built):
    report = verify_dataset(built["path"])
    assert report.ok, report.render()
    manifest = read_manifest(built["path"])
    counts = {s: manifest.splits[s].class_counts for s in ("train", "internal", "external")}
    total = {name: sum(c.get(name, 0) for c in counts.values()) for name in TASK.class_names}
    labels = [r["label"] for r in built["rows"]  # one per study: its anterior file's
              if r.get("kind") in ("dual", "two-anterior", "static-anterior")]
    assert total == {name: labels.count(k) for k, name in enumerate(TASK.class_names)}
    assert manifest.provenance["labels_csv"]["grades_known"] is True




def test_no_identifier_or_canary_anywhere_in_the_output(built):
    hay = [h.lower() for h in output_haystacks(built["path"])]
    planted = {p for p in built["archive"].planted() if len(p) >= 4}
    assert len(planted) > 150
    assert sorted(p for p in planted if any(p.lower().encode() in h for h in hay)) == []
    assert not any(CANARY_PREFIX.lower().encode() in h for h in hay)
    assert any(b"center2" in h for h in hay)  # the search finds what is there


def test_presence_only_labels_skip_grades_and_say_so(tmp_path, capsys):
    """Through the command line: ``prepare --source dicom --task residual-tissue``."""
    from thyroid_bench.cli.main import main

    archive, rows = _write(tmp_path, label_column="present")
    assert main(["prepare", "--source", "dicom", "--task", "residual-tissue",
                 "--dicom-dir", str(archive.root), "--labels", str(archive.labels_csv),
                 "--name", "presence", "--version", "1.0.0", "--key-file", str(tmp_path / "k.key"),
                 "--external-center", "center2", "--home", str(tmp_path / "home"),
                 "--workers", "1"]) == 0
    path = tmp_path / "home" / "presence" / "1.0.0"
    out = capsys.readouterr().out
    assert "37 files seen = 34 ingested + 3 rejected" in out and "22 studies" in out
    assert "grade metrics" in out and "skipped" in out
    assert "grade metrics (accuracy, quadratic kappa" in (path / "README.md").read_text()
    table = _table(path)
    assert sorted(set(table["label"])) == [UNKNOWN_GRADE, 0]
    assert int((table["label"] == 0).sum()) == 6  # grade 0 of the graded archive: absent
    manifest = read_manifest(path)
    assert manifest.provenance["labels_csv"]["grades_known"] is False
    n_present = int((table["label"] == UNKNOWN_GRADE).sum())
    assert sum(manifest.splits[s].class_counts.get("present", 0) for s in manifest.splits) == n_present
    assert verify_dataset(path).ok


def test_the_four_pattern_task_still_refuses_whole_body_images(built):
    s, r = next((s, r) for s, r in zip(built["archive"].studies, built["rows"]) if r.get("kind") == "dual")
    res = read_dicom_file(built["archive"].root / s.path, s.path)
    assert not res["ok"] and res["reason"].startswith("Image Type WHOLE BODY")
    res = read_dicom_file(built["archive"].root / s.path, s.path, views=True)
    assert res["ok"] and set(res["views"]) == {"anterior", "posterior"} and res["whole_body"]
    np.testing.assert_array_equal(res["views"]["posterior"], r["frames"][1][0])


def test_two_rows_labelling_one_study_differently_is_an_error(built, tmp_path):
    lines = list(csv.reader(built["archive"].labels_csv.open()))
    header, body = lines[0], lines[1:]
    study = next(s for s, r in zip(built["archive"].studies, built["rows"])
                 if r.get("kind") == "two-posterior")
    body = [row if row[0] != study.path else [row[0], "high", *row[2:]] for row in body]
    bad = tmp_path / "bad.csv"
    with open(bad, "w", newline="") as fh:
        csv.writer(fh).writerows([header, *body])
    with pytest.raises(DatasetError, match="label two files of one study"):
        prepare_dicom(dicom_dir=built["archive"].root, labels=bad, name="bad", version="1.0.0",
                      key_file=built["key_file"], home=tmp_path / "home", workers=1,
                      task="residual-tissue")


def test_the_card_describes_the_two_views(built):
    card = (built["path"] / "README.md").read_text()
    assert "## Two views per study" in card and "22 studies from 34 files" in card
    assert "Presence-only" not in card


def test_awkward_archives_account_for_every_file_with_a_reason(tmp_path):
    """Three views, views of different shapes, a sweep wider than long, a posterior-only
    study, a study whose files name two patients: each file ingested or rejected, no
    traceback, the reason in rejected.csv."""
    rng = np.random.default_rng(5)
    ant, post = sweep_phantom(9, rows=512, cols=128, vertex=30)

    def pair(study, images, **kw):
        return [dict({"image": img, "view": view, "label": 1, "center": "center1",
                      "patient": study, "study": study, "labelled": view == "anterior"}, **kw)
                for img, view in zip(images, ("anterior", "posterior", "anterior"))]

    good = [f for p in range(4) for f in pair(f"ok{p}", [_static(rng, 32), _static(rng, 32)],
                                              label=p, center=("center1", "center2")[p % 2])]
    awkward = {
        "three": pair("three", [_static(rng, 32), _static(rng, 32), _static(rng, 32)]),
        "shapes": pair("shapes", [_static(rng, 32), _static(rng, 16)]),
        "sweep shapes": pair("sweep", [ant, post[:400]], whole_body=True),
        "wide": [{"image": ant.T.copy(), "frames": [(ant.T.copy(), "anterior"), (post.T.copy(), "posterior")],
                  "whole_body": True, "label": 1, "center": "center1", "patient": "wide"}],
        "posterior only": [{"image": _static(rng, 32), "view": "posterior", "label": 2,
                            "center": "center1", "patient": "back", "study": "back"}],
        "two patients": [dict(r, patient=f"pt-{r['view']}")
                         for r in pair("mixed", [_static(rng, 32), _static(rng, 32)])],
    }
    fill = filler_rows(TASK)  # two-view studies enough for every split and fold
    rows = good + [r for group in awkward.values() for r in group] + fill
    archive = write_archive(tmp_path / "archive", rows, seed=SEED, task=TASK, label_column="grade")
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="awkward",
                         version="1.0.0", key_file=tmp_path / "k.key",
                         external_centers=["center2", FILLER_CENTERS[1]],
                         home=tmp_path / "home", workers=1, task="residual-tissue")
    rejected = _rejected(path, tmp_path / "k.key")
    reasons = {s.path: rejected.get(s.path) for s in archive.studies}
    by_group, k = {}, len(good)
    for name, group in awkward.items():
        by_group[name] = [reasons[s.path] for s in archive.studies[k:k + len(group)]]
        k += len(group)
    assert by_group["three"][:2] == [None, None] and by_group["three"][2].startswith("not used")
    assert by_group["shapes"] == ["anterior (32, 32) and posterior (16, 16) views differ in shape"] * 2
    assert all("the views of one sweep differ in shape" in r for r in by_group["sweep shapes"])
    assert by_group["wide"] == ["whole-body matrix 128x512 is wider than long (a sweep runs along "
                                "the rows)"]
    assert by_group["posterior only"] == ["its study has no anterior view (both views are needed)"]
    assert all("name different patients" in r for r in by_group["two patients"])
    ingest = read_manifest(path).provenance["ingest"]
    assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"], ingest["studies"]) == \
        (len(rows), 10 + len(fill), len(rows) - 10 - len(fill), 5 + len(fill) // 2)
    assert len(_table(path)) == 5 + len(fill) // 2 and verify_dataset(path).ok
