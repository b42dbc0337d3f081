"""Every field of an entry has a bound, entry files are strict JSON, claims match, text stays text.

Each case is tried as a hostile user would: a run folder (a committed entry's, or a small
one made here) is copied, its entry.json edited by hand, and submitted against a copy of a
leaderboard; it must be refused with the package's own error, naming the file or field,
and leave the leaderboard byte for byte as it was. A Hypothesis test mutates a valid entry
field by field.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import tempfile
import time
from pathlib import Path

import pytest

from test_leaderboard import edit_entry, make_dataset, make_run, rewrite_rows, snapshot
from thyroid_bench.bounds import (
    MAX_DEPTH,
    StrictJSONError,
    check_json_value,
    escape_unsafe,
    loads_strict,
    strip_unsafe,
)
from thyroid_bench.cli import main
from thyroid_bench.errors import PredictionsError, ThyroidBenchError
from thyroid_bench.evaluation.entry import MAX_ENTRY_BYTES, EntryError, read_entry, read_entry_json
from thyroid_bench.evaluation.metrics import evaluate
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.leaderboard import SubmissionError, render_leaderboard, render_text, submit
from thyroid_bench.leaderboard.checks import check_run
from thyroid_bench.leaderboard.display import e, md_escape, terminal_text
from thyroid_bench.tasks.four_pattern import FOUR_PATTERN

REPO = Path(__file__).resolve().parents[1]
COMMITTED = REPO / "leaderboard"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A dataset home, a leaderboard holding one entry (toy-b), and a pristine run (toy-a)."""
    base = tmp_path_factory.mktemp("bounds-world")
    home = base / "home"
    dataset = make_dataset(home)
    lb = base / "lb"
    submit(make_run(base / "runs" / "toy-b", dataset, model="toy-b", seed=1), leaderboard=lb, home=home)
    return {"home": home, "dataset": dataset, "lb": lb, "run": make_run(base / "runs" / "toy-a", dataset)}


@pytest.fixture
def case(world, tmp_path):
    """A fresh copy of the run and of the leaderboard, free to tamper with."""
    return (Path(shutil.copytree(world["run"], tmp_path / "run")),
            Path(shutil.copytree(world["lb"], tmp_path / "lb")))


def edit_text(run: Path, change) -> None:
    """Edit entry.json as text (for what json.dumps would not write: NaN, duplicate keys)."""
    path = run / "entry.json"
    path.write_text(change(path.read_text()))


def refused(run: Path, lb: Path, home: Path, check: str, says: str) -> SubmissionError:
    """Submit ``run``: refused by ``check`` with ``says`` in the message, ``lb`` unchanged."""
    before = snapshot(lb)
    with pytest.raises(SubmissionError) as info:
        submit(run, leaderboard=lb, home=home)
    assert info.value.check == check, str(info.value)
    assert says in str(info.value)
    assert snapshot(lb) == before
    return info.value


# --------------------------------------------------------------------------- the strict reader
@pytest.mark.parametrize("text, says", [
    ('{"a": NaN}', "NaN is not a JSON number"),
    ('{"a": [1, Infinity]}', "Infinity is not a JSON number"),
    ('{"a": -Infinity}', "-Infinity is not a JSON number"),
    ('{"a": 1e400}', "number 1e400 is not within"),
    ('{"a": 123456789012345678901234567890}', "integer 1234567890123456789012"),
    ('{"a": 9007199254740993}', "beyond ±2**53"),
    ('{"a": {"b": 1, "b": 2}}', "key 'b' appears twice"),
    ('{"x": 1, "x": 1}', "key 'x' appears twice"),
    ('{"a": "\\ud800"}', "lone surrogate"),
    ("[" * (MAX_DEPTH + 1) + "]" * (MAX_DEPTH + 1), "nested deeper than 16 levels"),
    ("[" * 100_000 + "]" * 100_000, "nested deeper than 16 levels"),
    ('{"a": 1', "not valid JSON"),
])
def test_strict_reader_refuses_what_json_accepts(text, says):
    with pytest.raises(StrictJSONError) as info:
        loads_strict(text)
    assert says in str(info.value)


def test_strict_reader_reads_what_is_json():
    text = '{"a": [1, 2.5, -0.0, true, null, "\\u00e9"], "b": {"c": 9007199254740992}}'
    assert loads_strict(text) == json.loads(text)
    nested = "[" * MAX_DEPTH + "]" * MAX_DEPTH
    assert loads_strict(nested) == json.loads(nested)


