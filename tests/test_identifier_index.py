"""The archive's identifier index kept for publish (keyed hashes) and the texts of a folder it
is matched against: what counts as an identifier, what does not, and where a finding is."""

from __future__ import annotations

import io
import json
import stat
import zlib

import pytest
from PIL import Image, PngImagePlugin

from thyroid_bench.data.dicom.deid import key_id
from thyroid_bench.data.dicom import identifier_index as II
from thyroid_bench.data.dicom.identifier_index import (
    ArchiveIdentifiers,
    KeyedIdentifierIndex,
    identifier_phrases,
    read_identifier_index,
    words,
    write_identifier_index,
    write_keyed_index,
)
from thyroid_bench.data.texts import png_texts
from thyroid_bench.errors import DatasetError

KEY = bytes(range(32))
NAMES = ["NGUYEN^VAN AN", "ÖSTERGAARD^ELOWEN", "山田^太郎", "Halcyon Ridge Thyroid Institute",
         "UNKNOWN", "AN"]
EXACT = ["MRN12345678", "20210304", "1.2.840.113619.2.55", "1040", "A7"]


@pytest.fixture
def index():
    return KeyedIdentifierIndex.build(KEY, NAMES, EXACT)


def test_words_fold_case_accents_and_width_and_split_ideographs():
    assert words("Östergaard,\nＡＢＣ 山田太郎さん foo_bar") == [
        ("ostergaard", 1), ("abc", 2), ("山", 2), ("田", 2), ("太", 2), ("郎", 2), ("さ", 2),
        ("ん", 2), ("foo", 2), ("bar", 2)]


def test_which_phrases_are_identifiers():
    assert identifier_phrases("NGUYEN^VAN AN", name=True) == {"nguyen van an", "van an nguyen"}
    assert identifier_phrases("20210304") == {"20210304", "2021 03 04", "04 03 2021", "03 04 2021",
                                              "2021 3 4", "4 3 2021", "3 4 2021"}  # ISO, EU, US
    assert identifier_phrases("20211304") == {"20211304"}  # not a date: the number only
    assert identifier_phrases("山田^太郎", name=True) == {"山 田 太 郎", "太 郎 山 田"}
    # too short, too common or a placeholder: matching them would refuse every card
    for value in ("AN", "A7", "1040", "12345", "UNKNOWN", "N/A", "Anonymous"):
        assert identifier_phrases(value, name=True) == set(), value
    assert identifier_phrases("123456") == {"123456"}


def test_the_index_finds_identifiers_as_written_and_says_the_line(index):
    text = ("Counts: 1040 train, 12345 seen; the sex column says unknown; an anterior view.\n"
            "Seen by Van An Nguyen on 04.03.2021.\n"
            "Ostergaard Elowen, MRN12345678 (uid 1-2-840-113619-2-55)\n"
            "患者山田太郎さん at the halcyon ridge thyroid institute\n")
    assert index.find(text) == [2, 3, 4]
    assert index.mentions("a US chart: seen 3/4/2021") and index.mentions("seen 2021-3-4")
    assert not index.mentions("Lai, Phu Minh; Nguyen alone; Van An; Elowen Smith; 2021")
    assert not index.mentions("c-0a1b2c3d4e5f6a7b8c9d0e1f, fingerprint 6975cd6db07491e38703")
    assert not index.mentions("PMRN12345678 glued to a word is another word")


def test_index_file_holds_keyed_hashes_only_and_is_private(tmp_path):
    path = write_identifier_index(tmp_path / "identifiers-x-1.0.0.json", KEY, "x", "1.0.0",
                                  names=NAMES, exact=EXACT)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    for value in ("nguyen", "van an", "ostergaard", "halcyon", "12345678", "2021", "113619"):
        assert value not in text.lower()
    record = json.loads(text)
    assert record["key_id"] == key_id(KEY) and record["dataset"] == "x"
    assert len(record["hashes"]) == len(set(record["hashes"])) == 16  # 2+2+2+1 names, 1+7+1 exact
    assert all(len(h) == 24 for h in record["hashes"])
    back = read_identifier_index(path, KEY, "x", "1.0.0")
    assert back.mentions("Thaddeus and Van An Nguyen") and back.lengths == (1, 2, 3, 4, 6)
    # Another key hashes to other values: the same file is useless without the key.
    assert not KeyedIdentifierIndex(b"\x01" * 32, back.hashes, back.lengths).mentions("Van An Nguyen")


