"""Pretrained weights: where they come from, and what happens when they cannot be had.

Order: a local file given with ``--weights`` (a timm ``.safetensors`` or
``.pth``/``.bin`` checkpoint of the backbone, loaded through timm's pretrained
path: classifier dropped, first convolution adapted); the Hugging Face cache
(``HF_HUB_CACHE`` / ``HF_HOME``); the Hugging Face Hub. When none is
reachable the run prints one warning line saying how to provide weights and
continues from random initialisation, recording ``pretrained: "none"``;
``--require-pretrained`` makes that an error. The Hub check is fast: it
honours ``HF_HUB_OFFLINE`` and otherwise opens one TCP connection with a
short timeout instead of letting downloads retry.
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlparse

from thyroid_bench.errors import ThyroidBenchError

__all__ = ["PretrainedChoice", "PretrainedError", "hub_reachable", "cached_weights",
           "resolve_pretrained", "unavailable_message", "HUB_TIMEOUT_S"]

#: Seconds to wait for a TCP connection to the Hub before calling it unreachable.
HUB_TIMEOUT_S = 3.0
_WEIGHT_FILES = ("model.safetensors", "pytorch_model.bin", "open_clip_pytorch_model.bin")


class PretrainedError(ThyroidBenchError):
    """Pretrained weights were required but cannot be loaded."""


@dataclass(frozen=True)
class PretrainedChoice:
    """What to pass to the factory, and what the entry records."""

    pretrained: bool
    file: str | None
    tag: str
    sha256: str | None = None
    origin: str = "none"  # none | file | cache | hub | factory


def _truthy(value: str | None) -> bool:
    return (value or "").strip().lower() in ("1", "true", "yes", "on")


def hub_reachable(timeout: float = HUB_TIMEOUT_S) -> tuple[bool, str]:
    """(reachable, reason): ``HF_HUB_OFFLINE`` honoured, else one TCP connect to the endpoint."""
    if _truthy(os.environ.get("HF_HUB_OFFLINE")) or _truthy(os.environ.get("TRANSFORMERS_OFFLINE")):
        return False, "HF_HUB_OFFLINE is set"
    endpoint = os.environ.get("HF_ENDPOINT", "https://huggingface.co")
    parsed = urlparse(endpoint)
    host = parsed.hostname or "huggingface.co"
    port = parsed.port or (80 if parsed.scheme == "http" else 443)
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True, f"{host}:{port} reachable"
    except OSError as exc:
        return False, f"{host} is not reachable ({type(exc).__name__}: {exc})"


def cached_weights(tag: str) -> str | None:
    """Path of a Hub weights file already in the local Hugging Face cache, or None."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub is a dependency
        return None
    for filename in _WEIGHT_FILES:
        found = try_to_load_from_cache(repo_id=tag, filename=filename)
        if isinstance(found, str) and Path(found).is_file():
            return found
    return None


def unavailable_message(model: str, tag: str, reason: str) -> str:
    """The one warning line printed when pretrained weights cannot be had."""
    return (f"warning: ImageNet weights for {model} ({tag}) unavailable: {reason}; training from "
            f"random initialisation (entry records pretrained: none). To use them, pass --weights "
            f"PATH (a timm .safetensors/.pth file) or fill the HF cache on a connected machine "
            f"(`huggingface-cli download {tag}`; set HF_HOME to that cache).")


def resolve_pretrained(model: str, tag: str | None, *, want: bool, weights: str | os.PathLike | None,
                       require: bool, warn: Callable[[str], None] = print,
                       timeout: float = HUB_TIMEOUT_S) -> PretrainedChoice:
    """Decide where the backbone's starting weights come from (see module docstring)."""
    from thyroid_bench.hashing import sha256_file

    if weights is not None:
        path = Path(weights).expanduser()
        if not path.is_file():
            raise PretrainedError(f"--weights {path}: no such file; give a timm .safetensors or .pth "
                                  "weights file of the backbone")
        return PretrainedChoice(True, str(path), f"file:{path.name}", sha256_file(path), "file")
    if not want:
        return PretrainedChoice(False, None, "none")
    if tag is None:
        # A third-party factory without a declared tag loads whatever its pretrained=True means.
        return PretrainedChoice(True, None, "factory", None, "factory")
    cached = cached_weights(tag)
    if cached is not None:
        return PretrainedChoice(True, cached, tag, sha256_file(cached), "cache")
    ok, reason = hub_reachable(timeout)
    if ok:
        return PretrainedChoice(True, None, tag, None, "hub")
    if require:
        raise PretrainedError(f"--require-pretrained: weights {tag} for {model} cannot be loaded: "
                              f"{reason}; pass --weights PATH or fill the HF cache")
    warn(unavailable_message(model, tag, reason))
    return PretrainedChoice(False, None, "none")