def test_every_committed_entry_reads_strictly_and_validates():
    paths = sorted(COMMITTED.glob("entries/*/*/*/entry.json"))
    assert len(paths) >= 12
    for path in paths:
        assert read_entry_json(path) == json.loads(path.read_text())
        assert read_entry(path).date.utcoffset().total_seconds() == 0


def test_entry_file_bounds_name_the_file(tmp_path):
    path = tmp_path / "entry.json"
    path.write_text(" " * (MAX_ENTRY_BYTES + 1))
    with pytest.raises(EntryError, match=rf"{path}: {MAX_ENTRY_BYTES + 1} bytes, more than"):
        read_entry_json(path)
    path.write_text('{"seed": NaN}')
    with pytest.raises(EntryError, match=rf"{path}: not strict JSON \(NaN is not a JSON number"):
        read_entry(path)
    path.write_bytes(b'{"seed": "\xff"}')
    with pytest.raises(EntryError, match="not strict JSON"):
        read_entry(path)
    with pytest.raises(EntryError, match="a folder, not an entry file"):
        read_entry(tmp_path)


def test_json_value_bounds():
    ok = {"n": 3, "x": [0.5, None, True], "per_class": {"grade 2": {"f1": 0.25}}}
    assert check_json_value(ok) == ok
    for bad, says in [(math.nan, "not a finite number"), (1e16, "not a finite number"),
                      (2**60, "beyond ±2**53"), ("x" * 2001, "2001 characters"),
                      ("a\x1b[31m", "control or bidirectional"), ("\u202eevil", "control or bidi"),
                      ({"a<b>": 1}, "is not a name"), (list(range(1001)), "1001 items"),
                      ({1, 2}, "set is not a JSON value")]:
        with pytest.raises(ValueError) as info:
            check_json_value({"metric": bad})
        assert str(info.value).startswith("metric") and says in str(info.value)


