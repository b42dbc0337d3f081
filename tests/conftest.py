"""Shared test set-up: everything offline, every cache inside temporary folders."""

from __future__ import annotations

import os
import tempfile

# Set before `datasets` is imported anywhere: it reads its cache folder at import.
os.environ["HF_DATASETS_CACHE"] = tempfile.mkdtemp(prefix="thyroid-bench-test-hf-")
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test gets its own empty THYROID_BENCH_HOME."""
    monkeypatch.setenv("THYROID_BENCH_HOME", str(tmp_path_factory.mktemp("tb-home")))


def make_rows(split: str, n: int, *, seed: int = 0, matrix: int = 32, start: int = 0) -> list[dict]:
    """``n`` rows of format v1 with Poisson images; labels cycle through the classes."""
    rng = np.random.default_rng([seed, start, n])
    center = "center2" if split == "external" else "center1"
    rows = []
    for i in range(n):
        label = i % 4
        image = rng.poisson(2.0 + 3.0 * label, (matrix, matrix)).astype(np.uint16)
        rows.append({
            "case_id": f"{split}-{start + i:04d}", "patient_id": f"P{split[:2]}{start + i:04d}",
            "image": image, "label": label, "center": center,
            "fold": i % 5 if split == "train" else -1, "matrix": matrix,
            "pixel_spacing_mm": 280.0 / matrix, "total_counts": int(image.sum()),
            "acquisition_s": 300.0, "sex": "F" if i % 3 else "M", "age": 30 + i,
        })
    return rows


@pytest.fixture
def tiny_splits() -> dict[str, list[dict]]:
    """A small three-split cohort of random images (train 20, internal 8, external 8)."""
    return {"train": make_rows("train", 20), "internal": make_rows("internal", 8),
            "external": make_rows("external", 8, matrix=16)}


@pytest.fixture(scope="module")
def tiny_run_dataset(tmp_path_factory):
    """A dataset folder to train on: 40 train (8 per fold) / 16 internal / 16 external images."""
    from thyroid_bench.data.format import write_dataset

    root = tmp_path_factory.mktemp("tiny") / "tiny" / "1.0.0"
    return write_dataset("tiny", "1.0.0", {"train": make_rows("train", 40),
                                           "internal": make_rows("internal", 16, start=100),
                                           "external": make_rows("external", 16, start=200)},
                         root=root, provenance={"made_by": "tests"}, licence="cc0-1.0")


def output_haystacks(folder) -> list[bytes]:
    """Every byte of every file under ``folder``, plus every decoded parquet cell, the shards'
    metadata and each PNG's text chunks (shards are compressed, so their bytes alone would hide
    text): what a test searches for identifiers that must not be published."""
    import io
    from pathlib import Path

    import pyarrow.parquet as pq
    from PIL import Image

    folder = Path(folder)
    out = [f.read_bytes() for f in folder.rglob("*") if f.is_file()]
    for shard in folder.rglob("*.parquet"):
        table = pq.read_table(shard)
        out.append(repr(table.schema.metadata).encode())
        for column in table.column_names:
            for value in table.column(column).to_pylist():
                if isinstance(value, dict):  # an image struct: bytes + path
                    out.append(repr(value.get("path")).encode())
                    value = value.get("bytes")
                if isinstance(value, bytes):
                    out.append(value)
                    with Image.open(io.BytesIO(value)) as im:
                        out.append(repr(im.info).encode())
                elif value is not None:
                    out.append(str(value).encode())
    return out


def assert_modes_follow_umask(path, umask: int) -> None:
    """Every folder (0777) and file (0666) of dataset folder ``path``, and its parent, has the
    mode ``umask`` leaves."""
    import stat

    entries = [path.parent, path, *path.rglob("*")]
    assert len(entries) > 6
    for p in entries:
        want = (0o777 if p.is_dir() else 0o666) & ~umask
        assert stat.S_IMODE(p.stat().st_mode) == want, (p, oct(p.stat().st_mode))


def fuzz_settings(examples: int):
    """Hypothesis settings of the fuzz tests: ``examples`` inputs, derandomized (the same inputs
    on every run, so the suite is reproducible); ``THYROID_BENCH_FUZZ_EXAMPLES=N`` instead tries
    N fresh random inputs per test, to explore."""
    from hypothesis import HealthCheck, settings

    explore = int(os.environ.get("THYROID_BENCH_FUZZ_EXAMPLES", "0"))
    return settings(max_examples=explore or examples, derandomize=not explore, deadline=None,
                    database=None, suppress_health_check=list(HealthCheck))
