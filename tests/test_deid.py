"""Keyed pseudonyms, the key file, age and sex reduction, identifier matching."""

from __future__ import annotations

import hashlib
import hmac
import stat

import pytest

from thyroid_bench.data.dicom.deid import (
    KEY_BYTES,
    PSEUDONYM_HEX_CHARS,
    Pseudonymizer,
    IdentifierIndex,
    age_in_years,
    key_id,
    load_or_create_key,
    normalise_sex,
)
from thyroid_bench.errors import DatasetError


def test_key_is_created_private_and_reused(tmp_path):
    path = tmp_path / "keys" / "pseudonym.key"
    key, created = load_or_create_key(path)
    assert created and len(key) == KEY_BYTES
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    again, created_again = load_or_create_key(path)
    assert again == key and not created_again
    other, _ = load_or_create_key(tmp_path / "other.key")
    assert other != key


def test_short_key_file_is_refused(tmp_path):
    path = tmp_path / "k"
    path.write_bytes(b"short")
    with pytest.raises(DatasetError, match="5 bytes"):
        load_or_create_key(path)


def test_pseudonym_is_the_documented_hmac():
    key = bytes(range(32))
    p = Pseudonymizer(key)
    uid = "1.2.3.4.5"
    expected = hmac.new(key, b"thyroid-bench/v1/case\x00" + uid.encode(), hashlib.sha256).hexdigest()
    assert p.case(uid) == "c-" + expected[:PSEUDONYM_HEX_CHARS]
    # Without an issuer the patient is (centre, Patient ID); with one (issuer, Patient ID).
    expected_patient = hmac.new(key, b"thyroid-bench/v1/patient\x00centre\x00c1\x00MRN1",
                                hashlib.sha256).hexdigest()
    assert p.patient("c1", "", "MRN1") == "p-" + expected_patient[:PSEUDONYM_HEX_CHARS]
    expected_issued = hmac.new(key, b"thyroid-bench/v1/patient\x00issuer\x00ISS\x00MRN1",
                               hashlib.sha256).hexdigest()
    assert p.patient("c1", "ISS", "MRN1") == p.patient("c2", "ISS", "MRN1") == \
        "p-" + expected_issued[:PSEUDONYM_HEX_CHARS]
    expected_study = hmac.new(key, b"thyroid-bench/v1/study\x00study\x001.2.9", hashlib.sha256)
    assert p.study("1.2.9", uid) == "s-" + expected_study.hexdigest()[:PSEUDONYM_HEX_CHARS]


def test_pseudonyms_stable_per_key_and_separated():
    a, a2, b = Pseudonymizer(b"k" * 32), Pseudonymizer(b"k" * 32), Pseudonymizer(b"j" * 32)
    assert a.case("1.2.3") == a2.case("1.2.3")
    assert a.case("1.2.3") != b.case("1.2.3")
    # The centre is part of the patient input: ID 1001 at two hospitals is two people.
    assert a.patient("c1", "", "1001") != a.patient("c2", "", "1001")
    # NUL separation: shifting characters between parts changes the pseudonym.
    assert a.patient("c1", "A", "B") != a.patient("c1", "", "AB")
    assert key_id(b"k" * 32) == key_id(b"k" * 32) != key_id(b"j" * 32)


@pytest.mark.parametrize("age, birth, study, expected", [
    ("045Y", None, None, 45),
    ("018M", None, None, 1),
    ("006W", None, None, 0),
    ("400D", None, None, 1),           # 400 / 365.2425 = 1.09
    (None, "19800615", "20200614", 39),  # one day before the 40th birthday
    (None, "19800615", "20200615", 40),
    ("", "20000229", "20210228", 20),  # leap-day birthday not yet reached
    (None, "19800615", None, None),
    (None, "1980-06-15", "20200615", None),  # not DA format
    ("200Y", None, None, None),        # out of range
    (None, "20200101", "20100101", None),  # study before birth
])
def test_age_in_whole_years(age, birth, study, expected):
    assert age_in_years(age, birth, study) == expected


def test_sex_is_reduced_to_three_values():
    assert [normalise_sex(v) for v in ("F", "m ", "O", "", None, "X")] == \
        ["F", "M", "unknown", "unknown", "unknown", "unknown"]


def test_identifier_matching_in_paths():
    index = IdentifierIndex(["DOE^JOHN", "Saint Mary Hospital"], ["12345678", "1.2.840.1", "7", "ab3"])
    assert index.mentions("DOE^JOHN/scan1.dcm")
    assert index.mentions("export/john/1.dcm")            # a name part, any case
    assert index.mentions("pt12345678_thyroid.dcm")       # an ID inside a file name
    assert index.mentions("x/1.2.840.1/y.dcm")            # a UID
    assert index.mentions("AB3/1.dcm")                    # a 3-character ID as a word
    assert not index.mentions("center1/00007/00.dcm")     # 1-character ID ignored
    assert not index.mentions("johnson/1.dcm")            # not the word JOHN
    assert not index.mentions("ab34/1.dcm")               # not the word AB3
    assert not index.mentions("1234567/1.dcm")            # a prefix of the ID is not the ID
