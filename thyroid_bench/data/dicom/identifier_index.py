"""The archive's identifier index, kept for ``publish``: keyed hashes, never identifiers in clear.

``thyroid-bench prepare --source dicom`` reads every identifier of the archive's headers (names,
IDs, UIDs, dates: :data:`~thyroid_bench.data.dicom.deid.IDENTIFIER_KEYWORDS`) to keep them out
of what it writes (:class:`~thyroid_bench.data.dicom.deid.IdentifierIndex`, in memory). A dataset
folder can still gain one later: an organiser edits the card, a tool rewrites a shard. So that
``thyroid-bench publish`` can make a last check of every text it uploads, prepare keeps the index
beside the key file and the organiser's report (:func:`identifier_index_path`,
``identifiers-<name>-<version>.json``, readable by its owner only), outside any dataset folder,
and without any identifier in clear: each entry is a keyed hash,

    HMAC-SHA-256(key, "thyroid-bench/v1/identifier" NUL phrase), first 24 hex digits (96 bits),

under the pseudonym key (:mod:`~thyroid_bench.data.dicom.deid`), with a domain of its own so no
entry equals a published pseudonym. Without the key an entry cannot be tested against a guess;
with it, only a guessed identifier can be confirmed, as with the pseudonyms.

What is matched, and why (a text is checked by hashing its word n-grams the same way):

* A text is cut into words: runs of letters and digits (any script; ``_`` and punctuation
  separate), each ideograph, kana or hangul syllable a word of its own (names in those scripts
  are written without spaces). Accents and case are ignored (``Östergaard`` = ``OSTERGAARD``),
  and full-width forms are folded (NFKD).
* An identifier is matched as a whole phrase: its words, consecutive, in order (``1.2.840.1``
  matches ``1 2 840 1`` and ``1-2-840-1``). A person's name (DICOM ``Family^Given^Middle``)
  also matches with the family name last (``Given Middle Family``); an eight-digit date also as
  ``YYYY MM DD``, ``DD MM YYYY`` and ``MM DD YYYY``, with or without leading zeros
  (``2021-03-04``, ``04.03.2021``, ``3/4/2021``).
* Not indexed, because ordinary text would match them and refuse every publication: a single
  word of a longer name (``An``, ``Long`` and ``Minh`` are names, words and cited authors), a
  phrase shorter than four letters (an ideograph counts two), a number of fewer than
  :data:`MIN_DIGITS` digits (counts, years and small study numbers fill a card and a manifest),
  and the placeholders anonymisers write for a missing value (:data:`PLACEHOLDERS`).
* Not found, therefore: an ID glued to other letters (``P12345`` for ID ``12345``; a file name
  is another matter, and publish uploads only the dataset's own file names) or a name spelt
  otherwise than in the header.
"""

from __future__ import annotations

import hmac
import json
import re
import unicodedata
from collections.abc import Iterable
from datetime import date
from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from thyroid_bench.atomic import atomic_write_private
from thyroid_bench.data.dicom.deid import IdentifierIndex, key_id
from thyroid_bench.errors import DatasetError, os_error_line, printable, validation_problems

__all__ = [
    "INDEX_FORMAT",
    "MIN_DIGITS",
    "MIN_WEIGHT",
    "PLACEHOLDERS",
    "identifier_index_path",
    "words",
    "identifier_phrases",
    "KeyedIdentifierIndex",
    "IdentifierIndexFile",
    "ArchiveIdentifiers",
    "write_identifier_index",
    "write_keyed_index",
    "read_identifier_index",
]

INDEX_FORMAT = "thyroid-bench identifier index"
#: A phrase made only of digits is indexed from this many digits on (a 6-digit ID or an 8-digit
#: date is; a count of 1040 rows or the year 2021 is not taken for an identifier).
MIN_DIGITS = 6
#: A phrase's weight (letters and digits, an ideograph counting two) must reach this.
MIN_WEIGHT = 4
#: Placeholders anonymisers and modalities write for a missing identifier: not identifiers.
PLACEHOLDERS = frozenset({
    "anon", "anonymous", "anonymized", "anonymised", "anonymous patient", "unknown", "none",
    "null", "n a", "na", "not available", "removed", "deleted", "redacted", "patient", "test",
    "phantom", "qc", "demo", "no name", "noname",
})
_DOMAIN = b"thyroid-bench/v1/identifier\x00"
_HEX = 24
_FOLD_AT = 1 << 16  # pending digests before the first fold into the sorted array
_SCRIPTS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uac00-\ud7af\U00020000-\U0003134f"
_WORD = re.compile(rf"[{_SCRIPTS}]|[^\W_{_SCRIPTS}]+")
_ONE_CHAR_WORD = re.compile(rf"[{_SCRIPTS}]")


def identifier_index_path(key_file: Path, name: str, version: str) -> Path:
    """Where prepare keeps the identifier index of dataset ``name`` ``version``: beside the key
    file (``identifiers-<name>-<version>.json``), like the organiser's report."""
    return Path(key_file).expanduser().parent / f"identifiers-{name}-{version}.json"


