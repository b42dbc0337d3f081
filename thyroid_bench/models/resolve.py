"""Resolve a model name to its factory, build it, describe it.

Besides the registered names (:mod:`thyroid_bench.models.registry`; the paper's four
register on import of :mod:`thyroid_bench.models.paper`), :func:`create_model` resolves

- ``timm:<name>``: any timm architecture (:mod:`thyroid_bench.models.factories`);
- a name published by an installed package in the entry-point group
  ``thyroid_bench.models``;
- ``package.module:function`` and ``path/to/file.py:function`` factories.

A factory's keyword arguments it does not accept are not passed, except ``in_chans``:
a task of several views (:func:`channel_kwargs`) needs a model with one input channel per
view, and a factory that cannot build one is refused. Every built model comes with a
:class:`~thyroid_bench.models.registry.ModelMeta`.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.metadata
import importlib.util
import inspect
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import ValidationError

import thyroid_bench.models.paper  # noqa: F401  (registers the paper's four)
from thyroid_bench.errors import did_you_mean, validation_problems
from thyroid_bench.models.registry import ENTRY_POINT_GROUP, ModelError, ModelMeta, registered
from thyroid_bench.tasks import Task

__all__ = ["list_models", "create_model", "describe_model", "resolve_factory", "count_parameters",
           "channel_kwargs"]


def list_models(include_entry_points: bool = True) -> list[str]:
    """Registered names (the paper's four first, in registration order), then entry points."""
    names = list(registered())
    if include_entry_points:
        names += [ep.name for ep in _entry_points() if ep.name not in names]
    return names


def _entry_points() -> list[importlib.metadata.EntryPoint]:
    return list(importlib.metadata.entry_points(group=ENTRY_POINT_GROUP))


def _unknown(name: str) -> ModelError:
    known = list_models()
    if name.startswith("timm:"):
        import timm

        close = ["timm:" + c for c in difflib.get_close_matches(name[5:], timm.list_models(), n=3,
                                                                 cutoff=0.6)]
        return ModelError(f"unknown timm model {name[5:]!r}"
                          + (f"; did you mean {', '.join(close)}?" if close else "")
                          + " (`python -c \"import timm; print(timm.list_models('*pattern*'))\"` lists them)")
    hint = did_you_mean(name, known, n=3, cutoff=0.5)
    return ModelError(f"unknown model {name!r}; {hint}known: {', '.join(known)}; also "
                      "'timm:<name>', 'package.module:function' or 'path/to/file.py:function'")


def count_parameters(model: Any) -> int:
    """Number of parameters (trainable or not) of a torch module."""
    return int(sum(p.numel() for p in model.parameters()))


def resolve_factory(name: str) -> tuple[Callable[..., Any], str]:
    """Find the factory behind a model name and say where it came from.

    Order: registered name, ``timm:<name>``, entry point, ``file.py:function``,
    ``module:function``.
    """
    reg = registered().get(name)
    if reg is not None:
        return reg.factory, "thyroid-bench"
    if name.startswith("timm:"):
        import timm

        from thyroid_bench.models.factories import timm_factory

        arch = name[len("timm:"):]
        if not timm.is_model(arch):
            raise _unknown(name)
        return timm_factory(arch), "timm"
    for ep in _entry_points():
        if ep.name == name:
            try:
                factory = ep.load()
            except Exception as exc:  # noqa: BLE001 - a broken plugin is the user's to fix
                raise ModelError(f"entry point {name!r} ({ep.value}) of group {ENTRY_POINT_GROUP} "
                                 f"fails to load: {exc}") from exc
            dist = getattr(getattr(ep, "dist", None), "name", None) or ep.value
            return factory, f"entry-point:{dist}"
    if ":" in name:
        target, _, func = name.rpartition(":")
        if target.endswith(".py"):
            return _load_from_file(Path(target), func), f"file:{name}"
        return _load_from_module(target, func), f"module:{name}"
    raise _unknown(name)


def _load_from_file(path: Path, func: str) -> Callable[..., Any]:
    if not path.is_file():
        raise ModelError(f"model file {path} does not exist (expected path/to/file.py:function)")
    mod_name = f"thyroid_bench_user_model_{abs(hash(str(path.resolve())))}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ModelError(f"cannot import {path} as a Python file")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # noqa: BLE001
        raise ModelError(f"importing {path} failed: {type(exc).__name__}: {exc}") from exc
    return _get_callable(module, func, str(path))


def _load_from_module(module_name: str, func: str) -> Callable[..., Any]:
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ModelError(f"cannot import module {module_name!r} for model factory "
                         f"'{module_name}:{func}' ({exc}); is the package installed?") from exc
    return _get_callable(module, func, module_name)


def _get_callable(module: Any, func: str, where: str) -> Callable[..., Any]:
    factory = getattr(module, func, None)
    if not callable(factory):
        funcs = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        close = difflib.get_close_matches(func, funcs, n=3)
        raise ModelError(f"{where} has no function {func!r}"
                         + (f"; did you mean {', '.join(close)}?" if close else ""))
    return factory


def channel_kwargs(task: Task) -> dict[str, int]:
    """The keyword arguments that fit a model to ``task``'s input channels.

    A task of several image columns (residual-tissue: anterior, posterior) stacks them as
    channels, so the model is built with ``in_chans`` = the number of views; a single view
    is replicated to whatever the model takes, so nothing is asked (four-pattern's models
    stay as they always were).
    """
    views = len(task.image_columns)
    return {"in_chans": views} if views > 1 else {}


def _call_factory(factory: Callable[..., Any], kwargs: dict[str, Any], name: str) -> Any:
    """Call with the keyword arguments the factory accepts (all, if it takes **kwargs);
    ``in_chans`` it must accept."""
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):
        return factory(**kwargs)
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
        return factory(**kwargs)
    if "in_chans" in kwargs and "in_chans" not in params:
        raise ModelError(f"model {name!r}: the task's input has {kwargs['in_chans']} channels (one "
                         "per view), but its factory takes no in_chans keyword; add one "
                         "(e.g. pass it on to timm.create_model(..., in_chans=in_chans))")
    return factory(**{k: v for k, v in kwargs.items() if k in params})