# --------------------------------------------------------------------------- bounds, on submit
def _set(path: str, value):
    def change(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value
    return change


@pytest.mark.parametrize("path, value, says", [
    ("metrics.internal.bootstrap.resamples", 10**9,
     "bootstrap.resamples = 1000000000 is not an integer from 0 to 100000"),
    ("metrics.external.bootstrap.seed", -1, "bootstrap.seed = -1 is not an integer from 0 to 2**32 - 1"),
    ("metrics.internal.ece_bins", 10**7, "ece_bins = 10000000 is not an integer from 1 to 1000"),
    ("seed", 10**12, "seed: Input should be less than or equal to 4294967295"),
    ("seed", -1, "seed: Input should be greater than or equal to 0"),
    ("seed", "0", "seed: Input should be a valid integer"),
    ("wall_time_s", 1e12, "wall_time_s: Input should be less than or equal to"),
    ("submitter", "x" * 5_000_000, "more than an entry may hold"),
    ("submitter", "y" * 300, "submitter: String should have at most 256 characters"),
    ("submitter", "eve\u202egnp.exe", "submitter: String should match pattern"),
    ("submitter", "line\n# injected heading", "submitter: String should match pattern"),
    ("model.name", "a" * 300, "model.name: String should have at most 128 characters"),
    ("model.name", "<script>alert(1)</script>", "model.name: String should match pattern"),
    ("model.name", "toy | 99.0 ± 0.0 |", "model.name: String should match pattern"),
    ("model.name", "toy\u202e", "model.name: String should match pattern"),
    ("model.parameters", 10**15, "model.parameters: Input should be less than or equal to"),
    ("environment.num_threads", 10**6, "environment.num_threads: Input should be less than"),
    ("environment.device_name", "cpu\x1b[2J", "environment.device_name: String should match"),
    ("selection.best_score", 1e300, "not strict JSON (number 1e+300 is not within ±1e+15)"),
    ("protocol.overrides", {"epochs": "<b>6</b>"}, "is not a name"),
    ("date", "9999-12-31T23:00:00-14:00", "not a time in UTC's years 1-9999"),
])
def test_field_out_of_bounds_refused(world, case, path, value, says):
    run, lb = case
    edit_entry(run, _set(path, value))
    started = time.perf_counter()
    refused(run, lb, world["home"], "schema", says)
    assert time.perf_counter() - started < 20  # refused before anything is recomputed


@pytest.mark.parametrize("token", ["NaN", "Infinity", "-Infinity", "1e999"])
@pytest.mark.parametrize("where", ['"wall_time_s": 12.0', '"epochs": 6', '"train_s": 1.5'])
def test_nan_and_infinity_tokens_refused(world, case, token, where):
    """wall_time_s, protocol.parameters and selection holding NaN or Infinity: not JSON."""
    run, lb = case
    if where == '"train_s": 1.5':
        edit_entry(run, lambda d: d["selection"].update(train_s=1.5))
    key = where.split(":")[0]
    edit_text(run, lambda t: t.replace(where, f"{key}: {token}", 1))
    err = refused(run, lb, world["home"], "schema", "not strict JSON")
    assert "entry.json" in str(err)


def test_overrides_with_nan_refused(world, case):
    run, lb = case
    edit_text(run, lambda t: t.replace('"overrides": {}', '"overrides": {"epochs": NaN}', 1))
    refused(run, lb, world["home"], "schema", "NaN is not a JSON number")


def test_duplicate_keys_refused(world, case):
    """A fake macro F1 placed before the real one: readers would see either."""
    run, lb = case
    edit_text(run, lambda t: t.replace('"macro_f1":', '"macro_f1": 0.99, "macro_f1":', 1))
    refused(run, lb, world["home"], "schema", "key 'macro_f1' appears twice")


# --------------------------------------------------------------------------- claims match
def test_quick_run_relabelled_paper_refused(world, case):
    run, lb = case
    edit_entry(run, lambda d: d["protocol"].update(name="paper"))
    refused(run, lb, world["home"], "protocol", "protocol.parameters.batch_size is 32, but "
            "protocol 'paper@1' with overrides none has 12")


def test_parameters_changed_without_override_refused(world, case):
    run, lb = case
    edit_entry(run, lambda d: d["protocol"]["parameters"].update(epochs=300))
    refused(run, lb, world["home"], "protocol", "a changed parameter must be recorded as an override")


@pytest.mark.parametrize("overrides, says", [
    ({"name": "paper"}, "protocol.overrides.name: not a parameter that can be overridden"),
    ({"colour": 1}, "protocol.overrides.colour: not a parameter"),
    ({"epochs": "many"}, "protocol.overrides.epochs = 'many' is not a value of the int parameter"),
    ({"pretrained": 1}, "protocol.overrides.pretrained = 1 is not a value of the bool"),
    ({"epochs": 0}, "do not make a valid 'quick@1' protocol: protocol 'quick@1': epochs must be >= 1"),
])
def test_bad_overrides_refused(world, case, overrides, says):
    run, lb = case
    edit_entry(run, lambda d: d["protocol"].update(overrides=overrides))
    refused(run, lb, world["home"], "protocol", says)


def test_unregistered_protocol_refused(world, case):
    run, lb = case
    edit_entry(run, lambda d: (d["protocol"].update(name="mine"),
                               d["protocol"]["parameters"].update(name="mine")))
    refused(run, lb, world["home"], "protocol", "protocol 'mine@1' is not a registered protocol version")


def test_an_override_is_its_own_marked_row(world, case):
    run, lb = case

    def override(d):
        d["protocol"]["overrides"] = {"epochs": 2}
        d["protocol"]["parameters"]["epochs"] = 2
    edit_entry(run, override)
    submit(run, leaderboard=lb, home=world["home"])
    (section,) = render_leaderboard(lb, write=False).sections
    assert sorted(g.protocol for g in section.groups) == ["quick@1", "quick@1 (epochs=2)"]
    assert "`quick@1 (epochs=2)`" in (lb / "README.md").read_text()


def test_committed_entry_relabelled_is_refused_against_the_committed_leaderboard(tmp_path):
    """A committed densenet169 quick entry, relabelled paper or with 10**9 bootstrap resamples
    or NaN wall time, submitted against a copy of the committed leaderboard."""
    lb = Path(shutil.copytree(COMMITTED, tmp_path / "lb"))
    source = next(COMMITTED.glob("entries/four-pattern/*/densenet169-quick-seed0-*"))
    run = Path(shutil.copytree(source, tmp_path / "run"))
    before = snapshot(lb)
    edit_entry(run, lambda d: d["protocol"].update(name="paper"))
    with pytest.raises(SubmissionError, match="check 'protocol'.*batch_size is 32, but protocol 'paper@1'"):
        submit(run, leaderboard=lb)
    assert snapshot(lb) == before
    for change, says in [
        (lambda t: t.replace('"resamples": 1000', '"resamples": 1000000000', 1), "resamples = 1000000000"),
        (lambda t: re.sub(r'"wall_time_s": [0-9.]+', '"wall_time_s": Infinity', t, count=1),
         "Infinity is not"),
        (lambda t: t.replace('"macro_f1":', '"macro_f1": 0.99, "macro_f1":', 1), "appears twice"),
    ]:
        shutil.copyfile(source / "entry.json", run / "entry.json")
        edit_text(run, change)
        started = time.perf_counter()
        with pytest.raises(SubmissionError, match="check 'schema'") as info:
            check_run(run, home=tmp_path / "no-home")
        assert says in str(info.value) and time.perf_counter() - started < 5


# --------------------------------------------------------------------------- dates
def test_date_without_timezone_is_read_as_utc_and_renders(world, case):
    """A date without time zone, in a row whose other entry's date ends in Z, used to crash
    every later render (can't compare offset-naive and offset-aware datetimes)."""
    run, lb = case
    # skill 0.3: not toy-b seed 1's predictions (the same ones would be refused as a copy)
    other = make_run(run.parent / "toy-a-s1", world["dataset"], seed=1, skill=0.3)
    submit(other, leaderboard=lb, home=world["home"])
    edit_entry(run, lambda d: d.update(date="2025-03-04T05:06:07"))
    submit(run, leaderboard=lb, home=world["home"])
    assert read_entry(run / "entry.json").date.isoformat() == "2025-03-04T05:06:07+00:00"
    board = render_leaderboard(lb)
    (group,) = [g for g in board.sections[0].groups if g.model == "toy-a"]
    assert group.seeds == [0, 1] and "2025-03-04" in (lb / "README.md").read_text()


def test_dates_with_offsets_are_converted_to_utc(world, case):
    run, _ = case
    edit_entry(run, lambda d: d.update(date="2025-03-04T23:30:00-05:00"))
    assert read_entry(run / "entry.json").date.isoformat() == "2025-03-05T04:30:00+00:00"


# --------------------------------------------------------------------------- text stays text
def test_markdown_escapes_keep_text_as_text():
    assert md_escape("a | b\nc") == "a \\| b c"
    assert md_escape("<img src=x onerror=alert(1)>") == "&lt;img src=x onerror=alert(1)&gt;"
    assert md_escape("[click](javascript:alert(1))") == "[click]\\(javascript:alert(1))"
    assert md_escape("back\\|slash") == "back\\\\\\|slash"
    assert md_escape("ab\u202ecd\x1b[31m\r\n# h") == "abcd[31m # h"
    assert md_escape("**74.2 ± 1.0** [70.1, 78.0]") == "**74.2 ± 1.0** [70.1, 78.0]"


def test_html_and_terminal_never_carry_controls():
    assert e("<b>\u202e\x07x\n") == "&lt;b&gt;x\n"
    assert terminal_text("a\x1b[2Jb\u202ec\nd") == "a\\x1b[2Jb\\u202ec\nd"
    assert strip_unsafe("a\tb\x00c\u2066") == "abc" and escape_unsafe("\x9b") == "\\x9b"


def test_free_text_with_markup_is_escaped_on_both_pages(world, case):
    """An environment label may hold any printable text: the pages show it as text."""
    run, lb = case
    evil = "CPU <img src=x onerror=alert(1)> | [x](javascript:alert(1))"
    edit_entry(run, lambda d: d["environment"].update(device_name=evil))
    submit(run, leaderboard=lb, home=world["home"])
    readme = (lb / "README.md").read_text()
    assert "CPU &lt;img src=x onerror=alert(1)&gt; \\| [x]\\(javascript:alert(1))" in readme
    assert "<img" not in readme and "](javascript" not in readme
    html = (lb / "index.html").read_text()
    assert "<img src=x" not in html and "CPU &lt;img src=x onerror=alert(1)&gt;" in html


def test_text_view_escapes_control_sequences(world, case):
    _, lb = case
    board = render_leaderboard(lb, write=False)
    board.sections[0].groups[0].model = "toy\x1b[2J\u202e"
    text = render_text(board)
    assert "toy\\x1b[2J\\u202e" in text and "\x1b" not in text and "\u202e" not in text


# --------------------------------------------------------------------------- one tolerance
def _shift(rows, value):
    """Row 1 of a predictions CSV: its first probability set to ``value``, the rest scaled so
    that the row sums to 1 + (value - 1) when value > 1, else keeps summing to 1."""
    probs = [float(x) for x in rows[1][1:5]]
    rest = sum(probs[1:])
    scale = max(0.0, 1 - value) / rest if rest else 0.0
    rows[1][1:5] = [repr(value)] + [repr(p * scale) for p in probs[1:]]
    return rows


def test_probability_above_one_refused_by_the_reader(world, case, tmp_path, capsys):
    run, lb = case
    rewrite_rows(run, "external", lambda rows: _shift(rows, 1.0000009))
    path = run / "predictions" / "external.csv"
    with pytest.raises(PredictionsError, match="probability above 1: prob_diffusely_increased=1.0000009"):
        read_predictions(path, FOUR_PATTERN)
    refused(run, lb, world["home"], "predictions", "probability above 1")
    assert main(["score", str(path), "--no-figures", "--bootstrap", "0"]) == 2
    assert "probability above 1" in capsys.readouterr().err


def test_row_summing_within_tolerance_is_scored(world, case, capsys):
    """A row summing to 1 + 5e-7 (each value in [0, 1]): the reader and the metrics agree."""
    run, _ = case

    def nudge(rows):
        probs = [float(x) for x in rows[1][1:5]]
        rows[1][1:5] = [repr(p) for p in probs[:3]] + [repr(probs[3] + 5e-7)]
        return rows
    rewrite_rows(run, "external", nudge)
    preds = read_predictions(run / "predictions" / "external.csv", FOUR_PATTERN)
    assert abs(preds.probs.sum(axis=1).max() - (1 + 5e-7)) < 1e-12
    assert evaluate(preds.labels, preds.probs, FOUR_PATTERN.class_names, bootstrap=0)["n"] == len(preds)
    assert main(["score", str(run / "predictions" / "external.csv"), "--no-figures",
                 "--bootstrap", "0"]) == 0
    capsys.readouterr()


def test_score_seed_must_be_a_seed(world, capsys):
    path = world["run"] / "predictions" / "external.csv"
    assert main(["score", str(path), "--no-figures", "--seed", "-1"]) == 2
    assert "--seed must be from 0 to 2**32 - 1" in capsys.readouterr().err


# --------------------------------------------------------------------------- Hypothesis
hypothesis = pytest.importorskip("hypothesis")
st = hypothesis.strategies

_PATHS = ["run_id", "task", "dataset.name", "dataset.version", "dataset.synthetic", "model.name",
          "model.parameters", "model.input_size", "model.description", "model.channel_policy",
          "protocol.name", "protocol.parameters.epochs", "protocol.parameters.lr", "protocol.overrides",
          "pretrained", "pretrained_sha256", "seed", "selection", "metrics.internal.n",
          "metrics.internal.bootstrap.resamples", "metrics.external.bootstrap.seed",
          "metrics.external.ece_bins", "metrics.external.macro_f1", "metrics.internal.ci",
          "predictions.internal.rows", "predictions.external.path", "environment.num_threads",
          "environment.device_name", "wall_time_s", "submitter", "date"]
_VALUES = st.one_of(
    st.none(), st.booleans(),
    st.sampled_from([-1, 0, 1, 7, 2**31, 2**32, 2**53 + 1, 10**30, 0.5, -0.0, 1e300]),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=12), st.text(alphabet="\x00\x1b\u202e\n|<>[]()`*#", max_size=8),
    st.sampled_from(["x" * 5000, "toy-c", "timm:resnet18", "2025-01-01T00:00:00", "Ana Müller",
                     "2025-01-01T00:00:00+14:00"]),
    st.lists(st.integers(-3, 3), max_size=3), st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
)


