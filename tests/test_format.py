"""Dataset format v1: round trip, fingerprints, atomic writes and the verifier's checks."""

from __future__ import annotations

import json
import os

import numpy as np
import pyarrow.parquet as pq
import pytest

from conftest import assert_modes_follow_umask, make_rows
from thyroid_bench.cli import main
from thyroid_bench.data import format as fmt
from thyroid_bench.errors import DatasetError, VerificationError
from thyroid_bench.data.fingerprint import split_fingerprint
from thyroid_bench.data.images import decode_image, encode_image
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.tasks import get_task

CLASS_NAMES = get_task("four-pattern").class_names


def _write(splits, tmp_path, **kw):
    return fmt.write_dataset("toy", "1.0.0", splits, home=tmp_path, card="# toy\n", rows_per_shard=7,
                             **kw)


def _rewrite_shard(path, split, mutate):
    """Apply ``mutate(dict_of_columns)`` to the first shard of ``split`` and write it back."""
    shard = sorted((path / "data").glob(f"{split}-*.parquet"))[0]
    table = pq.read_table(shard)
    cols = table.to_pydict()
    mutate(cols)
    pq.write_table(table.from_pydict(cols, schema=table.schema), shard)


def test_round_trip_pixels_labels_and_manifest(tiny_splits, tmp_path):
    path = _write(tiny_splits, tmp_path)
    assert path == tmp_path / "toy" / "1.0.0"
    manifest = fmt.read_manifest(path)
    assert manifest.splits["train"].rows == 20
    assert manifest.splits["train"].class_counts == {n: 5 for n in CLASS_NAMES}
    assert len(manifest.splits["train"].files) == 3  # 20 rows, 7 per shard
    for split, rows in tiny_splits.items():
        table = fmt.read_split(path, split)
        by_id = {r["case_id"]: r for r in rows}
        assert sorted(table["case_id"]) == sorted(by_id)
        for case_id, png, label in zip(table["case_id"], table["image"], table["label"]):
            np.testing.assert_array_equal(decode_image(png), by_id[case_id]["image"])
            assert label == by_id[case_id]["label"]


def test_two_datasets_of_one_version_do_not_share_the_hf_cache(tiny_splits, tmp_path):
    """`datasets` caches a local folder by its base name (the version) and a hash of the
    card's front matter: two datasets of one task and version must still load their own rows."""
    import datasets

    other = {s: [dict(r, case_id=f"b-{r['case_id']}", patient_id=f"b-{r['patient_id']}",
                      image=r["image"] + 1) for r in rows] for s, rows in tiny_splits.items()}
    a = fmt.write_dataset("hosp-a", "1.0.0", tiny_splits, home=tmp_path, card="# a\n")
    b = fmt.write_dataset("hosp-b", "1.0.0", other, home=tmp_path, card="# b\n")
    cache = str(tmp_path / "hf")
    ids_a = set(datasets.load_dataset(str(a), cache_dir=cache)["train"]["case_id"])
    ids_b = set(datasets.load_dataset(str(b), cache_dir=cache)["train"]["case_id"])
    assert ids_a == {r["case_id"] for r in tiny_splits["train"]}
    assert ids_b == {r["case_id"] for r in other["train"]}


def test_plain_hf_datasets_opens_it_with_features(tiny_splits, tmp_path):
    import datasets

    path = _write(tiny_splits, tmp_path)
    dd = datasets.load_dataset(str(path))
    assert set(dd) == {"train", "internal", "external"}
    assert dd["internal"].num_rows == 8
    assert dd["train"].features["label"].names == list(CLASS_NAMES)
    assert isinstance(dd["train"].features["image"], datasets.Image)
    first = dd["external"][0]
    original = {r["case_id"]: r["image"] for r in tiny_splits["external"]}[first["case_id"]]
    np.testing.assert_array_equal(np.asarray(first["image"]), original)


def test_package_loader_verifies(tiny_splits, tmp_path):
    from thyroid_bench import load_dataset

    path = _write(tiny_splits, tmp_path)
    assert load_dataset(path)["train"].num_rows == 20
    _rewrite_shard(path, "internal", lambda c: c["label"].__setitem__(0, (c["label"][0] + 1) % 4))
    with pytest.raises(VerificationError, match="internal"):
        load_dataset(path)


