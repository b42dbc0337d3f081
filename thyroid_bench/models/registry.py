"""The model registry: names -> factories, with validated metadata. A leaf.

One decorator registers a factory under a name (as timm's ``_registry.py``); the
paper's four register when :mod:`thyroid_bench.models.paper` is imported. Name
resolution (``timm:<name>``, entry points, ``module:function``, ``file.py:function``)
and building live beside it, in :mod:`thyroid_bench.models.resolve`.

A factory is a callable ``factory(*, num_classes, pretrained=False, in_chans=...,
**kwargs) -> torch.nn.Module``; ``num_classes`` comes from the task being run, and
``in_chans`` from its views when it has several (one channel per view).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from thyroid_bench.bounds import URL, Label, Name
from thyroid_bench.errors import ThyroidBenchError

__all__ = [
    "ENTRY_POINT_GROUP",
    "ModelMeta",
    "ModelError",
    "RegisteredModel",
    "register_model",
    "registered",
]

ENTRY_POINT_GROUP = "thyroid_bench.models"


class ModelError(ThyroidBenchError):
    """A model name or factory that cannot be resolved or built."""


class ModelMeta(BaseModel):
    """What a leaderboard entry records about a model (validated, unknown fields rejected; every
    field bounded: :mod:`thyroid_bench.bounds`)."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="the name given to --model, e.g. 'densenet169' or 'timm:resnet18'")
    source: Label = Field(description="where the model comes from: 'thyroid-bench', 'timm', "
                        "'entry-point:<dist>', 'module:<mod:fn>', 'file:<file.py:fn>'")
    architecture: Label = Field(description="backbone architecture (timm name) or the factory")
    head: Label | None = Field(default=None, description="classifier head on the backbone's pooled features")
    parameters: int = Field(ge=0, le=10**13, description="number of parameters of the built model (4 outputs)")
    input_size: int = Field(gt=0, le=16384, description="native square input size in pixels")
    min_input_size: int = Field(default=32, gt=0, le=16384, description="smallest input size the network "
                                "accepts (a protocol's smaller size is raised to it)")
    in_chans: int = Field(gt=0, le=1024, description="input channels the model takes")
    channel_policy: Literal["single", "replicate", "views"] = Field(
        description="'single': the grayscale image is the one input channel; "
        "'replicate': it is copied to every input channel; 'views': one input channel per "
        "view of the task's image columns (e.g. anterior, posterior)")
    pretrained_tag: Label | None = Field(default=None, description="weights loaded when a protocol asks "
                                       "for pretrained ones, e.g. 'timm/densenet169.tv_in1k'")
    licence: Label | None = Field(default=None, description="licence of the architecture / weights")
    description: Label = ""
    kind: Literal["model", "human reader"] = Field(
        default="model", description="'model': an algorithm; 'human reader': a person's reads")
    code_url: URL | None = Field(default=None, description="where the model's code is (https)")
    weights_url: URL | None = Field(default=None, description="where its trained weights are (https)")


@dataclass(frozen=True)
class RegisteredModel:
    """A registry entry: the factory and the static part of its metadata."""

    name: str
    factory: Callable[..., Any]
    architecture: str
    input_size: int
    min_input_size: int
    in_chans: int
    channel_policy: str
    pretrained_tag: str | None
    licence: str | None
    head: str | None
    description: str
    source: str = "thyroid-bench"


_REGISTRY: dict[str, RegisteredModel] = {}


def register_model(name: str, *, architecture: str, input_size: int, min_input_size: int = 32,
                   in_chans: int = 3,
                   channel_policy: str = "replicate", pretrained_tag: str | None = None,
                   licence: str | None = None, head: str | None = None,
                   description: Label = "") -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator: register ``factory`` under ``name`` with its metadata.

    ``head`` may hold ``{num_classes}``, filled in when a model is built for a task.
    """

    def decorate(factory: Callable[..., Any]) -> Callable[..., Any]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = RegisteredModel(
            name=name, factory=factory, architecture=architecture, input_size=input_size,
            min_input_size=min_input_size, in_chans=in_chans, channel_policy=channel_policy,
            pretrained_tag=pretrained_tag,
            licence=licence, head=head, description=description or (inspect.getdoc(factory) or ""))
        return factory

    return decorate


def registered() -> dict[str, RegisteredModel]:
    """The registered names and their entries, in registration order (a copy)."""
    return dict(_REGISTRY)
