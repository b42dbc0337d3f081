"""Models: the registry, the paper's four networks, timm and third-party factories."""

from __future__ import annotations

from thyroid_bench.models.registry import ENTRY_POINT_GROUP, ModelError, ModelMeta, register_model
from thyroid_bench.models.resolve import create_model, describe_model, list_models

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelError",
    "ModelMeta",
    "create_model",
    "describe_model",
    "list_models",
    "register_model",
]