def create_model(name: str, *, num_classes: int, pretrained: bool = False,
                 **kwargs: Any) -> tuple[Any, ModelMeta]:
    """Build model ``name`` with ``num_classes`` outputs and return ``(module, ModelMeta)``.

    ``pretrained`` is passed on to the factory (for timm backbones: timm's own
    pretrained loading). Extra keyword arguments (``dropout``, ``in_chans``,
    ``pretrained_file``...) are passed where the factory accepts them; ``in_chans``
    (several views, :func:`channel_kwargs`) must be accepted and give a model whose first
    convolution takes that many channels.
    """
    import torch

    factory, source = resolve_factory(name)
    model = _call_factory(factory, {"num_classes": num_classes, "pretrained": pretrained, **kwargs},
                          name)
    if not isinstance(model, torch.nn.Module):
        raise ModelError(f"factory of {name!r} returned {type(model).__name__}, not a torch.nn.Module")
    views = kwargs.get("in_chans")
    first = _first_conv_in_chans(model)
    if views is not None and first is not None and first != views:
        raise ModelError(f"model {name!r} was asked for in_chans={views} (one channel per view) but "
                         f"its first convolution takes {first} channels; its factory must build "
                         "the model with in_chans")
    try:
        return model, _meta_for(name, source, model, num_classes, views)
    except ValidationError as exc:
        raise ModelError(f"model {name!r}: its metadata is out of the entry's bounds "
                         f"({validation_problems(exc)}); a model name is ASCII letters, digits, "
                         ". _ - : / @ + and space, at most 128 characters") from None


def _meta_for(name: str, source: str, model: Any, num_classes: int,
              views: int | None = None) -> ModelMeta:
    """The model's metadata; ``views``: the in_chans it was built with for a task of several views."""
    reg = registered().get(name)
    if reg is not None:
        head = reg.head.replace("{num_classes}", str(num_classes)) if reg.head else None
        return ModelMeta(name=name, source=reg.source, architecture=reg.architecture, head=head,
                         parameters=count_parameters(model), input_size=reg.input_size,
                         min_input_size=reg.min_input_size, in_chans=views or reg.in_chans,
                         channel_policy="views" if views else reg.channel_policy,  # type: ignore[arg-type]
                         pretrained_tag=reg.pretrained_tag, licence=reg.licence,
                         description=reg.description.splitlines()[0] if reg.description else "")
    # Timm and third-party models describe themselves through attributes, as timm models do.
    cfg = dict(getattr(model, "pretrained_cfg", None) or {})
    size = getattr(model, "input_size", None) or (cfg.get("input_size") or (3, 224, 224))[-1]
    min_size = getattr(model, "min_input_size", None) or (cfg.get("min_input_size") or (3, 32, 32))[-1]
    in_chans = views or getattr(model, "in_chans", None) or _first_conv_in_chans(model) or 3
    policy = "views" if views else (getattr(model, "channel_policy", None)
                                    or ("single" if in_chans == 1 else "replicate"))
    tag = getattr(model, "pretrained_tag", None)
    if tag is None and cfg.get("hf_hub_id"):
        tag = cfg["hf_hub_id"]
    return ModelMeta(name=name, source=source, architecture=getattr(model, "architecture", None)
                     or cfg.get("architecture") or name, head=getattr(model, "head_description", None),
                     parameters=count_parameters(model), input_size=int(size),
                     min_input_size=min(int(min_size), int(size)), in_chans=int(in_chans),
                     channel_policy=policy, pretrained_tag=tag,
                     licence=getattr(model, "licence", None) or cfg.get("license"),
                     description=getattr(model, "description", None)
                     or ((inspect.getdoc(model) or "").splitlines() or [""])[0])


def _first_conv_in_chans(model: Any) -> int | None:
    import torch

    for m in model.modules():
        if isinstance(m, torch.nn.Conv2d):
            return int(m.in_channels)
    return None


def describe_model(name: str, *, num_classes: int, **kwargs: Any) -> ModelMeta:
    """Metadata of ``name`` without allocating weights (built on torch's meta device)."""
    import torch

    with torch.device("meta"):
        _, meta = create_model(name, num_classes=num_classes, pretrained=False, **kwargs)
    return meta
