"""The dataset writer and ``verify`` in memory that does not grow with the dataset (issue 13):
lazy split sources (data/split_rows.py), the streaming fingerprint (data/fingerprint.py
``SplitHasher``) and the batch-by-batch image scan of ``verify`` (data/split_scan.py)."""

from __future__ import annotations

import errno
import re
import tracemalloc

import numpy as np
import pytest

from conftest import make_rows
from test_format import _residual_splits, _rewrite_shard
from thyroid_bench.data import fingerprint as fp
from thyroid_bench.data import format as fmt
from thyroid_bench.data.fingerprint import SplitHasher, case_order, split_fingerprint
from thyroid_bench.data.images import encode_image
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.split_rows import SplitRows, as_split_rows
from thyroid_bench.data.synthetic import generator, residual
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import DatasetError, SpillError, size_text
from thyroid_bench.tasks import get_task

FOUR, RESIDUAL = get_task("four-pattern"), get_task("residual-tissue")


def _lazy(rows, log=None):
    """``rows`` as a lazy source: images made as they are drawn, ``log`` counting the draws."""
    images = ("image", "image_posterior")

    def draw():
        for row in rows:
            if log is not None:
                log.append(row["case_id"])
            yield {c: row[c] for c in images if c in row}

    return SplitRows([{k: v for k, v in r.items() if k not in images} for r in rows], draw())


def _shards(path):
    return {f.name: f.read_bytes() for f in sorted((path / "data").glob("*.parquet"))}


def _shuffled(splits, seed=0):
    """The rows of every split in an order that is not case-id order."""
    rng = np.random.default_rng(seed)
    return {s: [rows[i] for i in rng.permutation(len(rows))] for s, rows in splits.items()}


@pytest.mark.parametrize("task", ["four-pattern", "residual-tissue"])
def test_lazy_sources_write_the_very_shards_a_list_writes(tmp_path, task):
    splits = _residual_splits() if task == "residual-tissue" else {
        "train": make_rows("train", 23), "internal": make_rows("internal", 9, seed=1),
        "external": make_rows("external", 8, seed=2, matrix=16)}
    splits = _shuffled(splits)  # rows not in case-id order: the fingerprint spills
    kw = dict(task=task, rows_per_shard=7, private_labels=["external"])
    listed = fmt.write_dataset("a", "1.0.0", splits, home=tmp_path, labels_file=tmp_path / "a.csv", **kw)
    lazy = fmt.write_dataset("a", "1.0.0", {s: _lazy(r) for s, r in splits.items()}, home=tmp_path / "l",
                             labels_file=tmp_path / "l.csv", **kw)
    assert _shards(lazy) == _shards(listed) and len(_shards(listed)) > 3
    assert read_manifest(lazy).fingerprint == read_manifest(listed).fingerprint
    assert (tmp_path / "l.csv").read_bytes() == (tmp_path / "a.csv").read_bytes()
    report = verify_dataset(lazy)
    assert report.ok, report.problems
    assert report.fingerprint == read_manifest(lazy).fingerprint


def test_hasher_gives_split_fingerprint_in_any_order():
    task = RESIDUAL
    rows = _shuffled(_residual_splits(), seed=3)["train"]
    table = as_split_rows(rows, ("image", "image_posterior"))
    import pandas as pd

    frame = pd.DataFrame([{**m, "image": encode_image(im["image"]),
                           "image_posterior": encode_image(im["image_posterior"])}
                          for m, im in zip(table.meta, table.images)])[list(task.columns)]
    expected = split_fingerprint(frame, task=task)
    with SplitHasher(task, ordered=False) as spilled:
        for m, im in zip(table.meta, table.images):
            spilled.add(m, im)
        assert spilled.hexdigest() == expected
    order = case_order(m["case_id"] for m in table.meta)
    assert list(order) != list(range(len(order)))
    with SplitHasher(task, ordered=True) as direct:
        for i in order:
            direct.add(table.meta[i], table.images[i])
        assert direct.hexdigest() == expected
    with SplitHasher(task, ordered=True) as direct, pytest.raises(ValueError, match="case-id order"):
        for m, im in zip(table.meta, table.images):
            direct.add(m, im)


def test_hasher_spills_png_bytes_not_pixels_and_gives_the_same_fingerprint():
    task = RESIDUAL
    table = as_split_rows(_shuffled(_residual_splits(), seed=4)["train"], ("image", "image_posterior"))
    pngs = [{c: encode_image(im[c]) for c in im} for im in table.images]
    with SplitHasher(task, ordered=False) as raw:
        for m, im in zip(table.meta, table.images):
            raw.add(m, im)
        raw_bytes, expected = raw._ends[-1], raw.hexdigest()
    with SplitHasher(task, ordered=False) as encoded:
        for m, im, png in zip(table.meta, table.images, pngs):
            encoded.add(m, im, png)
        spilled = encoded._ends[-1]
        assert encoded.hexdigest() == expected
    # What is spilled: per row the metadata and each PNG, each after its 8-byte length.
    meta = sum(len(fp._canonical_meta(m, fp.meta_columns(task), encoded._floats)) for m in table.meta)
    assert spilled == meta + sum(len(b) for p in pngs for b in p.values()) + 8 * 3 * len(pngs)
    assert spilled < raw_bytes


