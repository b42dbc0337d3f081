"""The labels CSV: accepted forms and errors that name the line, for the task it labels."""

from __future__ import annotations

import pytest

from thyroid_bench.data.dicom.labels_csv import LabelRow, normalise_relpath, read_labels_csv
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import (
    MainScore,
    Reference,
    Target,
    Task,
    TaskClass,
    get_task,
    register_task,
    unregister_task,
)

FOUR = get_task("four-pattern")
# A two-class task defined here alone: the labels CSV reader must need no change for it.
TOY = Task(
    name="toy-residual",
    description="residual thyroid tissue after thyroidectomy, yes or no (a test task)",
    reference=Reference(citation="tests/test_labels_csv.py"),
    modality="test phantoms",
    target=Target(kind="binary", classes=(
        TaskClass(index=0, name="no_residue", code="R0", aliases=("clean",)),
        TaskClass(index=1, name="residue", code="R1"),
    )),
    main_score=MainScore(metric="macro_f1", split="external"),
)


@pytest.fixture
def toy_task():
    yield register_task(TOY)
    unregister_task(TOY.name)


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
    rows, has_split = read_labels_csv(path, FOUR)
    assert not has_split
    assert rows == [LabelRow(line=2, label=0, center="c1", path="a/1.dcm"),
                    LabelRow(line=3, label=1, center="c1", path="a/2.dcm"),
                    LabelRow(line=5, label=3, center="c2", path="b/3.dcm")]


def test_sop_instance_uid_and_split_columns(tmp_path):
    path = _write(tmp_path, "sop_instance_uid,label,center,split\n1.2.3,IV,c1,Internal\n")
    rows, has_split = read_labels_csv(path, FOUR)
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
        read_labels_csv(path, FOUR)
    msg = str(err.value)
    assert "7 problem(s)" in msg
    for line, words in [(2, "type V"), (3, "label is empty"), (4, "center is empty"),
                        (5, "already listed on line 2"), (6, "must be relative"),
                        (7, "'test' is not one of"), (8, "neither path nor sop_instance_uid")]:
        assert f"line {line}: " in msg and words in msg


def test_missing_columns_and_empty_files(tmp_path):
    with pytest.raises(DatasetError, match=r"missing column\(s\) \['center'\].*spell it 'center'"):
        read_labels_csv(_write(tmp_path, "path,label,centre\na,I,c1\n"), FOUR)
    with pytest.raises(DatasetError, match="path or sop_instance_uid"):
        read_labels_csv(_write(tmp_path, "file,label,center\na,I,c1\n"), FOUR)
    with pytest.raises(DatasetError, match="no rows"):
        read_labels_csv(_write(tmp_path, "path,label,center\n"), FOUR)
    with pytest.raises(DatasetError, match="not found"):
        read_labels_csv(tmp_path / "nope.csv", FOUR)


def test_labels_of_another_task_are_its_classes(tmp_path, toy_task):
    path = _write(tmp_path, "path,label,center\n"
                  "a.dcm,residue,c1\n"
                  "b.dcm, r0 ,c1\n"      # its code, case and spaces ignored
                  "c.dcm,clean,c2\n"     # an alias
                  "d.dcm,1,c2\n")        # the class index
    rows, has_split = read_labels_csv(path, toy_task)
    assert not has_split
    assert [(r.line, r.label, r.path) for r in rows] == [(2, 1, "a.dcm"), (3, 0, "b.dcm"),
                                                         (4, 0, "c.dcm"), (5, 1, "d.dcm")]


def test_four_pattern_labels_are_refused_for_another_task(tmp_path, toy_task):
    path = _write(tmp_path, "path,label,center\n"
                  "a.dcm,focal_increased,c1\n"
                  "b.dcm,III,c1\n"
                  "c.dcm,2,c1\n"
                  "d.dcm,,c1\n"
                  "e.dcm,R1,c1\n")
    with pytest.raises(DatasetError) as err:
        read_labels_csv(path, toy_task)
    msg = str(err.value)
    assert msg.startswith(f"{path}: 4 problem(s) in the labels CSV")
    accepted = "no_residue (R0), residue (R1)"
    for line, value in [(2, "focal_increased"), (3, "III"), (4, "2")]:
        assert f"line {line}: label {value!r} is not a class; expected one of {accepted}" in msg
    assert f"line 5: the label is empty: every study needs one ({accepted})" in msg
    assert "line 6" not in msg
    # The same file is a valid four-pattern CSV but for the empty and the R1 label.
    with pytest.raises(DatasetError, match=r"2 problem\(s\)"):
        read_labels_csv(path, FOUR)


@pytest.mark.parametrize("raw, expected", [
    ("a/b.dcm", "a/b.dcm"), ("a\\b.dcm", "a/b.dcm"), ("./a//b.dcm", "a/b.dcm"),
    ("a/../b.dcm", "b.dcm"), ("../b.dcm", None), ("/abs/b.dcm", None), ("C:\\b.dcm", None), ("", None),
])
def test_normalise_relpath(raw, expected):
    assert normalise_relpath(raw) == expected
