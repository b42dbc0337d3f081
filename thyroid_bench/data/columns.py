"""The columns of dataset format v1, declared once: order, Hugging Face dtype, hashing class."""

from __future__ import annotations

__all__ = ["COLUMNS", "META_COLUMNS", "VALUE_DTYPES", "FLOAT_COLUMNS", "INT_COLUMNS"]

#: Column order of every shard.
COLUMNS: tuple[str, ...] = (
    "case_id", "patient_id", "image", "label", "center", "fold", "matrix",
    "pixel_spacing_mm", "total_counts", "acquisition_s", "sex", "age",
)
#: Every column but the image, in shard order: what the fingerprint hashes as metadata.
META_COLUMNS: tuple[str, ...] = tuple(c for c in COLUMNS if c != "image")
#: The Hugging Face ``Value`` dtype of each plain column (``image`` and ``label`` have their own).
VALUE_DTYPES: dict[str, str] = {
    "case_id": "string", "patient_id": "string", "center": "string", "fold": "int8",
    "matrix": "int32", "pixel_spacing_mm": "float64", "total_counts": "int64",
    "acquisition_s": "float64", "sex": "string", "age": "int32",
}
FLOAT_COLUMNS: tuple[str, ...] = tuple(c for c, t in VALUE_DTYPES.items() if t.startswith("float"))
INT_COLUMNS: tuple[str, ...] = ("label", *(c for c, t in VALUE_DTYPES.items() if t.startswith("int")))
