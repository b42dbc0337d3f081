"""Counts stay counts: lossy pixel data is rejected whatever the header says, by the transfer
syntax table or by the codestream itself (JPEG 2000 COD/COC markers, JPEG frame headers)."""

from __future__ import annotations

import csv
import io
import struct

import numpy as np
import pytest
from PIL import Image, features

from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.dicom.lossy import (
    J2K_IRREVERSIBLE,
    J2K_UNKNOWN_WAVELET,
    JPEG_DCT,
    JPEGLS_NEAR_LOSSLESS,
    LOSSY_FLAG,
    NOT_RECOGNISED,
    codestream_reason,
    jpeg2000_transforms,
    jpeg_process,
)
from thyroid_bench.data.dicom.report import organiser_report_path
from thyroid_bench.data.shards import read_split
from thyroid_bench.testing.dicom_writer import FILLER_CENTERS, filler_rows, write_archive

J2K = "1.2.840.10008.1.2.4.91"            # JPEG 2000 (lossless or lossy)
J2K_LOSSLESS = "1.2.840.10008.1.2.4.90"   # "lossless only": the codestream is checked anyway
JPEG_LOSSLESS = "1.2.840.10008.1.2.4.70"
JPEG_LS_LOSSLESS = "1.2.840.10008.1.2.4.80"


def _segment(code: int, body: bytes) -> bytes:
    return bytes([0xFF, code]) + struct.pack(">H", len(body) + 2) + body


def _codestream(transform: int, *, coc: int | None = None, tile_cod: int | None = None) -> bytes:
    """A minimal JPEG 2000 codestream: SOC, SIZ (one 16-bit component), COD with
    ``transform`` (0: 9-7 irreversible, 1: 5-3 reversible), optional COC and a tile-part whose
    header holds another COD, EOC."""
    siz = struct.pack(">HIIIIIIIIH", 0, 32, 32, 0, 0, 32, 32, 0, 0, 1) + bytes([15, 1, 1])
    cod = bytes([0, 0]) + struct.pack(">H", 1) + bytes([0, 5, 4, 4, 0, transform])
    out = b"\xff\x4f" + _segment(0x51, siz) + _segment(0x52, cod)
    if coc is not None:
        out += _segment(0x53, bytes([0, 0, 5, 4, 4, 0, coc]))
    if tile_cod is not None:
        tile_header = _segment(0x52, cod[:-1] + bytes([tile_cod]))
        data = b"\x00" * 8
        psot = 12 + len(tile_header) + 2 + len(data)
        out += _segment(0x90, struct.pack(">HIBB", 0, psot, 0, 1)) + tile_header + b"\xff\x93" + data
    return out + b"\xff\xd9"


def _jp2(codestream: bytes) -> bytes:
    """The codestream in a JP2 file wrapper (signature, file type, contiguous codestream box)."""
    ftyp = b"jp2 " + struct.pack(">I", 0) + b"jp2 "
    return (b"\x00\x00\x00\x0cjP  \r\n\x87\n" + struct.pack(">I", 8 + len(ftyp)) + b"ftyp" + ftyp
            + struct.pack(">I", 8 + len(codestream)) + b"jp2c" + codestream)


def _encapsulated(*frames: bytes) -> bytes:
    """Encapsulated pixel data: an empty Basic Offset Table, one fragment per frame."""
    items = [b"\xfe\xff\x00\xe0" + struct.pack("<I", 0)]
    for frame in frames:
        frame += b"\x00" * (len(frame) % 2)
        items.append(b"\xfe\xff\x00\xe0" + struct.pack("<I", len(frame)) + frame)
    return b"".join(items) + b"\xfe\xff\xdd\xe0\x00\x00\x00\x00"


# --------------------------------------------------------------------------- crafted codestreams
def test_the_cod_transformation_byte_decides():
    assert jpeg2000_transforms(_codestream(0)) == [0]
    assert jpeg2000_transforms(_codestream(1)) == [1]
    assert codestream_reason(_encapsulated(_codestream(0)), J2K) == J2K_IRREVERSIBLE
    assert codestream_reason(_encapsulated(_codestream(1)), J2K) is None
    # "Lossless only" in the header does not make an irreversible codestream lossless.
    assert codestream_reason(_encapsulated(_codestream(0)), J2K_LOSSLESS) == J2K_IRREVERSIBLE
    # A Part 2 arbitrary kernel is not known to be reversible.
    assert codestream_reason(_encapsulated(_codestream(2)), J2K) == J2K_UNKNOWN_WAVELET


def test_overrides_wrappers_and_later_frames_are_read():
    assert jpeg2000_transforms(_codestream(1, coc=0)) == [1, 0]
    assert jpeg2000_transforms(_codestream(1, tile_cod=0)) == [1, 0]
    assert codestream_reason(_encapsulated(_codestream(1, tile_cod=0)), J2K) == J2K_IRREVERSIBLE
    assert jpeg2000_transforms(_jp2(_codestream(0))) == [0]
    assert codestream_reason(_encapsulated(_jp2(_codestream(1))), J2K) is None
    # Every frame is its own codestream: a lossy second frame is found.
    assert codestream_reason(_encapsulated(_codestream(1), _codestream(0)), J2K) == J2K_IRREVERSIBLE
    # No codestream at all: losslessness cannot be checked, so the file is not taken.
    assert codestream_reason(_encapsulated(b"garbage!"), J2K) == NOT_RECOGNISED
    assert jpeg2000_transforms(b"\xff\x4f\xff\x51\x00") is None


