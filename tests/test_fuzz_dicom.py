"""Fuzzing DICOM ingestion (Hypothesis): random byte-level corruption of files written by the
project's writer (thyroid_bench/testing/dicom_writer.py).

Whatever happens to a file's bytes (a byte flipped, bytes inserted or deleted, a run zeroed or
set to 0xFF so a length field claims gigabytes, the file cut short), it is ingested or rejected
with a reason of the reader's own (never "unexpected error"), and for the archive
``files seen = ingested + rejected`` always: in the dataset written, or in the refusal when too
little survives for every split (data/dicom/split_sizes.py). Derandomized (conftest.fuzz_settings).
"""

from __future__ import annotations

import csv
import io
import re
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from conftest import fuzz_settings
from thyroid_bench.data.dicom.ingest import prepare_dicom, read_dicom_file
from thyroid_bench.data.dicom.report import organiser_report_path
from thyroid_bench.data.format import read_split
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.errors import DatasetError
from thyroid_bench.testing.dicom_writer import write_archive

N_CENTRE1, N_CENTRE2 = 12, 3


@pytest.fixture(scope="module")
def archive(tmp_path_factory):
    """12 studies of 12 patients at centre 1 and 3 at centre 2: every split and fold filled."""
    rng = np.random.default_rng(16)
    rows = [{"image": rng.poisson(5.0, (16, 16)).astype(np.uint16), "label": i % 4,
             "patient": f"p{i}", "center": "center1" if i < N_CENTRE1 else "center2"}
            for i in range(N_CENTRE1 + N_CENTRE2)]
    return write_archive(tmp_path_factory.mktemp("fuzz-dicom") / "archive", rows, seed=16)


# --------------------------------------------------------------------------- corruption
@st.composite
def corruption(draw, size: int) -> list[tuple[str, int, int]]:
    """1-4 operations (kind, position, value), positions mostly in the header (the first
    1500 bytes, where a flipped byte changes a tag, a VR or a length)."""
    ops = []
    for _ in range(draw(st.integers(1, 4))):
        top = draw(st.sampled_from([min(size, 1500)] * 3 + [size]))
        ops.append((draw(st.sampled_from(["flip", "insert", "delete", "zero", "ones", "cut"])),
                    draw(st.integers(0, max(0, top - 1))), draw(st.integers(0, 255))))
    return ops


def corrupt(data: bytes, ops: list[tuple[str, int, int]]) -> bytes:
    out = bytearray(data)
    for kind, pos, value in ops:
        pos = min(pos, max(0, len(out) - 1))
        if kind == "flip":
            out[pos:pos + 1] = bytes([value])
        elif kind == "insert":
            out[pos:pos] = bytes([value]) * (1 + value % 4)
        elif kind == "delete":
            del out[pos:pos + 1 + value % 4]
        elif kind in ("zero", "ones"):
            n = 1 + value % 8
            out[pos:pos + n] = (b"\x00" if kind == "zero" else b"\xff") * len(out[pos:pos + n])
        else:
            del out[pos:]
    return bytes(out)


# --------------------------------------------------------------------------- one file
def _file_and_ops():
    return st.integers(0, N_CENTRE1 + N_CENTRE2 - 1).flatmap(
        lambda i: st.tuples(st.just(i), corruption(4000)))


@fuzz_settings(150)
@given(case=_file_and_ops())
def test_a_corrupted_file_is_read_or_rejected_with_a_reason(archive, tmp_path_factory, case):
    index, ops = case
    study = archive.studies[index]
    path = tmp_path_factory.getbasetemp() / "one.dcm"
    path.write_bytes(corrupt((archive.root / study.path).read_bytes(), ops))
    out = read_dicom_file(path, study.path)
    if out["ok"]:
        event("ingested")
        assert out["reason"] is None and out["image"].ndim == 2
        assert out["image"].dtype == np.uint16 and out["image"].shape[0] == out["image"].shape[1]
        assert out["total_counts"] == int(out["image"].sum()) > 0
        return
    reason = out["reason"]
    event(f"rejected: {re.split(r' [(:;]', reason)[0]}")
    assert isinstance(reason, str) and reason.strip()
    assert not reason.startswith("unexpected error"), (reason, out.get("detail"))


# --------------------------------------------------------------------------- a whole archive
@fuzz_settings(8)
@given(damage=st.dictionaries(st.integers(0, N_CENTRE1 + N_CENTRE2 - 1), corruption(4000),
                              min_size=1, max_size=6))
def test_files_seen_equal_ingested_plus_rejected_whatever_the_damage(archive, damage):
    """Several files of the archive corrupted: the dataset is written with every file
    accounted for, or refused as too small with the same account."""
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        root = Path(shutil.copytree(archive.root, tmp / "archive"))
        for index, ops in damage.items():
            path = root / archive.studies[index].path
            path.write_bytes(corrupt(path.read_bytes(), ops))
        key = tmp / "keys" / "k.key"
        seen = N_CENTRE1 + N_CENTRE2
        try:
            out = prepare_dicom(dicom_dir=root, labels=archive.labels_csv, name="fuzz",
                                version="1.0.0", key_file=key, external_centers=["center2"],
                                home=tmp / "home", workers=1)
        except DatasetError as exc:
            counts = re.search(r"DICOM files: (\d+) seen = (\d+) ingested \+ (\d+) rejected", str(exc))
            assert counts, str(exc)  # only a refusal for too few studies
            ingested, rejected = int(counts[2]), int(counts[3])
            assert int(counts[1]) == seen == ingested + rejected
            assert not (tmp / "home" / "fuzz" / "1.0.0").exists()
            event("refused: too few studies left")
        else:
            ingest = read_manifest(out).provenance["ingest"]
            ingested = sum(len(read_split(out, s)) for s in ("train", "internal", "external"))
            rejected = len(list(csv.DictReader(io.StringIO((out / "rejected.csv").read_text()))))
            assert (ingest["files_seen"], ingest["ingested"], ingest["rejected"]) == (
                seen, ingested, rejected)
            assert seen == ingested + rejected
            event("written")
        report = list(csv.DictReader(io.StringIO(
            organiser_report_path(key, "fuzz", "1.0.0").read_text())))
        assert len(report) == rejected and all(r["reason"].strip() for r in report)
        assert not any(r["reason"].startswith("unexpected error") for r in report), report


def test_a_damaged_element_is_a_reason_of_its_own(archive, tmp_path):
    """Found by the fuzz test above: two bytes of the Study Date's header zeroed (an unknown
    value representation, length 0) made pydicom raise NotImplementedError on reading it, which
    ended as "unexpected error while reading"; now a damaged element is a rejection reason."""
    data = (archive.root / archive.studies[0].path).read_bytes()
    element = b"\x08\x00\x20\x00DA\x08\x00"  # (0008,0020) DA, 8 bytes, explicit VR little endian
    assert data.count(element) == 1
    path = tmp_path / "damaged.dcm"
    path.write_bytes(data.replace(element, b"\x08\x00\x20\x00D\x00\x00\x00"))
    out = read_dicom_file(path, "damaged.dcm")
    assert out["reason"] == "damaged header: element StudyDate cannot be read (NotImplementedError)"
    assert "Unknown Value Representation" in out["detail"]