def _fold(text: str) -> str:
    """Compatibility decomposition, combining marks dropped, recomposed (hangul syllables stay
    syllables), case folded; line breaks kept."""
    decomposed = unicodedata.normalize("NFKD", text)
    bare = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return unicodedata.normalize("NFC", bare).casefold()


def words(text: str) -> list[tuple[str, int]]:
    """The words of ``text`` as (folded word, line number from 1), in order."""
    folded = _fold(text)
    out, line, last = [], 1, 0
    for m in _WORD.finditer(folded):
        line += folded.count("\n", last, m.start())
        last = m.start()
        out.append((m.group(), line))
    return out


def _distinctive(phrase: list[str]) -> bool:
    if not phrase or " ".join(phrase) in PLACEHOLDERS:
        return False
    if all(w.isdigit() for w in phrase):  # str.isdigit: any script's digits
        return sum(len(w) for w in phrase) >= MIN_DIGITS
    return sum(2 if _ONE_CHAR_WORD.fullmatch(w) else len(w) for w in phrase) >= MIN_WEIGHT


def _date_forms(value: str) -> list[list[str]]:
    if not re.fullmatch(r"\d{8}", value):
        return []
    try:
        date(int(value[:4]), int(value[4:6]), int(value[6:]))
    except ValueError:
        return []
    year, forms = value[:4], []
    for month, day in {(value[4:6], value[6:]), (value[4:6].lstrip("0"), value[6:].lstrip("0"))}:
        forms += [[year, month, day], [day, month, year], [month, day, year]]  # ISO, European, US
    return forms


def identifier_phrases(value: object, *, name: bool = False) -> set[str]:
    """The phrases (folded words joined by one space) that stand for identifier ``value``: the
    value itself, a person name's given-names-first form (``name``), a date's written forms;
    only the distinctive ones (module docstring)."""
    text = str(value or "").strip()
    forms = [[w for w, _ in words(text)]] + _date_forms(text)
    if name:
        for group in text.split("="):  # alphabetic = ideographic = phonetic representations
            parts = [[w for w, _ in words(p)] for p in group.split("^")]
            family, given = parts[0], [w for p in parts[1:] for w in p]
            forms += [family + given, given + family]
    return {" ".join(f) for f in forms if _distinctive(f)}