@pytest.mark.parametrize("fold_at", [1 << 16, 2])
def test_archive_identifiers_hash_as_they_arrive_and_write_the_same_index(tmp_path, monkeypatch,
                                                                          fold_at):
    """Values added file by file (repeated, as a patient's name is) are hashed at once and
    nothing is written until the end; the index file is byte for byte the one built from all
    the values at once (with folds of the pending hashes into the sorted array, fold_at=2)."""
    monkeypatch.setattr(II, "_FOLD_AT", fold_at)
    found = ArchiveIdentifiers(KEY)
    for i in range(0, 6, 2):
        found.add(NAMES[i:i + 2] + NAMES[:1], EXACT[i:i + 2] + EXACT[:1])
    assert list(tmp_path.iterdir()) == []
    kept = [v for k, v in vars(found).items() if k not in ("index", "_key", "_lengths")]
    assert all(isinstance(d, bytes) and len(d) == 12 for d in kept[0])  # pending: 96-bit digests
    assert kept[1].dtype.itemsize == 12
    assert found.index.mentions("seen by NGUYEN")  # the in-memory index for texts, as before
    want = write_identifier_index(tmp_path / "want.json", KEY, "x", "1.0.0", names=NAMES, exact=EXACT)
    got = write_keyed_index(tmp_path / "got.json", found.keyed(), "x", "1.0.0")
    assert got.read_bytes() == want.read_bytes()
    assert len(json.loads(got.read_text())["hashes"]) == 16


def test_reading_an_index_that_does_not_fit_is_an_error(tmp_path):
    path = write_identifier_index(tmp_path / "i.json", KEY, "x", "1.0.0", names=NAMES, exact=[])
    with pytest.raises(DatasetError, match=r"indexes x 1.0.0, not y 1.0.0"):
        read_identifier_index(path, KEY, "y", "1.0.0")
    with pytest.raises(DatasetError, match=r"was made with key id [0-9a-f]{16}, not with this key"):
        read_identifier_index(path, b"\x02" * 32, "x", "1.0.0")
    with pytest.raises(DatasetError, match=r"no identifier index at .*missing.json: .* --force"):
        read_identifier_index(tmp_path / "missing.json", KEY, "x", "1.0.0")
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    with pytest.raises(DatasetError, match="is not an identifier index"):
        read_identifier_index(tmp_path / "bad.json", KEY, "x", "1.0.0")


def test_png_text_chunks_are_read_wherever_they_are():
    info = PngImagePlugin.PngInfo()
    info.add_text("Author", "plain text")
    info.add_text("Comment", "compressed " * 20, zip=True)
    info.add_itxt("Title", "ÜTF-8 title", lang="de", tkey="Titel")
    info.add_itxt("Note", "compressed itxt " * 10, zip=True)
    buf = io.BytesIO()
    Image.new("I;16", (4, 4)).save(buf, format="PNG", pnginfo=info)
    texts = png_texts(buf.getvalue())
    assert texts[0] == "Author\nplain text"
    assert texts[1] == "Comment\n" + "compressed " * 20
    assert texts[2] == "Title\nde\nTitel\nÜTF-8 title"
    assert texts[3] == "Note\n\n\n" + "compressed itxt " * 10
    assert png_texts(b"not a png") == []
    # a chunk after the image data counts too
    data = buf.getvalue()
    body = b"Late\0" + b"\0" + zlib.compress(b"after IDAT")
    late = len(body).to_bytes(4, "big") + b"zTXt" + body + zlib.crc32(b"zTXt" + body).to_bytes(4, "big")
    end = data.rindex(b"IEND") - 4
    assert png_texts(data[:end] + late + data[end:])[-1] == "Late\nafter IDAT"
