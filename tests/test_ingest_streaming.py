"""Streaming DICOM ingestion (issue 13): the same dataset as the in-memory code wrote, pixels
put aside on disk (data/dicom/pixel_store.py), a bounded process pool (data/parallel.py).

The pinned values below were written by the in-memory ingestion of commit b23c479 (every
image of the archive in memory until the writer had them all) on the archives these tests
write, with the key ``bytes(range(32))``: the streaming code must give the same dataset,
byte for byte in what it hashes and publishes. (The parquet shards were compared by hand too:
byte-identical; they are not pinned here because their footer names the pyarrow version.)
"""

from __future__ import annotations

import errno
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

import test_dicom as D
import test_dicom_residual as R
from thyroid_bench.data.dicom.duplicates import ImageIndex
from thyroid_bench.data.dicom.ingest import list_archive, prepare_dicom, read_archive
from thyroid_bench.data.dicom.labels_csv import LabelRow
from thyroid_bench.data.dicom import pixel_store
from thyroid_bench.data.dicom.pixel_store import PixelStore, image_key, spill_folder
from thyroid_bench.data.parallel import ordered_map
from thyroid_bench.errors import SpillError, size_text
from thyroid_bench.testing.dicom_writer import write_archive

KEY = bytes(range(32))
#: What b23c479's in-memory ingestion wrote for each archive of :func:`_archives`: the dataset
#: fingerprint, SHA-256 of rejected.csv, of the organiser's report and of the provenance (JSON,
#: sorted keys), and the studies per split.
PINNED = {
    "four-pattern": {
        "fingerprint": "f5c1498ee36c6fe7a030d0bb8754355a8c02130be4a222fb4f88f3679130306d",
        "rejected_csv": "11e373dc41c776b8b6d79992b0e1c39a3ddae981f5e767a48bbd9eeaf7d8ac7d",
        "organiser_report": "83a97da0d16fb24fdbf7cbc6270fae9191ccdd6564c4bcbe669ac91d7b2da96d",
        "provenance": "ef6adc269d1280cc738e286e51c9db068120bc63e3fd77634e38990a44be6f96",
        "rows": {"external": 8, "internal": 8, "train": 32},
    },
    "residual-tissue": {
        "fingerprint": "20cb785a1af0801a5dee06cd1b9b45fc7b112eb3f5b2d668f070c7f9abeb0c5e",
        "rejected_csv": "bddbd0adf6b4dd211ef401518ff9c15642177052015e69a4695da21290e2329b",
        "organiser_report": "614d492f36f3e719a407fb446cd26a2116a288978f2d71827179dac1e7ce7990",
        "provenance": "2f23c650d9ccd108bfdaedc26e2f6c38e072d99510836d94cc0508307c6a236c",
        "rows": {"external": 6, "internal": 4, "train": 12},
    },
}


@pytest.fixture(scope="module")
def archives(tmp_path_factory) -> dict[str, tuple]:
    """The archives of tests/test_dicom.py (duplicate, unlabelled, refused and multi-frame
    files; the file that test truncates is left whole here, since the reason a truncated file
    gets names the reader's error, which depends on pydicom's version) and
    tests/test_dicom_residual.py (static and whole-body pairs, dual-head files), as
    (archive, task), written once for the module (ingestion only reads them)."""
    tmp = tmp_path_factory.mktemp("archives")
    four = write_archive(tmp / "four" / "archive", D._rows(), seed=D.SEED)
    residual, _ = R._write(tmp / "residual")
    return {"four-pattern": (four, "four-pattern"), "residual-tissue": (residual, "residual-tissue")}


def _identity(path: Path, key_file: Path) -> dict:
    """What the pin compares: fingerprints, the published and private reports, provenance."""
    manifest = json.loads((path / "manifest.json").read_text())
    report = key_file.parent / f"rejected-{path.parent.name}-{path.name}.csv"
    return {
        "fingerprint": manifest["fingerprint"],
        "rejected_csv": hashlib.sha256((path / "rejected.csv").read_bytes()).hexdigest(),
        "organiser_report": hashlib.sha256(report.read_bytes()).hexdigest(),
        "provenance": hashlib.sha256(json.dumps(manifest["provenance"], sort_keys=True).encode())
        .hexdigest(),
        "rows": {s: m["rows"] for s, m in manifest["splits"].items()},
    }


def ingest_all(tmp: Path, archives: dict[str, tuple], workers: int = 2) -> dict[str, dict]:
    """Ingest both archives with the fixed key into ``tmp``; their :func:`_identity`."""
    key_file = tmp / "secret" / "k.key"
    key_file.parent.mkdir(parents=True, exist_ok=True)
    key_file.write_bytes(KEY)
    out = {}
    for name, (archive, task) in archives.items():
        path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name=name,
                             version="1.0.0", key_file=key_file, external_centers=["center2"],
                             home=tmp / "home", workers=workers, task=task)
        out[name] = _identity(path, key_file)
    return out