class _FullDisk:
    def write(self, data):
        raise OSError(errno.ENOSPC, "No space left on device")

    def close(self):
        pass


def test_no_room_to_spill_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    monkeypatch.setattr(fp.tempfile, "TemporaryFile", lambda **kw: _FullDisk())
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setattr(fp.tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again
    rows = make_rows("train", 5)
    meta = [{k: v for k, v in r.items() if k != "image"} for r in rows]
    with SplitHasher(FOUR, ordered=False, rows=1000) as hasher, pytest.raises(SpillError) as err:
        hasher.add(meta[0], {"image": rows[0]["image"]})
    row = len(fp._canonical_meta(meta[0], fp.meta_columns(FOUR), hasher._floats)) + 4 + \
        rows[0]["image"].size * 2 + len(f"|{rows[0]['image'].shape[0]}x{rows[0]['image'].shape[1]}|")
    message = str(err.value)
    assert f"aside in {tmp_path} (No space left on device)" in message
    assert f"about {size_text(row * 1000)} of free space" in message
    assert message.endswith("set TMPDIR to a disk with room (verify, run and submit spill there)")
    assert size_text(2_345_000_000) == "2.3 GB" and size_text(41_200_000) == "41 MB"


def test_verify_raises_no_room_to_spill_rather_than_a_finding(tmp_path, monkeypatch):
    splits = _shuffled({"train": make_rows("train", 23), "internal": make_rows("internal", 9, seed=1),
                        "external": make_rows("external", 8, seed=2)})
    path = fmt.write_dataset("a", "1.0.0", splits, home=tmp_path)
    monkeypatch.setattr(fp.tempfile, "TemporaryFile", lambda **kw: _FullDisk())
    with pytest.raises(SpillError, match=r"could not put a split's rows .* set TMPDIR"):
        verify_dataset(path)


def test_the_writer_draws_one_shard_ahead_at_most(tmp_path, monkeypatch):
    rows = make_rows("train", 300)
    drawn, ahead = [], []
    real = fmt._write_shard

    def watch(table, path, task):
        ahead.append(len(drawn) - sum(ahead_rows))  # images drawn but not yet written
        ahead_rows.append(len(table))
        return real(table, path, task)

    ahead_rows: list[int] = []
    monkeypatch.setattr(fmt, "_write_shard", watch)
    splits = {"train": _lazy(rows, drawn), "internal": make_rows("internal", 8, seed=1),
              "external": make_rows("external", 8, seed=2)}
    fmt.write_dataset("b", "1.0.0", splits, home=tmp_path, rows_per_shard=20)
    assert len(drawn) == 300 and len(ahead) == 15 + 2
    assert max(ahead) <= 20 + fmt._ENCODE_BATCH  # one shard and one batch, not the split


def test_an_error_in_a_lazy_source_leaves_nothing(tmp_path):
    def broken():
        for i, row in enumerate(make_rows("train", 150)):
            if i == 130:
                raise RuntimeError("the archive went away")
            yield {"image": row["image"]}

    rows = make_rows("train", 150)
    meta = [{k: v for k, v in r.items() if k != "image"} for r in rows]
    splits = {"train": SplitRows(meta, broken()), "internal": make_rows("internal", 8, seed=1),
              "external": make_rows("external", 8, seed=2)}
    with pytest.raises(DatasetError, match=re.escape(
            "split 'train': the images of rows 128-149 could not be drawn from the split's source "
            "(RuntimeError: the archive went away); nothing was written")):
        fmt.write_dataset("c", "1.0.0", splits, home=tmp_path, rows_per_shard=20)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [".1.0.0.lock"]

    def gone():  # an OSError of the source is the source's, not "could not write dataset"
        raise FileNotFoundError(2, "No such file or directory", "/archive/a.dcm")
        yield

    splits["train"] = SplitRows(meta, gone())
    with pytest.raises(DatasetError, match=re.escape(
            "split 'train': the images of rows 0-63 could not be drawn from the split's source "
            "(FileNotFoundError: [Errno 2] No such file or directory: '/archive/a.dcm')")):
        fmt.write_dataset("c", "1.0.0", splits, home=tmp_path, rows_per_shard=20)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [".1.0.0.lock"]
    bad = [dict(r) for r in rows]
    bad[140]["label"] = 9
    splits["train"] = _lazy(bad)
    with pytest.raises(DatasetError, match=r"split 'train', row 140 .* label 9"):
        fmt.write_dataset("c", "1.0.0", splits, home=tmp_path, rows_per_shard=20)
    assert [p.name for p in (tmp_path / "c").iterdir()] == [".1.0.0.lock"]


def test_images_must_match_the_rows(tmp_path):
    rows = make_rows("train", 10)
    meta = [{k: v for k, v in r.items() if k != "image"} for r in rows]
    short = {"train": SplitRows(meta, iter([{"image": r["image"]} for r in rows[:7]])),
             "internal": make_rows("internal", 8, seed=1), "external": make_rows("external", 8, seed=2)}
    with pytest.raises(DatasetError, match="split 'train': 10 rows but images for only 7"):
        fmt.write_dataset("d", "1.0.0", short, home=tmp_path)
    long = dict(short, train=SplitRows(meta, iter([{"image": r["image"]} for r in rows * 2])))
    with pytest.raises(DatasetError, match="split 'train': more images than its 10 rows"):
        fmt.write_dataset("d", "1.0.0", long, home=tmp_path)
    assert not (tmp_path / "d" / "1.0.0").exists()


@pytest.mark.parametrize("module", [generator, residual])
def test_synthetic_split_rows_are_generate_split(module):
    counts = (2, 1, 1, 1)
    whole = module.generate_split("internal", 5, counts=counts, progress=False)
    lazy = module.split_rows("internal", 5, counts=counts, progress=False, workers=2)
    assert len(lazy) == len(whole) == 5
    for row, meta, images in zip(whole, lazy.meta, lazy.images, strict=True):
        assert {k: v for k, v in meta.items() if k != "total_counts"} == \
            {k: v for k, v in row.items() if k not in ("image", "image_posterior", "total_counts")}
        for column, image in images.items():
            assert np.array_equal(image, row[column])
        assert row["total_counts"] == int(row["image"].sum())


# --------------------------------------------------------------------------- memory
def _big_rows(split: str, n: int, seed: int) -> list[dict]:
    return make_rows(split, n, seed=seed, matrix=128)


def _traced_peak(fn) -> int:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_writer_and_verify_hold_a_shard_not_the_dataset(tmp_path):
    train = _big_rows("train", 400, 0)  # 400 images of 128 x 128: 13 MB of counts
    total = sum(r["image"].nbytes for r in train)
    splits = {"train": _lazy(train), "internal": make_rows("internal", 8, seed=1),
              "external": make_rows("external", 8, seed=2)}
    path = tmp_path / "e" / "1.0.0"
    written = _traced_peak(lambda: fmt.write_dataset("e", "1.0.0", splits, root=path,
                                                     rows_per_shard=50))
    checked = _traced_peak(lambda: verify_dataset(path))
    # Python-side peaks (numpy's arrays are traced; pyarrow's buffers are not): well under the
    # images' counts (13 MB), which the in-memory writer and verifier each held whole.
    assert written < total / 3, (written, total)
    assert checked < total / 3, (checked, total)
    assert verify_dataset(path).ok


# --------------------------------------------------------------------------- verify's findings
def test_verify_reports_image_problems_in_the_whole_split_order(tmp_path):
    """``image`` problems first; an extra image's shape only when every ``image`` decoded; the
    extra column's decoding stops at its first failure."""
    path = fmt.write_dataset("r", "1.0.0", _residual_splits(), task=RESIDUAL, home=tmp_path)

    def damage(cols):
        cols["image_posterior"][1] = {"bytes": encode_image(np.ones((8, 8), np.uint16)), "path": None}
        cols["image_posterior"][4] = {"bytes": b"not a png", "path": None}
        cols["image_posterior"][6] = {"bytes": b"nor this", "path": None}
        cols["total_counts"][2] += 1

    _rewrite_shard(path, "train", damage)
    problems = verify_dataset(path).problems
    train = [p for p in problems if p.startswith("split train")]
    assert len(train) == 3, problems
    assert "pixel sum" in train[0] and "total_counts" in train[0]
    assert "image_posterior (8, 8) differs from image (32, 32)" in train[1]
    assert "image_posterior of case" in train[2] and "does not decode" in train[2]
    assert not any("content fingerprint" in p for p in problems)  # not computed: a view is lost

    def lose_an_image(cols):
        cols["image"][5] = {"bytes": b"gone", "path": None}

    _rewrite_shard(path, "train", lose_an_image)
    train = [p for p in verify_dataset(path).problems if p.startswith("split train")]
    assert len(train) == 3, train  # the shape is no longer compared
    assert "pixel sum" in train[0]
    assert "image of case" in train[1] and "does not decode" in train[1]
    assert "image_posterior of case" in train[2]
