"""Tasks as data: the task definition, its validation, label parsing and the registry."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from thyroid_bench.tasks import (
    MainScore,
    Reference,
    Target,
    Task,
    TaskClass,
    TaskError,
    get_task,
    list_tasks,
    register_task,
    unregister_task,
)

FOUR = get_task("four-pattern")


def _toy(**changes) -> Task:
    fields = dict(
        name="toy-binary", description="toy", reference=Reference(citation="tests"), modality="none",
        target=Target(kind="binary", classes=(TaskClass(index=0, name="absent"),
                                               TaskClass(index=1, name="present", code="P"))),
        main_score=MainScore(metric="macro_f1", split="external"))
    fields.update(changes)
    return Task(**fields)


def test_four_pattern_order_codes_and_schema_are_fixed():
    assert FOUR.class_names == ("diffusely_increased", "diffusely_decreased", "focal_increased",
                                "heterogeneous_uptake")
    assert [c.code for c in FOUR.classes] == ["I", "II", "III", "IV"]
    assert FOUR.num_classes == 4
    assert FOUR.prob_columns[2] == "prob_focal_increased"
    assert (FOUR.main_score.metric, FOUR.main_score.split) == ("macro_f1", "external")
    assert FOUR.eval_splits == ("internal", "external") and FOUR.folds == 5
    schema = FOUR.label_schema()
    # The dict every dataset manifest of format v1 records (keys as written since 0.1).
    assert schema["version"] == 1 and schema["task"] == "four-pattern"
    assert schema["classes"][3] == {"index": 3, "name": "heterogeneous_uptake", "paper_type": "IV",
                                    "reading": "several areas of increased and suppressed uptake"}
    assert FOUR.default_dataset == "tsb-synthetic"


@pytest.mark.parametrize("value, index", [
    ("diffusely_increased", 0), ("Diffusely Decreased", 1), (" focal-increased ", 2),
    ("IV", 3), ("iii", 2), ("Type II", 1), (0, 0), ("3", 3), ("type 3", 3),
    ("type_diffusely_increased", 0),
])
def test_parse_label_accepts_names_codes_and_indices(value, index):
    assert FOUR.parse_label(value) == index


@pytest.mark.parametrize("value", ["V", "normal", "", 4, -1, True, "type V"])
def test_parse_label_rejects_everything_else_naming_the_classes(value):
    with pytest.raises(ValueError, match="label") as err:
        FOUR.parse_label(value)
    if not isinstance(value, int) or isinstance(value, bool):
        assert "focal_increased (III)" in str(err.value)


def test_a_task_is_frozen_and_refuses_unknown_fields():
    with pytest.raises(ValidationError):
        FOUR.name = "other"  # type: ignore[misc]
    with pytest.raises(ValidationError, match="extra"):
        _toy(colour="red")


@pytest.mark.parametrize("changes, match", [
    ({"target": Target.model_construct(kind="binary", classes=())}, "at least two"),
    ({"main_score": MainScore(metric="macro_f1", split="train")}, "not an eval split"),
    ({"eval_splits": ("train", "external")}, "other than train"),
    ({"splits": ("train", "test")}, "format v1"),
])
def test_inconsistent_definitions_are_refused(changes, match):
    if "target" in changes:
        with pytest.raises(ValidationError, match=match):
            Target(kind="binary", classes=())
        return
    with pytest.raises(ValidationError, match=match):
        _toy(**changes)


def test_class_indices_must_be_in_order_and_names_unique():
    with pytest.raises(ValidationError, match="in order"):
        Target(kind="multiclass", classes=(TaskClass(index=1, name="a"), TaskClass(index=0, name="b")))
    with pytest.raises(ValidationError, match="unique"):
        Target(kind="multiclass", classes=(TaskClass(index=0, name="a"), TaskClass(index=1, name="a")))
    with pytest.raises(ValidationError, match="exactly two"):
        Target(kind="binary", classes=tuple(TaskClass(index=i, name=f"c{i}") for i in range(3)))


def test_ambiguous_spellings_and_non_image_inputs_are_refused():
    with pytest.raises(ValidationError, match="would name both absent and present"):
        Target(kind="binary", classes=(TaskClass(index=0, name="absent"),
                                       TaskClass(index=1, name="present", code="Absent")))
    with pytest.raises(ValidationError, match="would name both"):
        Target(kind="binary", classes=(TaskClass(index=0, name="a", code="1"), TaskClass(index=1, name="b")))
    with pytest.raises(ValidationError, match="must name image columns"):
        _toy(image_columns=("label",))
    with pytest.raises(ValidationError, match="distinct"):
        _toy(eval_splits=("external", "external"))


def test_registry_registers_lists_and_names_close_matches():
    toy = _toy()
    register_task(toy)
    try:
        assert get_task("toy-binary") is toy
        assert [t.name for t in list_tasks()][:1] == ["four-pattern"] and toy in list_tasks()
        assert toy.parse_label("P") == 1 and toy.accepted_labels() == "absent, present (P)"
        with pytest.raises(TaskError, match="already registered"):
            register_task(_toy(description="another"))
        with pytest.raises(TaskError, match="did you mean toy-binary"):
            get_task("toy-binar")
        with pytest.raises(TaskError, match="needs a thyroid_bench.tasks.Task, got str"):
            register_task("toy-binary")  # type: ignore[arg-type]
        assert register_task(toy) is toy  # the same definition again is a no-op
    finally:
        unregister_task("toy-binary")
    with pytest.raises(TaskError, match="unknown task 'toy-binary'"):
        get_task("toy-binary")