def test_fingerprint_ignores_file_bytes_but_sees_one_pixel(tiny_splits, tmp_path):
    a = _write(tiny_splits, tmp_path / "a")
    b = fmt.write_dataset("toy", "1.0.0", tiny_splits, home=tmp_path / "b", rows_per_shard=1000)
    assert fmt.read_manifest(a).fingerprint == fmt.read_manifest(b).fingerprint
    table = fmt.read_split(a, "train")
    before = split_fingerprint(table)
    # Re-encoding the PNGs at another compression level keeps the content fingerprint.
    from PIL import Image
    import io

    def reencode(png):
        buf = io.BytesIO()
        Image.open(io.BytesIO(png)).save(buf, format="PNG", compress_level=9)
        return buf.getvalue()

    recoded = table.assign(image=[reencode(p) for p in table["image"]])
    assert list(recoded["image"]) != list(table["image"])
    assert split_fingerprint(recoded) == before
    img = decode_image(table["image"][3]).copy()
    img[5, 5] += 1
    changed = table.copy()
    changed.at[3, "image"] = encode_image(img)
    assert split_fingerprint(changed) != before


def test_16bit_counts_round_trip_exactly():
    img = np.array([[0, 1, 255, 256], [4095, 4096, 65534, 65535]], dtype=np.uint16)
    np.testing.assert_array_equal(decode_image(encode_image(img)), img)
    with pytest.raises(ValueError, match="0-65535"):
        encode_image(np.array([[70000]]))


def test_interrupted_write_leaves_nothing_that_loads(tiny_splits, tmp_path, monkeypatch):
    real = fmt._write_shard
    calls = []

    def failing(table, path, task):
        calls.append(path.name)
        if path.name.startswith("internal"):
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C half-way
        return real(table, path, task)

    monkeypatch.setattr(fmt, "_write_shard", failing)
    with pytest.raises(KeyboardInterrupt):
        _write(tiny_splits, tmp_path)
    # train's 20 rows in shards of 7, then the first of internal's
    assert calls == [f"train-0000{k}-of-00003.parquet" for k in range(3)] + [
        "internal-00000-of-00002.parquet"]
    assert not (tmp_path / "toy" / "1.0.0").exists()
    # Nothing is left but the version's writer lock (data/lock.py), which lies beside it.
    assert [p.name for p in (tmp_path / "toy").iterdir()] in ([], [".1.0.0.lock"])
    with pytest.raises(DatasetError, match="no complete version"):
        fmt.resolve_dataset("toy", home=tmp_path)
    monkeypatch.setattr(fmt, "_write_shard", real)
    assert verify_dataset(_write(tiny_splits, tmp_path)).ok


def test_stale_temporary_folder_is_cleaned_and_never_resolved(tiny_splits, tmp_path):
    stale = tmp_path / "toy" / ".tmp-1.0.0-killed"
    (stale / "data").mkdir(parents=True)
    with pytest.raises(DatasetError):
        fmt.resolve_dataset("toy", home=tmp_path)
    _write(tiny_splits, tmp_path)
    assert not stale.exists()


def test_existing_version_needs_force(tiny_splits, tmp_path):
    _write(tiny_splits, tmp_path)
    with pytest.raises(DatasetError, match="already exists"):
        _write(tiny_splits, tmp_path)
    assert verify_dataset(_write(tiny_splits, tmp_path, force=True)).ok


def test_writer_rejects_leakage_and_bad_rows(tiny_splits, tmp_path):
    leaky = dict(tiny_splits)
    leaky["internal"] = [dict(r) for r in tiny_splits["internal"]]
    leaky["internal"][0]["patient_id"] = tiny_splits["train"][3]["patient_id"]
    with pytest.raises(VerificationError, match="patient_id .* both train and internal"):
        _write(leaky, tmp_path)
    assert not (tmp_path / "toy" / "1.0.0").exists()
    bad = dict(tiny_splits)
    bad["external"] = [dict(r) for r in tiny_splits["external"]]
    bad["external"][2]["label"] = 7
    with pytest.raises(DatasetError, match="split 'external', row 2 .* label 7"):
        _write(bad, tmp_path)
    with pytest.raises(DatasetError, match="semver"):
        fmt.write_dataset("toy", "v1", tiny_splits, home=tmp_path)


def test_verify_passes_clean_dataset(tiny_splits, tmp_path):
    report = verify_dataset(_write(tiny_splits, tmp_path))
    assert report.ok, report.problems
    assert report.rows == {"train": 20, "internal": 8, "external": 8}
    assert report.official is None  # not a pinned release


