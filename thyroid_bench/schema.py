"""Label schema v1 and the task ``four-pattern``.

The four uptake patterns of Qiao et al. 2021 (BMC Medical Imaging,
doi 10.1186/s12880-021-00710-4), in a fixed order: a model's output column k is
class k, everywhere in this package and in every file it writes.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = [
    "SCHEMA_VERSION",
    "TASK",
    "ClassDef",
    "CLASSES",
    "CLASS_NAMES",
    "NUM_CLASSES",
    "PAPER_TYPES",
    "parse_label",
    "label_schema_dict",
]

SCHEMA_VERSION = 1
TASK = "four-pattern"


@dataclass(frozen=True)
class ClassDef:
    """One class of the schema: its index, name, the paper's type and how it reads."""

    index: int
    name: str
    paper_type: str
    reading: str


CLASSES: tuple[ClassDef, ...] = (
    ClassDef(0, "diffusely_increased", "I",
             "enlarged gland, homogeneous uptake above the salivary glands"),
    ClassDef(1, "diffusely_decreased", "II",
             "diminished or absent thyroid uptake"),
    ClassDef(2, "focal_increased", "III",
             "one hot nodule, rest of the gland suppressed or not"),
    ClassDef(3, "heterogeneous_uptake", "IV",
             "several areas of increased and suppressed uptake"),
)
CLASS_NAMES: tuple[str, ...] = tuple(c.name for c in CLASSES)
NUM_CLASSES = len(CLASSES)
PAPER_TYPES: tuple[str, ...] = tuple(c.paper_type for c in CLASSES)


def parse_label(value: object) -> int:
    """Return the class index for a schema name, a paper type (I-IV) or an index.

    Accepts ``"diffusely_increased"``, ``"I"``, ``"type I"``, ``0`` or ``"0"``
    (case and surrounding spaces ignored). Raises ``ValueError`` naming the
    accepted values otherwise.
    """
    if isinstance(value, bool):
        raise ValueError(f"label {value!r} is not a class; expected one of {_accepted()}")
    if isinstance(value, int):
        if 0 <= value < NUM_CLASSES:
            return value
        raise ValueError(f"label index {value} is out of range 0-{NUM_CLASSES - 1}")
    text = str(value).strip()
    key = text.lower().replace("-", "_").replace(" ", "_")
    if key.startswith("type_"):
        key = key[len("type_"):]
    for c in CLASSES:
        if key in (c.name, c.paper_type.lower(), str(c.index)):
            return c.index
    raise ValueError(f"label {text!r} is not a class; expected one of {_accepted()}")


def _accepted() -> str:
    return ", ".join(f"{c.name} ({c.paper_type})" for c in CLASSES)


def label_schema_dict() -> dict:
    """The schema as it is written into a dataset manifest."""
    return {
        "version": SCHEMA_VERSION,
        "task": TASK,
        "classes": [
            {"index": c.index, "name": c.name, "paper_type": c.paper_type, "reading": c.reading}
            for c in CLASSES
        ],
    }
