"""Every text a dataset version folder holds, each with where it is: what ``publish`` scans.

A text is anything a person could read once the folder is public: file names; the card, the
manifest and ``rejected.csv`` (whole, so a phrase broken over two lines is still one text); and
in each parquet shard the column names, the file's and schema's key-value metadata (Hugging Face
features), every string cell (the ``path`` of an image struct included) and the text chunks of
every PNG (``tEXt``, ``zTXt``, ``iTXt``, ``eXIf``): the content fingerprint covers the decoded
pixels, not a PNG's chunks, so a name written into one would pass ``verify``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from thyroid_bench.errors import DatasetError

__all__ = ["Text", "folder_texts", "png_texts"]

_PNG = b"\x89PNG\r\n\x1a\n"
_TEXT_CHUNKS = (b"tEXt", b"zTXt", b"iTXt", b"eXIf")
#: The most text one compressed PNG chunk may inflate to (a larger one is read this far).
_MAX_INFLATED = 1 << 20


@dataclass(frozen=True)
class Text:
    """One text and where it is: ``where`` names the file (and the column and row, or the
    part); ``lines`` says that a finding is placed by its line number in ``text``."""

    where: str
    text: str
    lines: bool = False


def folder_texts(folder: Path, files: Sequence[str], *,
                 replace: Mapping[str, str] | None = None) -> Iterator[Text]:
    """The texts of ``files`` (paths relative to ``folder``): each file's name, a text file
    whole (``replace`` gives the text to scan instead of a file's, e.g. the card as it will be
    published) and a parquet shard's names, metadata and cells. A text file that is not UTF-8
    raises :class:`DatasetError` (it cannot be scanned, so it is not published)."""
    replace = replace or {}
    for rel in files:
        yield Text(f"the file name {rel}", rel)
        if rel.endswith(".parquet"):
            yield from _parquet_texts(folder / rel, rel)
        elif rel in replace:
            yield Text(rel, replace[rel], lines=True)
        else:
            try:
                yield Text(rel, (folder / rel).read_text(encoding="utf-8"), lines=True)
            except UnicodeDecodeError:
                raise DatasetError(f"{folder / rel} is not UTF-8 text, so it cannot be scanned for "
                                   "identifiers: rebuild the dataset") from None


def _parquet_texts(path: Path, rel: str) -> Iterator[Text]:
    """A shard's column names, key-value metadata and every text in its cells."""
    try:
        parquet = pq.ParquetFile(path)
        table = parquet.read()
    except (pa.ArrowException, OSError) as exc:
        raise DatasetError(f"{path}: cannot read parquet shard ({exc}); rebuild the dataset") from None
    yield Text(f"{rel}: column names", "\n".join(table.column_names), lines=True)
    metadata = {**(parquet.metadata.metadata or {}), **(table.schema.metadata or {})}
    for k, v in metadata.items():
        yield Text(f"{rel}: metadata {k.decode('utf-8', 'replace')!r}",
                   k.decode("utf-8", "replace") + "\n" + v.decode("utf-8", "replace"))
    if parquet.metadata.created_by:
        yield Text(f"{rel}: created_by", parquet.metadata.created_by)
    for name in table.column_names:
        seen: set[str] = set()
        for row, value in enumerate(table.column(name).to_pylist()):
            for part, text in _cell_texts(value):
                if text not in seen:  # one finding per distinct text is enough
                    seen.add(text)
                    yield Text(f"{rel}: column {name}{part}, row {row}", text)


def _cell_texts(value: Any, part: str = "") -> Iterator[tuple[str, str]]:
    """(part, text) for every text in a cell: strings, struct fields, list items, PNG chunks."""
    if isinstance(value, str):
        yield part, value
    elif isinstance(value, bytes):
        for i, text in enumerate(png_texts(value)):
            yield f"{part} (PNG text chunk {i + 1})", text
    elif isinstance(value, dict):
        for k, v in value.items():
            yield from _cell_texts(v, f"{part}.{k}")
    elif isinstance(value, list):
        for v in value:
            yield from _cell_texts(v, part)


def png_texts(data: bytes) -> list[str]:
    """The text of every ``tEXt``, ``zTXt``, ``iTXt`` and ``eXIf`` chunk of a PNG (keyword and
    text; EXIF bytes as Latin-1), wherever it lies, and, as Latin-1, the bodies of chunks that
    hold no pixels (any but ``IHDR``, ``PLTE``, ``IDAT``, ``IEND``: a private chunk can carry a
    name) and whatever follows ``IEND``; ``[]`` for bytes that are not a PNG."""
    if not data.startswith(_PNG):
        return []
    out, pos = [], len(_PNG)
    while pos + 8 <= len(data):
        length, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + length]
        pos += 12 + length  # length, type, data, CRC
        if kind in _TEXT_CHUNKS:
            out.append(_chunk_text(kind, body))
        elif kind == b"IEND":
            break
        elif kind not in _IMAGE_CHUNKS:
            out.append(body.decode("latin-1"))
    if pos < len(data):
        out.append(data[pos:].decode("latin-1"))
    return out


#: Chunks that hold the image itself (read, not scanned).
_IMAGE_CHUNKS = (b"IHDR", b"PLTE", b"IDAT", b"IEND")


def _chunk_text(kind: bytes, body: bytes) -> str:
    if kind == b"eXIf":
        return body.decode("latin-1")
    keyword, _, rest = body.partition(b"\0")
    if kind == b"tEXt":
        return f"{keyword.decode('latin-1')}\n{rest.decode('latin-1')}"
    if kind == b"zTXt":
        return f"{keyword.decode('latin-1')}\n{_inflate(rest[1:]).decode('latin-1')}"
    compressed = rest[:1] == b"\x01"  # iTXt: flag, method, language NUL, keyword NUL, text
    language, _, rest = rest[2:].partition(b"\0")
    translated, _, text = rest.partition(b"\0")
    text = _inflate(text) if compressed else text
    return "\n".join(p.decode("utf-8", "replace") for p in (keyword, language, translated, text))


def _inflate(data: bytes) -> bytes:
    try:
        return zlib.decompressobj().decompress(data, _MAX_INFLATED)
    except zlib.error:
        return data  # not compressed after all: scan the bytes as they are