@pytest.mark.parametrize("workers", [1, 2])
def test_streaming_ingestion_writes_what_the_in_memory_code_wrote(tmp_path, archives, workers):
    assert ingest_all(tmp_path, archives, workers) == PINNED


# --------------------------------------------------------------------------- the pixel store
def test_pixel_store_gives_back_exact_counts_and_keeps_low_counts_in_one_byte(tmp_path):
    rng = np.random.default_rng(0)
    low = rng.poisson(3.0, (8, 8)).astype(np.uint16)
    high = rng.integers(0, 65536, (4, 6)).astype(np.uint16)
    with PixelStore(tmp_path) as store:
        refs = [store.put(low), store.put(high), store.put(low.astype(np.uint8))]
        assert [r.dtype for r in refs] == ["u1", "<u2", "u1"]
        assert [r.offset for r in refs] == [0, 64, 64 + 48]  # 64 one-byte, 24 two-byte counts
        for ref, image in zip(refs, [low, high, low]):
            back = store.get(ref)
            assert back.dtype == np.uint16 and np.array_equal(back, image)
        assert list(tmp_path.iterdir()) == []  # the file has no name: nothing to clean up


class _FillsUp:
    """A spill file on a disk with room for ``room`` bytes."""

    def __init__(self, room):
        self.room = room

    def seek(self, offset):
        pass

    def write(self, data):
        if len(data) > self.room:
            raise OSError(errno.ENOSPC, "No space left on device")
        self.room -= len(data)

    def close(self):
        pass


def test_pixel_store_on_a_full_disk_says_where_and_how_much(tmp_path, monkeypatch):
    monkeypatch.setattr(pixel_store.tempfile, "TemporaryFile", lambda **kw: _FillsUp(3 * 2048))
    image = np.full((32, 32), 1000, dtype=np.uint16)  # 2048 bytes stored
    with PixelStore(tmp_path, expected=100) as store:
        for _ in range(3):
            store.put(image)
        with pytest.raises(SpillError) as err:
            store.put(image)
    assert str(err.value) == (
        f"could not put the archive's pixels (read until the writer draws them) aside in {tmp_path} "
        f"(No space left on device): about {size_text(100 * 2048)} of free space is needed there; "
        "use --home on a disk with room (the pixels wait in the dataset home), or free space there")
    assert size_text(100 * 2048) == "205 kB"


def test_spill_folder_is_the_first_that_exists_and_creates_none(tmp_path):
    assert spill_folder(tmp_path / "home" / "name", tmp_path) == tmp_path
    assert spill_folder(tmp_path / "a" / "b" / "c") == tmp_path
    assert not (tmp_path / "a").exists() and not (tmp_path / "home").exists()


def test_duplicate_images_are_found_by_their_key():
    rng = np.random.default_rng(1)
    image = rng.poisson(5.0, (16, 16)).astype(np.uint16)
    index = ImageIndex()
    first = LabelRow(line=2, label=0, center="c", path="a.dcm")
    index.add(image_key(image), first)
    assert index.duplicate(image_key(image.copy())) == \
        "duplicate image: identical pixels to the study of labels line 2"
    other = image.copy()
    other[3, 4] += 1
    assert index.duplicate(image_key(other)) is None
    assert index.duplicate(image_key(image[:, :8])) is None  # same counts, other shape
    assert image_key(image.astype(np.uint8)) == image_key(image)  # counts, not their dtype


def test_read_archive_into_the_store_equals_reading_into_memory(tmp_path, archives):
    archive = archives["four-pattern"][0]
    files = list_archive(archive.root)
    in_memory = read_archive(archive.root, files, workers=1, progress=False)
    with PixelStore(tmp_path) as store:
        for workers in (1, 2):
            stored = read_archive(archive.root, files, workers=workers, progress=False, store=store)
            assert [r["reason"] for r in stored] == [r["reason"] for r in in_memory]
            for a, b in zip(in_memory, stored):
                assert (a.get("image") is None) == (b.get("image") is None)
                if a.get("image") is not None:
                    assert np.array_equal(store.get(b["image"]), a["image"])
                    assert b["image_key"] == a["image_key"] == image_key(a["image"])


# --------------------------------------------------------------------------- the bounded pool
def _square(x: int) -> int:
    return x * x


def test_ordered_map_gives_map_in_order_on_processes():
    items = list(range(103))
    assert list(ordered_map(_square, items, workers=2, chunksize=4, ahead=3)) == [x * x for x in items]
    assert list(ordered_map(_square, items, workers=1, chunksize=4)) == [x * x for x in items]
    assert list(ordered_map(_square, [], workers=2, chunksize=4)) == []
