"""The labels CSV: accepted forms and errors that name the line."""

from __future__ import annotations

import pytest

from thyroid_bench.data.labels_csv import LabelRow, normalise_relpath, read_labels_csv
from thyroid_bench.errors import DatasetError


def _write(tmp_path, text, name="labels.csv"):
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_reads_names_types_indexes_and_ignores_extra_columns(tmp_path):
    path = _write(tmp_path, "\ufeffPath,Label,Center,notes\n"
                  "a/1.dcm,diffusely_increased,c1,whatever\n"
                  "a\\2.dcm, type II ,c1,\n"
                  "\n"
                  "./b/3.dcm,3,c2,x\n")
    rows, has_split = read_labels_csv(path)
    assert not has_split
    assert rows == [LabelRow(line=2, label=0, center="c1", path="a/1.dcm"),
                    LabelRow(line=3, label=1, center="c1", path="a/2.dcm"),
                    LabelRow(line=5, label=3, center="c2", path="b/3.dcm")]


def test_sop_instance_uid_and_split_columns(tmp_path):
    path = _write(tmp_path, "sop_instance_uid,label,center,split\n1.2.3,IV,c1,Internal\n")
    rows, has_split = read_labels_csv(path)
    assert has_split
    assert rows == [LabelRow(line=2, label=3, center="c1", sop_instance_uid="1.2.3", split="internal")]


def test_every_faulty_line_is_named(tmp_path):
    path = _write(tmp_path, "path,label,center,split\n"
                  "a.dcm,type V,c1,train\n"        # 2: unknown label
                  "b.dcm,,c1,train\n"              # 3: empty label
                  "c.dcm,I,,train\n"               # 4: empty centre
                  "a.dcm,I,c1,train\n"             # 5: duplicated path
                  "../d.dcm,I,c1,train\n"          # 6: escapes the archive
                  "e.dcm,I,c1,test\n"              # 7: unknown split
                  ",I,c1,train\n")                 # 8: no locator
    with pytest.raises(DatasetError) as err:
        read_labels_csv(path)
    msg = str(err.value)
    assert "7 problem(s)" in msg
    for line, words in [(2, "type V"), (3, "label is empty"), (4, "center is empty"),
                        (5, "already listed on line 2"), (6, "must be relative"),
                        (7, "'test' is not one of"), (8, "neither path nor sop_instance_uid")]:
        assert f"line {line}: " in msg and words in msg


def test_missing_columns_and_empty_files(tmp_path):
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['center'\].*spell it 'center'"):
        read_labels_csv(_write(tmp_path, "path,label,centre\na,I,c1\n"))
    with pytest.raises(DatasetError, match="path or sop_instance_uid"):
        read_labels_csv(_write(tmp_path, "file,label,center\na,I,c1\n"))
    with pytest.raises(DatasetError, match="no rows"):
        read_labels_csv(_write(tmp_path, "path,label,center\n"))
    with pytest.raises(DatasetError, match="not found"):
        read_labels_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize("raw, expected", [
    ("a/b.dcm", "a/b.dcm"), ("a\\b.dcm", "a/b.dcm"), ("./a//b.dcm", "a/b.dcm"),
    ("a/../b.dcm", "b.dcm"), ("../b.dcm", None), ("/abs/b.dcm", None), ("C:\\b.dcm", None), ("", None),
])
def test_normalise_relpath(raw, expected):
    assert normalise_relpath(raw) == expected
