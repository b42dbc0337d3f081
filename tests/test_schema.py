"""Label schema v1: fixed order, paper types, and label parsing."""

from __future__ import annotations

import pytest

from thyroid_bench.schema import CLASS_NAMES, PAPER_TYPES, label_schema_dict, parse_label


def test_order_and_paper_types_are_fixed():
    assert CLASS_NAMES == ("diffusely_increased", "diffusely_decreased", "focal_increased",
                           "heterogeneous_uptake")
    assert PAPER_TYPES == ("I", "II", "III", "IV")
    assert [c["index"] for c in label_schema_dict()["classes"]] == [0, 1, 2, 3]
    assert label_schema_dict()["task"] == "four-pattern"


@pytest.mark.parametrize("value, index", [
    ("diffusely_increased", 0), ("Diffusely Decreased", 1), (" focal-increased ", 2),
    ("IV", 3), ("iii", 2), ("Type II", 1), (0, 0), ("3", 3),
])
def test_parse_label_accepts_names_types_and_indices(value, index):
    assert parse_label(value) == index


@pytest.mark.parametrize("value", ["V", "normal", "", 4, -1, True, "type V"])
def test_parse_label_rejects_everything_else(value):
    with pytest.raises(ValueError, match="label"):
        parse_label(value)