def test_verify_catches_planted_patient_leakage(tiny_splits, tmp_path):
    path = _write(tiny_splits, tmp_path)
    leaked = tiny_splits["train"][0]["patient_id"]
    _rewrite_shard(path, "external", lambda c: c["patient_id"].__setitem__(0, leaked))
    report = verify_dataset(path)
    assert not report.ok
    assert any(f"patient_id '{leaked}' is in both train and external" in p for p in report.problems)


def test_verify_catches_identical_image_in_two_splits(tmp_path):
    splits = {"train": make_rows("train", 10), "internal": make_rows("internal", 4, seed=1),
              "external": make_rows("external", 4, seed=2)}
    splits["internal"][1]["image"] = splits["train"][6]["image"].copy()
    splits["internal"][1]["label"] = splits["internal"][1]["label"]
    report = verify_dataset(fmt.write_dataset("toy", "1.0.0", splits, home=tmp_path))
    assert "1 identical image(s) in both train and internal" in report.problems


def test_verify_catches_wrong_counts(tiny_splits, tmp_path):
    path = _write(tiny_splits, tmp_path)
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["splits"]["train"]["class_counts"]["focal_increased"] += 1
    (path / "manifest.json").write_text(json.dumps(manifest))
    problems = verify_dataset(path).problems
    assert len(problems) == 1 and "split train: class counts" in problems[0]