def _mutate(path: str, value):
    def change(d):
        *parents, last = path.split(".")
        for p in parents:
            d = d[p]
        d[last] = value
    return change


@hypothesis.settings(max_examples=60, deadline=None, derandomize=True,
                     suppress_health_check=list(hypothesis.HealthCheck))
@hypothesis.given(path=st.sampled_from(_PATHS), value=_VALUES, duplicate=st.booleans())
def test_mutated_entries_are_accepted_and_render_or_refused_cleanly(world, path, value, duplicate):
    """Any single-field mutation (and a duplicated key): submit accepts it and the board still
    renders, or refuses it with the package's own error and leaves the folder byte-identical."""
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(shutil.copytree(world["run"], Path(tmp) / "run"))
        lb = Path(shutil.copytree(world["lb"], Path(tmp) / "lb"))
        data = json.loads((run / "entry.json").read_text())
        _mutate(path, value)(data)
        text = json.dumps(data, indent=2)  # NaN and Infinity tokens when the value holds them
        if duplicate:
            text = text.replace('"submitter":', '"submitter": "x", "submitter":', 1)
        (run / "entry.json").write_text(text)
        before = snapshot(lb)
        try:
            submit(run, leaderboard=lb, home=world["home"])
        except ThyroidBenchError as exc:
            hypothesis.event(f"refused by {getattr(exc, 'check', type(exc).__name__)}")
            assert snapshot(lb) == before
            return
        hypothesis.event("accepted")
        board = render_leaderboard(lb, write=False)
        assert render_text(board) and len(board.sections[0].groups) == 2