def test_jpeg_frame_headers_decide_for_the_lossless_jpeg_syntaxes():
    soi, eoi = b"\xff\xd8", b"\xff\xd9"
    frame = struct.pack(">BHHB", 16, 32, 32, 1) + bytes([1, 0x11, 0])
    dqt = _segment(0xDB, bytes(65))
    assert jpeg_process(soi + _segment(0xC3, frame) + eoi) == "lossless"
    assert jpeg_process(soi + dqt + _segment(0xC0, frame) + eoi) == "dct"
    assert codestream_reason(_encapsulated(soi + dqt + _segment(0xC1, frame) + eoi),
                             JPEG_LOSSLESS) == JPEG_DCT
    scan = lambda near: _segment(0xDA, bytes([1, 1, 0, near, 0, 0]))  # noqa: E731
    near = soi + _segment(0xF7, frame) + scan(3) + eoi
    assert jpeg_process(near) == "near-lossless"
    assert codestream_reason(_encapsulated(near), JPEG_LS_LOSSLESS) == JPEGLS_NEAR_LOSSLESS
    assert codestream_reason(_encapsulated(soi + _segment(0xF7, frame) + scan(0) + eoi),
                             JPEG_LS_LOSSLESS) is None


# --------------------------------------------------------------------------- real files, ingested
def _as_jpeg2000(path, codestream: bytes) -> None:
    """Rewrite the DICOM file at ``path`` with ``codestream`` as its pixel data under transfer
    syntax .91 and no Lossy Image Compression attribute (the header says nothing)."""
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = J2K
    ds.PixelData = encapsulate([codestream])
    ds["PixelData"].VR = "OB"
    for keyword in ("LossyImageCompression", "LossyImageCompressionRatio",
                    "LossyImageCompressionMethod"):
        if keyword in ds:
            delattr(ds, keyword)
    ds.save_as(path, enforce_file_format=True)


@pytest.mark.skipif(not features.check("jpg_2000"), reason="Pillow built without OpenJPEG")
def test_an_irreversible_jpeg2000_file_is_rejected_and_a_reversible_one_kept(tmp_path):
    rng = np.random.default_rng(8)
    images = [rng.poisson(300.0, (32, 32)).astype(np.uint16) for _ in range(3)]
    archive = write_archive(tmp_path / "a", [{"image": im, "label": i, "patient": f"p{i}"}
                                             for i, im in enumerate(images)] + filler_rows())
    encoded = {}
    for study, irreversible in zip(archive.studies[:2], (True, False)):
        buf = io.BytesIO()
        options = {"quality_mode": "rates", "quality_layers": [8]} if irreversible else {}
        Image.fromarray(study.image).save(buf, "JPEG2000", irreversible=irreversible, no_jp2=True,
                                          **options)
        encoded[study.path] = buf.getvalue()
        _as_jpeg2000(archive.root / study.path, buf.getvalue())
    lossy = archive.studies[0]  # the second, reversible, file is ingested
    # The defect: the irreversible file's decoded values are not the counts.
    decoded = np.asarray(Image.open(io.BytesIO(encoded[lossy.path]))).astype(int)
    assert np.abs(decoded - lossy.image.astype(int)).max() > 0
    out = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="j2k",
                        version="1.0.0", key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                        external_centers=[FILLER_CENTERS[1]])
    report = organiser_report_path(tmp_path / "k", "j2k", "1.0.0")
    reasons = {r["file"]: r["reason"] for r in csv.DictReader(io.StringIO(report.read_text()))}
    assert reasons == {lossy.path: J2K_IRREVERSIBLE}
    totals = sorted(int(t) for s in ("train", "internal", "external")
                    for t, c in zip(read_split(out, s)["total_counts"], read_split(out, s)["center"])
                    if c not in FILLER_CENTERS)
    assert totals == sorted(int(im.sum()) for im in images[1:])  # the reversible file, bit-exact


def test_the_lossy_flag_alone_rejects(tmp_path):
    rng = np.random.default_rng(9)
    rows = [{"image": rng.poisson(5.0, (8, 8)).astype(np.uint16), "label": i, "patient": f"p{i}",
             "overrides": {"LossyImageCompression": "01"} if i == 0 else {}} for i in range(3)]
    archive = write_archive(tmp_path / "a", rows + filler_rows())
    prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="flag", version="1.0.0",
                  key_file=tmp_path / "k", home=tmp_path / "h", workers=1,
                  external_centers=[FILLER_CENTERS[1]])
    report = organiser_report_path(tmp_path / "k", "flag", "1.0.0")
    reasons = [r["reason"] for r in csv.DictReader(io.StringIO(report.read_text()))]
    assert reasons == [LOSSY_FLAG]
