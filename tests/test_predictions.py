"""Predictions CSV: round trip, and every rejection names its row and reason."""

from __future__ import annotations

import numpy as np
import pytest

from thyroid_bench.errors import PredictionsError
from thyroid_bench.evaluation import predictions as P
from thyroid_bench.tasks import get_task

TASK = get_task("four-pattern")
PROB_COLUMNS = TASK.prob_columns


def read_predictions(path, **kw):
    return P.read_predictions(path, TASK, **kw)


def write_predictions(path, *args, **kw):
    return P.write_predictions(path, TASK, *args, **kw)

HEADER = "case_id," + ",".join(PROB_COLUMNS)


def _probs(n: int, seed: int = 0) -> np.ndarray:
    p = np.random.default_rng(seed).dirichlet(np.ones(4), size=n)
    return p


def _write(tmp_path, text: str):
    path = tmp_path / "preds.csv"
    path.write_text(text, encoding="utf-8")
    return path


def test_round_trip_is_exact(tmp_path):
    p = _probs(50)
    ids = [f"case-{i:03d}" for i in range(50)]
    labels = np.random.default_rng(1).integers(0, 4, 50)
    path = write_predictions(tmp_path / "sub" / "internal.csv", ids, p, labels)
    assert path.read_text().splitlines()[0] == HEADER + ",label"
    got = read_predictions(path, expected_case_ids=reversed(ids))
    assert got.case_ids == ids
    assert got.probs.dtype == np.float64 and got.probs.shape == (50, 4)
    assert np.array_equal(got.probs, p)  # bit-exact, 17 significant digits
    assert got.labels.tolist() == labels.tolist()
    assert got.path == path
    aligned = got.align(ids[::-1])
    assert aligned.case_ids == ids[::-1] and np.array_equal(aligned.probs, p[::-1])
    no_label = read_predictions(write_predictions(tmp_path / "b.csv", ids, p))
    assert no_label.labels is None


def test_columns_in_any_order_and_labels_in_any_spelling(tmp_path):
    cols = ["label", *PROB_COLUMNS[::-1], "case_id"]
    path = _write(tmp_path, ",".join(cols) + "\n"
                  "I,0.1,0.2,0.3,0.4,a\n"
                  "heterogeneous_uptake,0.25,0.25,0.25,0.25,b\n"
                  "1,0,0,1,0,c\n")
    got = read_predictions(path)
    assert got.case_ids == ["a", "b", "c"]
    assert got.probs[0].tolist() == [0.4, 0.3, 0.2, 0.1]
    assert got.probs[2].tolist() == [0.0, 1.0, 0.0, 0.0]
    assert got.labels.tolist() == [0, 3, 1]


@pytest.mark.parametrize("text,match", [
    ("case_id,prob_diffusely_increased,prob_diffusely_decreased,prob_focal_increased\nx,1,0,0\n",
     r"header \(line 1\): missing column\(s\) \['prob_heterogeneous_uptake'\]"),
    (HEADER + ",score\nx,1,0,0,0,3\n", r"header \(line 1\): unknown column\(s\) \['score'\]"),
    (HEADER + ",case_id\nx,1,0,0,0,x\n", r"header \(line 1\): repeated column\(s\) \['case_id'\]"),
    ("", "empty file"),
    (HEADER + "\n", "no case rows"),
    (HEADER + "\na,1,0,0,0\nb,nan,0,0,1\n", r"row 2 \(line 3\): prob_diffusely_increased is NaN"),
    (HEADER + "\na,1,0,0,0\nb,0.5,0.5,0,0\nc,inf,0,0,0\n", r"row 3 \(line 4\): prob_diffusely_increased is NaN or infinite"),
    (HEADER + "\na,1.5,-0.5,0,0\n", r"row 1 \(line 2\): negative probability prob_diffusely_decreased=-0.5"),
    (HEADER + "\na,1,0,0,0\nb,0.5,0.3,0.1,0.1000011\n", r"row 2 \(line 3\): probabilities sum to 1.000001"),
    (HEADER + "\na,0.3,0.3,0.3,0.3\n", r"row 1 \(line 2\): probabilities sum to 1.2"),
    (HEADER + "\na,high,0,0,0\n", r"row 1 \(line 2\): prob_diffusely_increased = 'high' is not a number"),
    (HEADER + "\na,1,0,0,0\nb,1,0,0\n", r"row 2 \(line 3\): 4 fields, the header has 5"),
    (HEADER + "\na,1,0,0,0\nb,1,0,0,0\na,0,1,0,0\n", r"row 3 \(line 4\): duplicate case_id 'a' \(first on row 1\)"),
    (HEADER + "\n,1,0,0,0\n", r"row 1 \(line 2\): case_id is empty"),
    (HEADER + ",label\na,1,0,0,0,I\nb,1,0,0,0,V\n", r"row 2 \(line 3\): label 'V' is not a class"),
    (HEADER + ",label\na,1,0,0,0,\n", r"row 1 \(line 2\): label is empty"),
])
def test_rejections_name_row_and_reason(tmp_path, text, match):
    path = _write(tmp_path, text)
    with pytest.raises(PredictionsError, match=match) as err:
        read_predictions(path)
    assert str(path) in str(err.value)