def test_verify_catches_a_corrupted_shard(tiny_splits, tmp_path):
    path = _write(tiny_splits, tmp_path)
    shard = sorted((path / "data").glob("internal-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[: shard.stat().st_size // 2])
    report = verify_dataset(path)
    assert not report.ok
    assert any(shard.name in p and "corrupt or truncated" in p for p in report.problems)
    with pytest.raises(VerificationError, match=shard.name):
        fmt.load_dataset(path)


def test_verify_catches_an_undecodable_image_and_a_changed_pixel(tiny_splits, tmp_path):
    path = _write(tiny_splits, tmp_path)

    def break_png(cols):
        cols["image"][0] = {"bytes": cols["image"][0]["bytes"][:40], "path": None}

    _rewrite_shard(path, "train", break_png)
    assert any("does not decode" in p for p in verify_dataset(path).problems)

    path = _write(tiny_splits, tmp_path / "second")

    def bump_pixel(cols):
        img = decode_image(cols["image"][2]["bytes"]).copy()
        img[0, 0] += 1
        cols["image"][2] = {"bytes": encode_image(img), "path": None}
        cols["total_counts"][2] += 1

    _rewrite_shard(path, "external", bump_pixel)
    problems = verify_dataset(path).problems
    assert any("split external: content fingerprint" in p for p in problems)


def test_resolve_newest_version_and_name_at_version(tiny_splits, tmp_path):
    for v in ("1.0.0", "1.10.0", "1.2.0"):
        fmt.write_dataset("toy", v, tiny_splits, home=tmp_path)
    assert fmt.resolve_dataset("toy", home=tmp_path).name == "1.10.0"
    assert fmt.resolve_dataset("toy@1.2.0", home=tmp_path).name == "1.2.0"
    with pytest.raises(DatasetError, match="available: 1.0.0, 1.2.0, 1.10.0"):
        fmt.resolve_dataset("toy@2.0.0", home=tmp_path)
    with pytest.raises(DatasetError, match="thyroid-bench prepare"):
        fmt.resolve_dataset(None, home=tmp_path)


def test_cli_verify_and_info(tiny_splits, tmp_path, capsys):
    path = _write(tiny_splits, tmp_path)
    assert main(["verify", str(path)]) == 0
    assert "result    OK" in capsys.readouterr().out
    assert main(["info", "toy", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    row = next(line for line in out.splitlines() if line.startswith("train"))
    assert row.split()[-5:] == ["5", "5", "5", "5", "20"]
    manifest = json.loads((path / "manifest.json").read_text())
    manifest["splits"]["internal"]["rows"] = 9
    (path / "manifest.json").write_text(json.dumps(manifest))
    assert main(["verify", str(path)]) == 1
    assert "split internal: 8 rows, manifest says 9" in capsys.readouterr().out
    assert main(["verify", "nope", "--home", str(tmp_path)]) == 2
    assert "not found" in capsys.readouterr().err


# --------------------------------------------------------------------------- a task's extra columns
RESIDUAL = get_task("residual-tissue")


def _residual_splits() -> dict[str, list[dict]]:
    """Rows of residual-tissue: a posterior view (half the anterior's counts, mirrored) and an
    uptake; external row 0 is 'present, grade unknown' (-1), every 4th uptake not measured."""
    splits = {"train": make_rows("train", 10), "internal": make_rows("internal", 4, seed=1),
              "external": make_rows("external", 4, seed=2)}
    for rows in splits.values():
        for i, r in enumerate(rows):
            r["image_posterior"] = (r["image"][:, ::-1] // 2).astype(np.uint16)
            r["uptake_pct"] = None if i % 4 == 3 else 0.25 + 0.75 * r["label"]
    splits["external"][0]["label"] = -1
    return splits


def _write_residual(splits, tmp_path, **kw):
    return fmt.write_dataset("resid", "1.0.0", splits, task=RESIDUAL, home=tmp_path, **kw)


def test_extra_columns_round_trip_in_task_order_and_count_present(tmp_path):
    splits = _residual_splits()
    path = _write_residual(splits, tmp_path)
    manifest = fmt.read_manifest(path)
    assert manifest.splits["external"].class_counts == {"absent": 0, "low": 1, "moderate": 1,
                                                        "high": 1, "present": 1}
    assert "present" not in manifest.splits["train"].class_counts
    table = fmt.read_split(path, "external")
    assert list(table.columns) == list(RESIDUAL.columns)
    assert list(table.columns)[-2:] == ["image_posterior", "uptake_pct"]
    by_id = {r["case_id"]: r for r in splits["external"]}
    for _, row in table.iterrows():
        original = by_id[row["case_id"]]
        np.testing.assert_array_equal(decode_image(row["image_posterior"]), original["image_posterior"])
        if original["uptake_pct"] is None:
            assert np.isnan(row["uptake_pct"])
        else:
            assert row["uptake_pct"] == original["uptake_pct"]
    assert sorted(table["label"]) == [-1, 1, 2, 3]
    report = verify_dataset(path)
    assert report.ok, report.problems


def test_plain_hf_datasets_opens_both_image_columns(tmp_path):
    import datasets

    splits = _residual_splits()
    dd = datasets.load_dataset(str(_write_residual(splits, tmp_path)), cache_dir=str(tmp_path / "hf"))
    feats = dd["train"].features
    assert isinstance(feats["image_posterior"], datasets.Image)
    assert feats["uptake_pct"] == datasets.Value("float64")
    assert feats["label"].names == ["absent", "low", "moderate", "high"]
    by_id = {r["case_id"]: r for r in splits["external"]}
    for row in dd["external"]:
        original = by_id[row["case_id"]]
        np.testing.assert_array_equal(np.asarray(row["image"]), original["image"])
        np.testing.assert_array_equal(np.asarray(row["image_posterior"]), original["image_posterior"])
        assert row["label"] == original["label"]
        assert row["uptake_pct"] == original["uptake_pct"]
    card = (tmp_path / "resid" / "1.0.0" / "README.md").read_text()
    assert "  - name: image_posterior\n    dtype: image" in card
    assert "  - name: uptake_pct\n    dtype: float64" in card


def test_fingerprint_covers_extra_columns_but_not_their_file_bytes(tmp_path):
    path = _write_residual(_residual_splits(), tmp_path)
    table = fmt.read_split(path, "train")
    before = split_fingerprint(table, task=RESIDUAL)
    assert before == fmt.read_manifest(path).splits["train"].fingerprint
    with pytest.raises(ValueError, match="pass the dataset's task"):
        split_fingerprint(table)
    from PIL import Image
    import io

    def reencode(png):
        buf = io.BytesIO()
        Image.open(io.BytesIO(png)).save(buf, format="PNG", compress_level=9)
        return buf.getvalue()

    recoded = table.assign(image_posterior=[reencode(p) for p in table["image_posterior"]])
    assert split_fingerprint(recoded, task=RESIDUAL) == before
    img = decode_image(table["image_posterior"][2]).copy()
    img[1, 1] += 1
    changed = table.copy()
    changed.at[2, "image_posterior"] = encode_image(img)
    assert split_fingerprint(changed, task=RESIDUAL) != before
    nudged = table.copy()
    nudged.at[0, "uptake_pct"] = table.at[0, "uptake_pct"] + 1e-9
    assert split_fingerprint(nudged, task=RESIDUAL) != before
    # null and NaN are the same missing value
    missing = int(np.flatnonzero(table["uptake_pct"].isna())[0])
    as_none = table.astype({"uptake_pct": object})
    as_none.at[missing, "uptake_pct"] = None
    assert split_fingerprint(as_none, task=RESIDUAL) == before


@pytest.mark.parametrize("column, value, message", [
    ("image_posterior", np.zeros((16, 32), np.uint16), r"image_posterior must be a 2-D uint16 .* \(32, 32\)"),
    ("image_posterior", np.zeros((32, 32), np.float32), "image_posterior must be a 2-D uint16"),
    ("uptake_pct", -0.5, r"uptake_pct -0.5 must be a finite number from 0 to 100 \(a percentage\)"),
    ("uptake_pct", float("inf"), "uptake_pct inf must be a finite number"),
    ("uptake_pct", 1e308, "uptake_pct 1e\\+308 must be a finite number from 0 to 100"),
    ("uptake_pct", 100.5, "uptake_pct 100.5 must be a finite number from 0 to 100"),
    ("uptake_pct", "high", "uptake_pct 'high' is not a number"),
])
def test_writer_rejects_bad_extra_columns(tmp_path, column, value, message):
    splits = _residual_splits()
    splits["train"][4][column] = value
    with pytest.raises(DatasetError, match=r"split 'train', row 4 .*" + message):
        _write_residual(splits, tmp_path)
    del splits["train"][4][column]
    with pytest.raises(DatasetError, match=f"missing field.*{column}"):
        _write_residual(splits, tmp_path)
    assert not (tmp_path / "resid" / "1.0.0").exists()


def test_label_minus_one_only_for_a_task_with_detection(tiny_splits, tmp_path):
    tiny_splits["internal"][0]["label"] = -1
    with pytest.raises(DatasetError, match="label -1 .* task four-pattern has none"):
        _write(tiny_splits, tmp_path)
    splits = _residual_splits()
    splits["train"][0]["label"] = -2
    with pytest.raises(DatasetError, match="label -2 is not a class index 0-3"):
        _write_residual(splits, tmp_path)


def test_verify_checks_extra_columns(tmp_path):
    path = _write_residual(_residual_splits(), tmp_path)

    def bad_uptake(cols):
        cols["uptake_pct"][1] = -3.0

    _rewrite_shard(path, "internal", bad_uptake)
    problems = verify_dataset(path).problems
    assert any("split internal: uptake_pct not a finite number from 0 to 100" in p for p in problems)

    path = _write_residual(_residual_splits(), tmp_path / "percent")

    def impossible_uptake(cols):  # above 100% of the administered activity
        cols["uptake_pct"][0] = 1e308

    _rewrite_shard(path, "train", impossible_uptake)
    problems = verify_dataset(path).problems
    case = fmt.read_split(path, "train")["case_id"][0]
    assert f"split train: uptake_pct not a finite number from 0 to 100 (a percentage) (or null) " \
        f"for case(s) ['{case}']" in problems

    path = _write_residual(_residual_splits(), tmp_path / "second")

    def small_posterior(cols):
        cols["image_posterior"][0] = {"bytes": encode_image(np.ones((8, 8), np.uint16)), "path": None}

    _rewrite_shard(path, "train", small_posterior)
    problems = verify_dataset(path).problems
    assert any("image_posterior (8, 8) differs from image (32, 32)" in p for p in problems)
    assert any("split train: content fingerprint" in p for p in problems)


def test_info_shows_present_of_unknown_grade(tmp_path, capsys):
    _write_residual(_residual_splits(), tmp_path)
    assert main(["info", "resid", "--home", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    head = next(line for line in out.splitlines() if line.startswith("class"))
    assert head.split()[1:] == ["absent", "low", "moderate", "high", "present", "total"]
    row = next(line for line in out.splitlines() if line.startswith("external"))
    assert row.split()[-6:] == ["0", "1", "1", "1", "1", "4"]


@pytest.mark.parametrize("umask", [0o022, 0o077])
def test_dataset_files_and_folders_follow_the_umask(tiny_splits, tmp_path, umask):
    # Before: folders 0700 and files 0600 whatever the umask (temporary folders and files).
    old = os.umask(umask)
    try:
        path = _write(tiny_splits, tmp_path)
    finally:
        os.umask(old)
    assert_modes_follow_umask(path, umask)
