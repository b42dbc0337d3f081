"""Is a DICOM file's pixel data lossy? One table of transfer syntaxes, and the codestreams read.

Counts are data: a lossy codec changes them (an irreversible JPEG 2000 file of a scintigram
differed from the true counts by up to 29), so ingestion rejects every lossy file. A header can
be wrong or silent (Lossy Image Compression is optional, and a JPEG 2000 transfer syntax
"(lossless or lossy)" says nothing), so the compressed data itself is read where its header
names the coding process:

* :data:`LOSSY_TRANSFER_SYNTAXES`: syntaxes that are lossy by definition (JPEG baseline,
  extended, spectral selection and progressive DCT processes; JPEG-LS near-lossless; MPEG-2,
  H.264, HEVC; JPEG XL's lossy and JPEG-recompression forms) are rejected by their UID alone.
* :data:`JPEG2000_SYNTAXES` (Part 1, Part 2 and High-Throughput JPEG 2000, "lossless only" or
  not): every codestream's COD marker (0xFF52, and any COC 0xFF53 overriding it for a
  component, in the main header and in tile-part headers) names the wavelet: transformation
  byte 1 is the reversible 5-3 filter, 0 the irreversible 9-7 filter; any other value (a Part 2
  arbitrary kernel) is not known to be reversible. A JP2 file wrapper is unwrapped to its
  codestream box.
* :data:`JPEG_CODESTREAM_SYNTAXES` (JPEG lossless and JPEG-LS lossless/near-lossless): the
  frame header must be a lossless process (SOF3, SOF7, SOF11, SOF15) or JPEG-LS (SOF55) with
  NEAR = 0 in its scan header.

Each frame of encapsulated pixel data starts a fragment with a codestream (or JP2 signature),
so every fragment that starts one is read; the main header is a few hundred bytes at most.
Limits: a reversible JPEG 2000 codestream truncated by rate control (quality layers dropped)
is lossy but says so nowhere in its headers; it cannot be told apart without the original.

Every reason is fixed text (no header value is quoted); all start with ``lossy compression``
or ``compressed pixel data not recognised`` so the summary groups them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

__all__ = [
    "LOSSY_TRANSFER_SYNTAXES",
    "JPEG2000_SYNTAXES",
    "JPEG_CODESTREAM_SYNTAXES",
    "LOSSY_FLAG",
    "J2K_IRREVERSIBLE",
    "J2K_UNKNOWN_WAVELET",
    "JPEG_DCT",
    "JPEGLS_NEAR_LOSSLESS",
    "NOT_RECOGNISED",
    "fragments",
    "jpeg2000_transforms",
    "jpeg_process",
    "codestream_reason",
    "lossy_reason",
]

#: Transfer syntaxes whose pixel data is lossy by definition, with the name a reason gives.
LOSSY_TRANSFER_SYNTAXES: dict[str, str] = {
    "1.2.840.10008.1.2.4.50": "JPEG Baseline",
    "1.2.840.10008.1.2.4.51": "JPEG Extended",
    "1.2.840.10008.1.2.4.52": "JPEG Extended",
    "1.2.840.10008.1.2.4.53": "JPEG Spectral Selection",
    "1.2.840.10008.1.2.4.54": "JPEG Spectral Selection",
    "1.2.840.10008.1.2.4.55": "JPEG Full Progression",
    "1.2.840.10008.1.2.4.56": "JPEG Full Progression",
    "1.2.840.10008.1.2.4.59": "JPEG Extended, Hierarchical",
    "1.2.840.10008.1.2.4.60": "JPEG Extended, Hierarchical",
    "1.2.840.10008.1.2.4.61": "JPEG Spectral Selection, Hierarchical",
    "1.2.840.10008.1.2.4.62": "JPEG Spectral Selection, Hierarchical",
    "1.2.840.10008.1.2.4.63": "JPEG Full Progression, Hierarchical",
    "1.2.840.10008.1.2.4.64": "JPEG Full Progression, Hierarchical",
    "1.2.840.10008.1.2.4.81": "JPEG-LS Near-Lossless",
    **{uid: "MPEG-2 video" for uid in ("1.2.840.10008.1.2.4.100", "1.2.840.10008.1.2.4.100.1",
                                      "1.2.840.10008.1.2.4.101", "1.2.840.10008.1.2.4.101.1")},
    **{f"1.2.840.10008.1.2.4.{n}{s}": "H.264 video" for n in range(102, 107) for s in ("", ".1")},
    "1.2.840.10008.1.2.4.107": "HEVC video",
    "1.2.840.10008.1.2.4.108": "HEVC video",
    "1.2.840.10008.1.2.4.111": "JPEG XL recompressed JPEG",
    "1.2.840.10008.1.2.4.112": "JPEG XL",
}
#: JPEG 2000 syntaxes (Part 1, Part 2 multi-component, High-Throughput): the COD marker decides.
JPEG2000_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.90", "1.2.840.10008.1.2.4.91", "1.2.840.10008.1.2.4.92",
    "1.2.840.10008.1.2.4.93", "1.2.840.10008.1.2.4.201", "1.2.840.10008.1.2.4.202",
    "1.2.840.10008.1.2.4.203",
})
#: JPEG lossless and JPEG-LS lossless syntaxes: the frame (and JPEG-LS scan) header decides.
JPEG_CODESTREAM_SYNTAXES = frozenset({
    "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.58", "1.2.840.10008.1.2.4.65",
    "1.2.840.10008.1.2.4.66", "1.2.840.10008.1.2.4.70", "1.2.840.10008.1.2.4.80",
})

LOSSY_FLAG = "lossy compression (Lossy Image Compression is 01)"
J2K_IRREVERSIBLE = "lossy compression (irreversible JPEG 2000 wavelet)"
J2K_UNKNOWN_WAVELET = "lossy compression (JPEG 2000 wavelet not known to be reversible)"
JPEG_DCT = "lossy compression (DCT-based JPEG process)"
JPEGLS_NEAR_LOSSLESS = "lossy compression (near-lossless JPEG-LS)"
NOT_RECOGNISED = ("compressed pixel data not recognised (no codestream header found): whether "
                  "it is lossless cannot be checked")

_ITEM = b"\xfe\xff\x00\xe0"          # (FFFE,E000) Item, little endian
_SEQ_END = b"\xfe\xff\xdd\xe0"       # (FFFE,E0DD) Sequence Delimitation Item
_SOC_SIZ = b"\xff\x4f\xff\x51"       # JPEG 2000: start of codestream, then SIZ
_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_SOI = b"\xff\xd8"                   # JPEG / JPEG-LS: start of image
_MAX_SEGMENTS = 10_000               # bounds the walk through a hostile codestream


def fragments(pixel_data: bytes) -> Iterator[memoryview]:
    """The fragments of encapsulated pixel data (PS3.5 A.4), the Basic Offset Table left out;
    stops quietly at the first malformed item."""
    data = memoryview(pixel_data)
    pos, first = 0, True
    while pos + 8 <= len(data) and bytes(data[pos:pos + 4]) == _ITEM:
        length = int.from_bytes(data[pos + 4:pos + 8], "little")
        if length == 0xFFFFFFFF or pos + 8 + length > len(data):
            return
        if not first:
            yield data[pos + 8:pos + 8 + length]
        first, pos = False, pos + 8 + length


def _unwrap_jp2(data: memoryview) -> memoryview | None:
    """The contiguous codestream box (``jp2c``) of a JP2 file, or None."""
    pos = 0
    for _ in range(_MAX_SEGMENTS):
        if pos + 8 > len(data):
            return None
        length, kind = int.from_bytes(data[pos:pos + 4], "big"), bytes(data[pos + 4:pos + 8])
        header = 8
        if length == 1:  # a 64-bit XLBox follows
            if pos + 16 > len(data):
                return None
            length, header = int.from_bytes(data[pos + 8:pos + 16], "big"), 16
        elif length == 0:  # the box runs to the end
            length = len(data) - pos
        if length < header:
            return None
        if kind == b"jp2c":
            return data[pos + header:pos + length]
        pos += length
    return None


def jpeg2000_transforms(codestream: bytes | memoryview) -> list[int] | None:
    """The wavelet transformation byte of every COD and COC marker of a JPEG 2000 codestream
    (main header and tile-part headers; a JP2 wrapper is unwrapped), or None if it is not a
    codestream or holds no COD. 1: reversible 5-3; 0: irreversible 9-7."""
    data = memoryview(codestream)
    if bytes(data[:12]) == _JP2_SIGNATURE:
        data = _unwrap_jp2(data)
        if data is None:
            return None
    if bytes(data[:4]) != _SOC_SIZ:
        return None
    transforms: list[int] = []
    n_components, have_cod = 1, False
    pos, tile_end = 2, None
    for _ in range(_MAX_SEGMENTS):
        if pos + 4 > len(data) or data[pos] != 0xFF:
            break
        code, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        segment = data[pos + 4:pos + 2 + length]
        if code == 0x93:  # SOD: tile data follows; the next tile-part starts at tile_end
            if not tile_end:
                break
            pos, tile_end = tile_end, None
            continue
        if code == 0xD9 or length < 2:  # EOC, or a malformed segment
            break
        if code == 0x51 and len(segment) >= 36:  # SIZ: Rsiz, 8 x 4-byte sizes, then Csiz
            n_components = int.from_bytes(segment[34:36], "big")
        elif code == 0x52 and len(segment) >= 10:  # COD: Scod, SGcod (4), SPcod: ..., transform
            transforms.append(segment[9])
            have_cod = True
        elif code == 0x53:  # COC: Ccoc (1 or 2 bytes), Scoc, SPcoc: ..., transform
            at = (2 if n_components >= 257 else 1) + 1 + 4
            if len(segment) > at:
                transforms.append(segment[at])
        elif code == 0x90 and len(segment) >= 8:  # SOT: Psot is this tile-part's length
            psot = int.from_bytes(segment[4:8], "big")
            tile_end = pos + psot if psot >= 14 else None
        pos += 2 + length
    return transforms if have_cod else None


def jpeg_process(codestream: bytes | memoryview) -> str | None:
    """``lossless``, ``dct`` or ``near-lossless`` for a JPEG or JPEG-LS codestream, from its
    frame header (and, for JPEG-LS, the NEAR parameter of its first scan); None if not found."""
    data = memoryview(codestream)
    if bytes(data[:2]) != _SOI:
        return None
    pos, process = 2, None
    for _ in range(_MAX_SEGMENTS):
        while pos + 1 < len(data) and data[pos] == 0xFF and data[pos + 1] == 0xFF:
            pos += 1  # fill bytes
        if pos + 4 > len(data) or data[pos] != 0xFF:
            return None
        code, length = data[pos + 1], int.from_bytes(data[pos + 2:pos + 4], "big")
        if code in (0xC3, 0xC7, 0xCB, 0xCF):
            return "lossless"
        if code in (0xC0, 0xC1, 0xC2, 0xC5, 0xC6, 0xC9, 0xCA, 0xCD, 0xCE):
            return "dct"
        if code == 0xF7:  # SOF55: JPEG-LS; NEAR is in the scan header
            process = "jpeg-ls"
        elif code == 0xDA:  # SOS: Ns, Ns x (Cs, Tm), NEAR, ...
            if process != "jpeg-ls" or pos + 5 > len(data):
                return None
            near_at = pos + 5 + 2 * data[pos + 4]
            if near_at >= len(data):
                return None
            return "lossless" if data[near_at] == 0 else "near-lossless"
        if length < 2:
            return None
        pos += 2 + length
    return None


def codestream_reason(pixel_data: bytes, transfer_syntax: str) -> str | None:
    """Why the encapsulated ``pixel_data`` of a JPEG 2000 or JPEG (lossless) syntax is not
    lossless, or None when every frame's codestream is (see the module docstring)."""
    j2k = transfer_syntax in JPEG2000_SYNTAXES
    seen = False
    for fragment in fragments(pixel_data):
        head = bytes(fragment[:12])
        if j2k and (head[:4] == _SOC_SIZ or head == _JP2_SIGNATURE):
            transforms = jpeg2000_transforms(fragment)
            if transforms is None:
                continue
            seen = True
            if 0 in transforms:
                return J2K_IRREVERSIBLE
            if any(t != 1 for t in transforms):
                return J2K_UNKNOWN_WAVELET
        elif not j2k and head[:2] == _SOI:
            process = jpeg_process(fragment)
            if process is None:
                continue
            seen = True
            if process != "lossless":
                return JPEG_DCT if process == "dct" else JPEGLS_NEAR_LOSSLESS
    return None if seen else NOT_RECOGNISED


def lossy_reason(ds: Any, transfer_syntax: str, lossy_flag: str) -> str | None:
    """Why a data set's pixels are lossy (fixed text), or None: the Lossy Image Compression
    value ``lossy_flag`` (01 = lossy), the transfer syntax's table entry, then the codestream
    of a JPEG 2000 or JPEG lossless syntax."""
    if lossy_flag.strip() == "01":
        return LOSSY_FLAG
    uid = str(transfer_syntax)
    if uid in LOSSY_TRANSFER_SYNTAXES:
        return f"lossy compression ({LOSSY_TRANSFER_SYNTAXES[uid]})"
    if uid in JPEG2000_SYNTAXES or uid in JPEG_CODESTREAM_SYNTAXES:
        elem = ds.get_item(0x7FE00010)
        data = None if elem is None else elem.value
        if not isinstance(data, (bytes, bytearray)):
            return NOT_RECOGNISED
        return codestream_reason(bytes(data), uid)
    return None