def test_rows_summing_within_tolerance_pass(tmp_path):
    path = _write(tmp_path, HEADER + "\na,0.5,0.3,0.1,0.1000009\n")
    assert read_predictions(path).probs.sum() == pytest.approx(1.0000009)


def test_unknown_and_missing_cases_of_the_split(tmp_path):
    path = write_predictions(tmp_path / "p.csv", ["a", "b", "zz"], _probs(3))
    with pytest.raises(PredictionsError) as err:
        read_predictions(path, expected_case_ids=["a", "b", "c", "d"])
    msg = str(err.value)
    assert "row 3 (line 4): case_id 'zz' is not a case of the split" in msg
    assert "2 case(s) of the split have no row: 'c', 'd'" in msg
    assert "2 problem(s)" in msg


def test_many_problems_are_listed_in_row_order_and_capped(tmp_path):
    rows = "\n".join(f"c{i},0.9,0.9,0,0" for i in range(30))
    path = _write(tmp_path, HEADER + "\n" + rows + "\nc0,1,0,0,0\n")
    with pytest.raises(PredictionsError) as err:
        read_predictions(path)
    msg = str(err.value)
    assert "31 problem(s)" in msg and "and 11 more problem(s)" in msg
    assert msg.index("row 1 (line 2)") < msg.index("row 2 (line 3)")
    assert "row 31" not in msg  # past the cap of 20


def test_missing_file(tmp_path):
    with pytest.raises(PredictionsError, match="no such predictions file"):
        read_predictions(tmp_path / "nope.csv")


def test_writer_refuses_what_the_reader_would_reject(tmp_path):
    with pytest.raises(ValueError, match="n x 4"):
        write_predictions(tmp_path / "p.csv", ["a"], np.ones((1, 3)) / 3)
    with pytest.raises(ValueError, match="row 1: probabilities sum"):
        write_predictions(tmp_path / "p.csv", ["a"], np.full((1, 4), 0.3))
    with pytest.raises(ValueError, match="unique"):
        write_predictions(tmp_path / "p.csv", ["a", "a"], _probs(2))
    assert not (tmp_path / "p.csv").exists()


def test_a_three_class_task_reads_its_own_columns_and_reports_only_real_faults(tmp_path):
    from thyroid_bench.tasks import MainScore, Reference, Target, Task, TaskClass

    three = Task(name="three", description="t", reference=Reference(citation="tests"), modality="x",
                 target=Target(kind="ordinal", classes=tuple(TaskClass(index=i, name=n)
                                                             for i, n in enumerate(("low", "mid", "high")))),
                 main_score=MainScore(metric="accuracy", split="external"))
    path = _write(tmp_path, "case_id,prob_low,prob_mid,prob_high,label\n"
                            "a,0.2,0.3,0.5,high\n"
                            "b,x,0.5,0.5,mid\n"
                            "c,0.1,0.1\n"
                            "d,0.3,0.3,0.3,low\n")
    with pytest.raises(PredictionsError) as err:
        P.read_predictions(path, three)
    text = str(err.value)
    # the non-number and the short row are reported; their placeholder rows are not; d sums to 0.9
    assert "rejected (3 problem(s))" in text
    assert "row 2 (line 3): prob_low = 'x' is not a number" in text
    assert "row 3 (line 4): 3 fields, the header has 5" in text
    assert "row 4 (line 5): probabilities sum to 0.8999" in text
    good = _write(tmp_path, "case_id,prob_high,prob_low,prob_mid\na,0.5,0.2,0.3\n")
    got = P.read_predictions(good, three)
    assert got.probs.tolist() == [[0.2, 0.3, 0.5]]
    with pytest.raises(PredictionsError, match=r"unknown column\(s\) \['prob_high', 'prob_low', 'prob_mid'\]"
                       r".*class of task four-pattern"):
        P.read_predictions(good, TASK)


# --------------------------------------------------------------------------- residual-tissue
RESIDUAL = get_task("residual-tissue")
RES_HEADER = "case_id," + ",".join(RESIDUAL.prob_columns)


