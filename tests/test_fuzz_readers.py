"""Fuzzing (Hypothesis) the three readers that face the outside world: the labels CSV of a
DICOM archive, the predictions CSV and entry.json.

Each input, however malformed (random bytes, UTF-16 / Latin-1 / BOMs, other separators and
line ends, quotes, NaN / inf, huge and negative numbers, duplicate keys, deep nesting, byte
flips of a valid file), either loads into a value that keeps the reader's promises or raises
the package's own error (a :class:`~thyroid_bench.errors.ThyroidBenchError`) whose message
names the file; never another exception. Derandomized (``conftest.fuzz_settings``).
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import event, example, given
from hypothesis import strategies as st

from conftest import fuzz_settings
from thyroid_bench.data.dicom.labels_csv import read_labels_csv
from thyroid_bench.errors import DatasetError, PredictionsError
from thyroid_bench.evaluation.entry import Entry, EntryError, read_entry
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.tasks import PROB_SUM_TOLERANCE, SPLITS, UNKNOWN_GRADE, get_task

REPO = Path(__file__).resolve().parents[1]
TASKS = [get_task("four-pattern"), get_task("residual-tissue")]
#: Mostly UTF-8 (what loads), then the rest.
ENCODINGS = ["utf-8"] * 6 + ["utf-8-sig", "utf-16", "utf-16-le", "utf-32", "latin-1", "cp1252"]
SEPARATORS = [","] * 6 + [";", "\t", "|"]
LINE_ENDS = ["\n", "\r\n", "\r"]
NUMBERS = ["0", "1", "-1", "-0", "0.25", ".5", "+.5", "1e-400", "1e308", "1e400", "-1e400", "nan",
           "NaN", "inf", "-Infinity", "1_0", "0.2_5", "0x1p-2", "١", "٠.٥", "9" * 400, "1,5",
           "100", "100.0000001", "2**53", "4.9e-324", " 0.5 ", ""]


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    """One file, rewritten by each example."""
    return tmp_path_factory.mktemp("fuzz") / "input"


# --------------------------------------------------------------------------- byte-level tools
@st.composite
def mutated(draw, data: bytes) -> bytes:
    """``data`` with a few bytes flipped, inserted or deleted, or cut short."""
    out = bytearray(data)
    for _ in range(draw(st.integers(0, 4))):
        if not out:
            break
        i = draw(st.integers(0, len(out) - 1))
        op = draw(st.sampled_from(["flip", "insert", "delete", "cut"]))
        if op == "flip":
            out[i] = draw(st.integers(0, 255))
        elif op == "insert":
            out[i:i] = draw(st.binary(min_size=1, max_size=4))
        elif op == "delete":
            del out[i]
        else:
            del out[i:]
    return bytes(out)


def encoded(text: str, encoding: str) -> bytes:
    return text.encode(encoding, errors="replace")


def as_csv(rows: list[list[str]], sep: str, end: str, quoted: bool) -> str:
    """Rows as CSV text: written by the csv module (quotes as needed) or joined raw."""
    if quoted:
        buf = io.StringIO()
        csv.writer(buf, delimiter=sep, lineterminator=end).writerows(rows)
        return buf.getvalue()
    return "".join(sep.join(r) + end for r in rows)


CELLS = st.one_of(
    st.sampled_from(NUMBERS),
    st.sampled_from(["I", "II", "type IV", "Ⅳ", "IV\u200b", "3", "4", "absent", "high", "grade 2",
                     "present", "yes", "maybe", "train", "internal", "External", "test", "center1",
                     "c2", "a/b.dcm", "../x.dcm", "/etc/passwd", "C:\\a.dcm", "a\\b.dcm", "./a/../b",
                     "..", ".", "a\x00b", '"', '""', "'", "1.2.840.10008.1.2", "x" * 300, " "]),
    st.text(max_size=12),
)


# --------------------------------------------------------------------------- labels CSV
ODD_COLUMNS = ["path", "sop_instance_uid", "label", "grade", "present", "uptake_pct", "center",
               "split", "PATH", " Label ", "centre", "notes", ""]


@st.composite
def labels_files(draw, task) -> bytes:
    """A labels CSV of ``task``: mostly well formed (a path or UID locator, a label or grade and
    presence, a centre, a split column and uptake for some), then a few cells, columns, the
    encoding, separator or line ends made odd, perhaps bytes flipped; or random bytes."""
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300))
    detection = task.detection is not None
    header = [draw(st.sampled_from(["path", "sop_instance_uid", "PATH"])),
              draw(st.sampled_from(["grade", "label", "present"] if detection else ["label", "Label"])),
              "center", *draw(st.lists(st.sampled_from(["split", "uptake_pct", "notes"]), unique=True))]
    good = {"path": st.from_regex(r"[a-z]{1,3}(/[a-z0-9]{1,3}){0,2}\.dcm", fullmatch=True),
            "sop_instance_uid": st.from_regex(r"1\.2(\.[1-9][0-9]{0,3}){1,4}", fullmatch=True),
            "label": st.sampled_from([c.code for c in task.target.classes if c.code]
                                     + [c.name for c in task.target.classes] + ["0", " 1 "]),
            "present": st.sampled_from(["yes", "no", "1", "0", "present", "absent"]),
            "center": st.sampled_from(["center1", "center2", " c3 "]),
            "split": st.sampled_from(list(SPLITS) + ["Train"]),
            "uptake_pct": st.sampled_from(["", "0", "0.5", "12.25", "100", "1e1"]),
            "notes": st.text(max_size=8)}
    keys = [h.strip().lower() for h in header]
    keys = ["label" if k == "grade" else k for k in keys]
    rows = [[draw(good[k]) for k in keys] for _ in range(draw(st.integers(1, 6)))]
    for _ in range(draw(st.integers(0, 3))):  # odd cells, columns or rows
        what = draw(st.sampled_from(["cell", "cell", "column", "row"]))
        if what == "cell":
            row = draw(st.sampled_from(rows))
            if row:
                row[draw(st.integers(0, len(row) - 1))] = draw(CELLS)
        elif what == "column":
            header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(ODD_COLUMNS))
        else:
            rows.append(draw(st.lists(CELLS, max_size=len(header) + 1)))
    text = as_csv([header, *rows], draw(st.sampled_from(SEPARATORS)),
                  draw(st.sampled_from(LINE_ENDS)), draw(st.booleans()))
    data = encoded(text, draw(st.sampled_from(ENCODINGS)))
    return draw(mutated(data)) if draw(st.integers(0, 3)) == 0 else data


def _check_label_rows(rows, has_split: bool, task) -> None:
    """What read_labels_csv promises of the rows it returns."""
    assert rows
    for r in rows:
        assert 0 <= r.label < task.num_classes or (r.label == UNKNOWN_GRADE and task.detection)
        assert r.center and r.center == r.center.strip()
        assert r.path is not None or r.sop_instance_uid
        if r.path is not None:
            assert not r.path.startswith(("/", "../")) and r.path not in (".", "..")
        assert (r.split in SPLITS) if has_split else r.split is None
        assert r.value is None or (math.isfinite(r.value) and 0 <= r.value <= 100)


@fuzz_settings(150)
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), labels_files(t))))
@example(case=(TASKS[0], b"path,label,center\n" + b"a" * 200_000 + b",I,c1\n"))  # > csv's limit
@example(case=(TASKS[0], "path,label,center\na.dcm,I,c1\n".encode("utf-16")))
@example(case=(TASKS[0], b"\xef\xbb\xbfpath;label;center\r\na.dcm;I;c1\r\n"))
@example(case=(TASKS[1], b"path,grade,center,uptake_pct\na.dcm,2,c1,1e400\nb.dcm,1,c1,nan\n"))
def test_labels_csv_loads_or_refuses_with_its_own_error(scratch, case):
    task, data = case
    scratch.write_bytes(data)
    try:
        rows, has_split = read_labels_csv(scratch, task)
    except DatasetError as exc:
        assert str(scratch) in str(exc)
        event("refused")
        return
    event("loaded")
    _check_label_rows(rows, has_split, task)


# --------------------------------------------------------------------------- predictions CSV
@st.composite
def predictions_files(draw, task) -> tuple[bytes, list[str] | None]:
    """A predictions CSV of ``task``: mostly well formed (columns in any order, a label and the
    regression column for some), then a few cells, columns or rows made odd (numbers of every
    spelling), in some encoding and dialect, perhaps bytes flipped; the split's case ids or
    None; sometimes random bytes."""
    ids = [f"c{i}" for i in range(draw(st.integers(1, 4)))]
    if draw(st.integers(0, 9)) == 0:
        return draw(st.binary(max_size=300)), ids
    optional = [*([task.regression_target] if task.regression_target else []), "label"]
    header = draw(st.permutations(["case_id", *task.prob_columns,
                                   *draw(st.lists(st.sampled_from(optional), unique=True))]))
    probs = np.random.default_rng(draw(st.integers(0, 2**16))).dirichlet(np.ones(task.num_classes),
                                                                         size=len(ids))
    labels = [c.name for c in task.target.classes] + [str(c.index) for c in task.target.classes]
    labels += [task.detection.present_label] if task.detection else []
    rows = []
    for i, cid in enumerate(ids):
        cells = {"case_id": cid, "label": draw(st.sampled_from(labels)),
                 **{c: draw(st.sampled_from([repr(float(probs[i, j])), f"{probs[i, j]:.17g}"]))
                    for j, c in enumerate(task.prob_columns)},
                 **({task.regression_target: draw(st.sampled_from(["", "0", "12.5", "100"]))}
                    if task.regression_target else {})}
        rows.append([cells[h] for h in header])
    for _ in range(draw(st.integers(0, 3))):  # odd cells, columns or rows
        what = draw(st.sampled_from(["cell", "cell", "column", "row", "repeat"]))
        if what == "cell":
            row = draw(st.sampled_from(rows))
            if row:
                row[draw(st.integers(0, len(row) - 1))] = draw(st.one_of(st.sampled_from(NUMBERS), CELLS))
        elif what == "column":
            header[draw(st.integers(0, len(header) - 1))] = draw(st.sampled_from(
                ["case_id", "Case_ID", "prob_other", "label", "", *task.prob_columns]))
        elif what == "row":
            rows.append(draw(st.lists(st.one_of(st.sampled_from(NUMBERS), CELLS), max_size=len(header) + 1)))
        else:
            rows.append(list(draw(st.sampled_from(rows))))
    text = as_csv([header, *rows], draw(st.sampled_from(SEPARATORS)),
                  draw(st.sampled_from(LINE_ENDS)), draw(st.booleans()))
    data = encoded(text, draw(st.sampled_from(ENCODINGS)))
    data = draw(mutated(data)) if draw(st.integers(0, 3)) == 0 else data
    return data, ids if draw(st.booleans()) else None


def _check_predictions(preds, task, expected) -> None:
    """What read_predictions promises of what it returns."""
    assert len(preds.case_ids) == len(set(preds.case_ids)) == preds.probs.shape[0] > 0
    assert all(c and c == c.strip() for c in preds.case_ids)
    assert preds.probs.shape[1] == task.num_classes and np.isfinite(preds.probs).all()
    assert ((preds.probs >= 0) & (preds.probs <= 1)).all()
    assert (np.abs(preds.probs.sum(axis=1) - 1) <= PROB_SUM_TOLERANCE).all()
    if expected is not None:
        assert set(preds.case_ids) == set(expected)
    if preds.labels is not None:
        assert all(0 <= y < task.num_classes or y == UNKNOWN_GRADE for y in preds.labels)
    for values in preds.values.values():
        finite = values[~np.isnan(values)]
        assert ((finite >= 0) & (finite <= 100)).all()


@fuzz_settings(200)
@given(st.sampled_from(TASKS).flatmap(lambda t: st.tuples(st.just(t), predictions_files(t))))
@example(case=(TASKS[0], (b"case_id,prob_diffusely_increased\n" + b"x" * 200_000 + b",1\n", None)))
@example(case=(TASKS[1], ("case_id,prob_absent,prob_low,prob_moderate,prob_high,uptake_pct\n"
                          "c0,1,0,0,0,1e400\n".encode("utf-16"), ["c0"])))
def test_predictions_csv_loads_or_refuses_with_its_own_error(scratch, case):
    task, (data, expected) = case
    scratch.write_bytes(data)
    try:
        preds = read_predictions(scratch, task, expected_case_ids=expected)
    except PredictionsError as exc:
        assert str(scratch) in str(exc)
        event("refused")
        return
    event("loaded")
    _check_predictions(preds, task, expected)


# --------------------------------------------------------------------------- entry.json
ENTRY = next((REPO / "leaderboard" / "entries" / "four-pattern").glob("*/*/entry.json"))
JSON_VALUES = st.sampled_from([
    "NaN", "Infinity", "-Infinity", "1e400", "-1e400", "1e15", "1e16", "-1", "-0", "0.0",
    "9007199254740993", "1" * 5000, "-" + "9" * 30, "true", "null", '""', '"\\ud800"',
    '"\\u202e"', '"' + "x" * 3000 + '"', "[]", "{}", "[" * 50 + "]" * 50, "[" * 5000 + "]" * 5000,
    '{"a": 1, "a": 2}', '{"": 0}', "[1,]", "'x'", "0x10", "01"])


@st.composite
def entry_files(draw) -> bytes:
    """A valid entry.json with one value replaced by an odd token or a key repeated, in some
    encoding, perhaps with bytes flipped; or random bytes."""
    text = ENTRY.read_text(encoding="utf-8")
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=400))
    if choice <= 4:  # replace the value after one ": "
        starts = [i + 2 for i in range(len(text)) if text.startswith(": ", i)]
        i = draw(st.sampled_from(starts))
        end = i
        while end < len(text) and text[end] not in ",\n":
            end += 1
        text = text[:i] + draw(JSON_VALUES) + text[end:]
    elif choice <= 6:  # a key repeated
        key = draw(st.sampled_from(['"seed": ', '"task": ', '"n": ', '"macro_f1": ']))
        text = text.replace(key, key + "0, " + key, 1)
    data = encoded(text, draw(st.sampled_from(ENCODINGS)))
    return draw(mutated(data)) if draw(st.booleans()) else data


@fuzz_settings(150)
@given(data=entry_files())
@example(data=b"[" * 100_000 + b"]" * 100_000)
@example(data=ENTRY.read_bytes().replace(b'"seed": 0', b'"seed": ' + b"9" * 5000))
@example(data=b"\xef\xbb\xbf" + ENTRY.read_bytes())
def test_entry_json_loads_or_refuses_with_its_own_error(scratch, data):
    scratch.write_bytes(data)
    try:
        entry = read_entry(scratch)
    except EntryError as exc:
        assert str(scratch) in str(exc)
        event("refused")
        return
    event("loaded")
    assert isinstance(entry, Entry)
    assert Entry.model_validate_json(entry.model_dump_json()) == entry
