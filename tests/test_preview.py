"""Tests of the preview grid: a PNG of the expected size with one panel per class and example."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from thyroid_bench.data.synthetic import generator as S
from thyroid_bench.data.preview import CELL_INCH, DPI, preview_size_px, render_preview


@pytest.fixture(scope="module")
def rows():
    return {"internal": S.generate_split("internal", 3, counts=(2, 2, 2, 2), progress=False),
            "external": S.generate_split("external", 3, counts=(2, 2, 2, 1), progress=False)}


def _panels_with_ink(png, per_cell, num_classes=4):
    """Count the grid cells whose centre region holds dark (high-count) pixels."""
    a = np.asarray(Image.open(png).convert("L"), dtype=float)
    w, h = preview_size_px(per_cell, num_classes)
    cell = CELL_INCH * DPI
    left, top = w - 2 * per_cell * cell, h - num_classes * cell
    inked = 0
    for r in range(num_classes):
        for c in range(2 * per_cell):
            y0, x0 = int(top + r * cell), int(left + c * cell)
            panel = a[y0 + 10:y0 + int(cell) - 10, x0 + 10:x0 + int(cell) - 10]
            inked += panel.min() < 100  # the hottest pixel of a scaled image is black
    return inked


def test_preview_from_rows_has_the_grid_size_and_one_image_per_cell(rows, tmp_path):
    out = render_preview(rows, tmp_path / "p.png", per_cell=2)
    assert out == tmp_path / "p.png" and out.stat().st_size > 10_000
    with Image.open(out) as im:
        assert im.format == "PNG"
        assert im.size == preview_size_px(2, 4) == (round((1.5 + 4 * 1.6) * 100), round((0.9 + 4 * 1.6) * 100))
    # 4 classes x 2 centres x 2 examples, except centre 2 has one type IV image
    assert _panels_with_ink(out, 2) == 15


def test_preview_grid_grows_with_per_cell(rows, tmp_path):
    small = render_preview(rows, tmp_path / "a.png", per_cell=1)
    with Image.open(small) as im:
        assert im.size == preview_size_px(1, 4)
        assert im.size[0] < preview_size_px(2, 4)[0] and im.size[1] == preview_size_px(2, 4)[1]
    assert _panels_with_ink(small, 1) == 8


def test_preview_from_a_dataset_folder(rows, tmp_path):
    from thyroid_bench.data.format import write_dataset

    # five train studies: one in each fold (a dataset needs that: thyroid_bench/data/sizes.py)
    splits = {"train": S.generate_split("train", 3, counts=(2, 1, 1, 1), progress=False), **rows}
    path = write_dataset("tsb-preview-test", "1.0.0", splits, home=tmp_path, synthetic=True)
    out = render_preview(None, tmp_path / "d.png", dataset_path=path, per_cell=1)
    with Image.open(out) as im:
        assert im.size == preview_size_px(1, 4)
    assert _panels_with_ink(out, 1) == 8


def test_preview_rows_are_the_classes_of_the_task(rows, tmp_path):
    from thyroid_bench.tasks.task import MainScore, Reference, Target, Task, TaskClass

    two = Task(name="toy-preview", description="toy", reference=Reference(citation="toy"),
               modality="planar", main_score=MainScore(metric="macro_f1", split="external"),
               target=Target(kind="binary", classes=(TaskClass(index=0, name="a", reading="a"),
                                                     TaskClass(index=1, name="b", reading="b"))))
    out = render_preview(rows, tmp_path / "t.png", per_cell=1, task=two)
    with Image.open(out) as im:
        assert im.size == preview_size_px(1, 2) == (round((1.5 + 2 * 1.6) * 100),
                                                     round((0.9 + 2 * 1.6) * 100))
    assert _panels_with_ink(out, 1, num_classes=2) == 4  # classes 0 and 1, both centres


def test_preview_needs_an_output_and_a_positive_per_cell(rows, tmp_path):
    with pytest.raises(ValueError, match="out"):
        render_preview(rows)
    with pytest.raises(ValueError, match="per_cell"):
        render_preview(rows, tmp_path / "x.png", per_cell=0)


def test_a_corrupt_shard_is_one_line_naming_it(rows, tmp_path):
    from thyroid_bench.data.format import write_dataset
    from thyroid_bench.data.preview import _Shards
    from thyroid_bench.errors import DatasetError

    splits = {"train": S.generate_split("train", 3, counts=(2, 1, 1, 1), progress=False), **rows}
    path = write_dataset("tsb-preview-bad", "1.0.0", splits, home=tmp_path, synthetic=True)
    shard = sorted((path / "data").glob("internal-*.parquet"))[0]
    shard.write_bytes(shard.read_bytes()[:200])  # truncated
    with pytest.raises(DatasetError, match=rf"^{shard}: cannot read parquet shard \(.*\); the file "
                       r"is corrupt or truncated: rebuild the dataset"):
        render_preview(None, tmp_path / "d.png", dataset_path=path, per_cell=1)
    with pytest.raises(DatasetError, match=rf"^{shard}: cannot read parquet shard"):
        _Shards(["image"]).image(shard, 0, "image")


def test_two_views_of_a_shard_are_read_once(tmp_path, monkeypatch):
    import pyarrow.parquet as pq
    from test_format import _residual_splits

    from thyroid_bench.data.format import write_dataset
    from thyroid_bench.data.images import decode_image
    from thyroid_bench.data.preview import _Shards
    from thyroid_bench.data.shards import shard_files

    path = write_dataset("r", "1.0.0", _residual_splits(), task="residual-tissue", home=tmp_path)
    reads = []
    real = pq.read_table
    monkeypatch.setattr(pq, "read_table", lambda f, **kw: reads.append(f) or real(f, **kw))
    shards, (shard,) = _Shards(["image", "image_posterior"]), shard_files(path, "internal")
    table = real(shard)
    for row in range(3):
        for column in ("image", "image_posterior"):
            want = decode_image(table.column(column)[row]["bytes"].as_py())
            np.testing.assert_array_equal(shards.image(shard, row, column), want)
    assert reads == [shard]  # one read for both views of every example of the shard