def test_residual_round_trip_with_uptake_and_presence_only_labels(tmp_path):
    p = _probs(30, seed=3)
    ids = [f"r{i:02d}" for i in range(30)]
    labels = np.random.default_rng(2).integers(-1, 4, 30)
    uptake = np.random.default_rng(3).uniform(0, 4, 30)
    uptake[[4, 9]] = np.nan  # not predicted for these cases: blank cells
    path = P.write_predictions(tmp_path / "res.csv", RESIDUAL, ids, p, labels=labels,
                               values={"uptake_pct": uptake})
    lines = path.read_text().splitlines()
    assert lines[0] == RES_HEADER + ",uptake_pct,label"
    assert lines[5].split(",")[-2] == ""  # case r04: blank uptake
    assert {ln.split(",")[-1] for ln in lines[1:] if ln.startswith(tuple(
        ids[i] for i in np.flatnonzero(labels == -1)))} == {"present"}
    got = P.read_predictions(path, RESIDUAL, expected_case_ids=ids)
    assert np.array_equal(got.probs, p) and got.labels.tolist() == labels.tolist()
    assert set(got.values) == {"uptake_pct"}
    assert np.array_equal(got.values["uptake_pct"], uptake, equal_nan=True)  # bit-exact
    flipped = got.align(ids[::-1])
    assert np.array_equal(flipped.values["uptake_pct"], uptake[::-1], equal_nan=True)
    # without the optional column: no values; four-pattern files never have them
    assert P.read_predictions(P.write_predictions(tmp_path / "b.csv", RESIDUAL, ids, p),
                              RESIDUAL).values == {}
    assert read_predictions(write_predictions(tmp_path / "c.csv", ids, p)).values == {}


@pytest.mark.parametrize("cell,match", [
    ("nan", r"uptake_pct = nan is not a finite number; leave the cell blank"),
    ("inf", r"uptake_pct = inf is not a finite number"),
    ("-0.2", r"uptake_pct = -0.2 is not a finite number from 0 to 100"),
    ("250", r"uptake_pct = 250.0 is not a finite number from 0 to 100"),
    ("lots", r"uptake_pct = 'lots' is not a number"),
])
def test_residual_hostile_uptake_is_refused(tmp_path, cell, match):
    path = _write(tmp_path, RES_HEADER + ",uptake_pct,label\n"
                            "a,0.7,0.1,0.1,0.1,0.3,absent\n"
                            f"b,0.1,0.2,0.3,0.4,{cell},high\n")
    with pytest.raises(PredictionsError, match=r"row 2 \(line 3\): " + match) as err:
        P.read_predictions(path, RESIDUAL)
    assert str(path) in str(err.value)


def test_residual_labels_and_columns_of_the_other_task_are_refused(tmp_path):
    bad_label = _write(tmp_path, RES_HEADER + ",label\na,0.7,0.1,0.1,0.1,maybe\n")
    with pytest.raises(PredictionsError, match=r"label 'maybe' is not a class; .*or present"):
        P.read_predictions(bad_label, RESIDUAL)
    present = _write(tmp_path, HEADER + ",label\na,0.7,0.1,0.1,0.1,present\n")
    with pytest.raises(PredictionsError, match=r"label 'present' is not a class"):
        read_predictions(present)  # four-pattern has no detection reading
    uptake = _write(tmp_path, HEADER + ",uptake_pct\na,0.7,0.1,0.1,0.1,0.5\n")
    with pytest.raises(PredictionsError, match=r"unknown column\(s\) \['uptake_pct'\]"):
        read_predictions(uptake)


def test_residual_writer_refuses_what_the_reader_would_reject(tmp_path):
    p, ids = _probs(2), ["a", "b"]
    for values, match in [({"uptake_pct": [0.1, -1.0]}, "row 2: uptake_pct = -1.0 is not a finite number from 0 to 100"),
                          ({"uptake_pct": [np.inf, 1.0]}, "row 1: uptake_pct = inf is not a finite"),
                          ({"uptake_pct": [1.0]}, "must hold 2 values"),
                          ({"volume": [1.0, 2.0]}, "no value column 'volume'")]:
        with pytest.raises(ValueError, match=match):
            P.write_predictions(tmp_path / "p.csv", RESIDUAL, ids, p, values=values)
    with pytest.raises(ValueError, match="no value column 'uptake_pct'"):
        write_predictions(tmp_path / "p.csv", ids, p, values={"uptake_pct": [1.0, 2.0]})
    with pytest.raises(ValueError, match="out of range"):
        write_predictions(tmp_path / "p.csv", ids, p, labels=[0, -1])  # four-pattern: no -1
    assert not (tmp_path / "p.csv").exists()