def _digest(key: bytes, phrase: str) -> bytes:
    return hmac.digest(key, _DOMAIN + phrase.encode("utf-8", "surrogatepass"), "sha256")[:_HEX // 2]


def _mac(key: bytes, phrase: str) -> str:
    return _digest(key, phrase).hex()



def _phrases(names: Iterable[object], exact: Iterable[object]) -> set[str]:
    """The phrases of header values matched in text: ``names`` by :func:`identifier_phrases`
    with ``name=True``, ``exact`` values without."""
    return ({p for v in names for p in identifier_phrases(v, name=True)}
            | {p for v in exact for p in identifier_phrases(v)})

class KeyedIdentifierIndex:
    """Keyed hashes of an archive's identifier phrases, and the search of a text for them."""

    def __init__(self, key: bytes, hashes: Iterable[str], lengths: Iterable[int]) -> None:
        self.key = bytes(key)
        self.hashes = frozenset(hashes)
        self.lengths = tuple(sorted(set(lengths)))  # words per indexed phrase

    @classmethod
    def build(cls, key: bytes, names: Iterable[object], exact: Iterable[object]) -> KeyedIdentifierIndex:
        """The index of header values: ``names`` (patient, physician, institution, station
        names) and ``exact`` values (IDs, UIDs, accession numbers, dates)."""
        phrases = _phrases(names, exact)
        return cls(key, (_mac(key, p) for p in phrases), (p.count(" ") + 1 for p in phrases))

    def __len__(self) -> int:
        return len(self.hashes)

    def find(self, text: str) -> list[int]:
        """The line numbers (from 1, each once) of ``text`` where an indexed phrase begins."""
        found: dict[int, None] = {}
        ws = words(text)
        for i in range(len(ws)):
            for n in self.lengths:
                if i + n > len(ws):
                    break
                if _mac(self.key, " ".join(w for w, _ in ws[i:i + n])) in self.hashes:
                    found[ws[i][1]] = None
                    break
        return list(found)

    def mentions(self, text: str) -> bool:
        """Whether ``text`` holds an indexed phrase."""
        return bool(self.find(text))


class IdentifierIndexFile(BaseModel):
    """The index file prepare writes beside the key (``identifiers-<name>-<version>.json``)."""

    model_config = ConfigDict(extra="forbid")

    format: Literal["thyroid-bench identifier index"] = INDEX_FORMAT
    format_version: Literal[1] = 1
    dataset: str = Field(max_length=128)
    version: str = Field(max_length=32)
    key_id: str = Field(pattern=r"^[0-9a-f]{16}$", description="the key's public id (deid.key_id)")
    method: str = (f"HMAC-SHA-256(key, 'thyroid-bench/v1/identifier' NUL phrase), first {_HEX} hex "
                   "digits; a phrase is an identifier's folded words joined by one space")
    phrase_words: list[int] = Field(description="the word counts of the indexed phrases")
    hashes: list[str] = Field(description="sorted keyed hashes")


class ArchiveIdentifiers:
    """An archive's identifier values, gathered file by file as it is read (:meth:`add`) and
    hashed as they arrive: the in-memory :class:`~thyroid_bench.data.dicom.deid.IdentifierIndex`
    (hashed, compact) that checks every text before it is published, and the keyed hashes of
    their phrases (:func:`_mac`, twelve bytes each, each once) for the index
    :func:`write_keyed_index` writes at the end (:meth:`keyed`). No value is kept in clear, in
    memory or on disk; the keyed index is the one :meth:`KeyedIdentifierIndex.build` makes of
    the same values."""

    def __init__(self, key: bytes) -> None:
        self.index = IdentifierIndex()
        self._key = bytes(key)
        self._pending: set[bytes] = set()  # digests since the last fold
        self._folded = np.empty(0, dtype=f"S{_HEX // 2}")  # unique digests (numpy: 12 bytes each)
        self._lengths: set[int] = set()

    def add(self, names: Iterable[object], exact: Iterable[object]) -> None:
        """The identifier values of one more file: ``names`` (people, institutions, stations)
        and ``exact`` values (IDs, UIDs, dates)."""
        names, exact = tuple(names), tuple(exact)
        self.index.add(names, exact)
        for phrase in _phrases(names, exact):
            self._pending.add(_digest(self._key, phrase))
            self._lengths.add(phrase.count(" ") + 1)
        # Fold when the pending set reaches a quarter of the folded array (amortised n log n).
        if len(self._pending) >= max(_FOLD_AT, len(self._folded) // 4):
            self._fold()

    def _fold(self) -> None:
        if self._pending:
            pending = np.array(sorted(self._pending), dtype=self._folded.dtype)
            self._folded = np.union1d(self._folded, pending)
            self._pending = set()

    def keyed(self) -> KeyedIdentifierIndex:
        """The keyed index of every value added (hexadecimal hashes, as the index file holds)."""
        self._fold()
        raw, size = self._folded.tobytes(), self._folded.dtype.itemsize  # tobytes: trailing NULs kept
        return KeyedIdentifierIndex(self._key, (raw[i:i + size].hex() for i in range(0, len(raw), size)),
                                    self._lengths)


def write_identifier_index(path: Path, key: bytes, name: str, version: str, *,
                           names: Iterable[object], exact: Iterable[object]) -> Path:
    """Build the index of these header values and write it at ``path`` atomically, readable by
    its owner only; an OS error is one line naming the path."""
    return write_keyed_index(path, KeyedIdentifierIndex.build(key, names, exact), name, version)


def write_keyed_index(path: Path, index: KeyedIdentifierIndex, name: str, version: str) -> Path:
    """Write ``index`` (e.g. :meth:`ArchiveIdentifiers.keyed`) at ``path`` atomically, readable
    by its owner only; an OS error is one line naming the path."""
    record = IdentifierIndexFile(dataset=name, version=version, key_id=key_id(index.key),
                                 phrase_words=list(index.lengths), hashes=sorted(index.hashes))
    try:
        return atomic_write_private(path, (record.model_dump_json(indent=1) + "\n").encode("utf-8"))
    except OSError as exc:
        raise DatasetError(os_error_line(
            exc, "writing the identifier index that `publish` scans against (the dataset itself "
                 "is written)", "make the key file's folder writable and prepare again with "
                                "--force")) from None


def read_identifier_index(path: Path, key: bytes, name: str, version: str) -> KeyedIdentifierIndex:
    """Read the index of dataset ``name`` ``version`` at ``path``, made with ``key``; a
    :class:`DatasetError` says what is wrong (missing, another dataset's, another key's)."""
    path = Path(path)
    try:
        record = IdentifierIndexFile.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except FileNotFoundError:
        raise DatasetError(
            f"no identifier index at {printable(path)}: prepare --source dicom keeps it beside the "
            "key file (versions prepared before thyroid-bench kept one have none): prepare the "
            "version again with the same key and --force (pseudonyms and fingerprint stay the "
            "same), then publish") from None
    except OSError as exc:
        raise DatasetError(os_error_line(exc, "reading the identifier index")) from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise DatasetError(f"{printable(path)} is not an identifier index ({type(exc).__name__}); prepare the "
                           "version again with the same key and --force") from None
    except ValidationError as exc:
        raise DatasetError(f"{printable(path)} is not an identifier index of this thyroid-bench: "
                           f"{validation_problems(exc, 3)}") from None
    if (record.dataset, record.version) != (name, version):
        raise DatasetError(f"{printable(path)} indexes {record.dataset} {record.version}, not "
                           f"{name} {version}")
    if record.key_id != key_id(key):
        raise DatasetError(f"{printable(path)} was made with key id {record.key_id}, not with "
                           f"this key (key id {key_id(key)}): pass the --key-file prepare used")
    return KeyedIdentifierIndex(key, record.hashes, record.phrase_words)
