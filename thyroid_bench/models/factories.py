"""Factories for models named ``timm:<name>``.

Any timm architecture becomes a :class:`~thyroid_bench.models.paper.Classifier`:
the timm backbone without its classifier (``num_classes=0``) and one linear
layer (after dropout) to the task's classes. A single grayscale view is the single
input channel (``in_chans=1``; timm sums a pretrained first convolution over
its three input channels, so ImageNet weights still load); a task of several views
builds it with one channel per view (``in_chans=2`` for residual-tissue; timm repeats
and rescales the pretrained first convolution).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from torch import nn

from thyroid_bench.models.paper import Classifier, timm_backbone

__all__ = ["timm_factory", "TIMM_IN_CHANS"]

#: Input channels of ``timm:<name>`` models fed a single view.
TIMM_IN_CHANS = 1


def timm_factory(arch: str) -> Callable[..., Classifier]:
    """A factory building timm architecture ``arch`` with a linear head to ``num_classes``."""

    def factory(*, num_classes: int, pretrained: bool = False, dropout: float = 0.0,
                pretrained_file: str | None = None, in_chans: int = TIMM_IN_CHANS,
                **kwargs: Any) -> Classifier:
        backbone = timm_backbone(arch, pretrained=pretrained, in_chans=in_chans,
                                 pretrained_file=pretrained_file, **kwargs)
        head = nn.Sequential(nn.Dropout(p=dropout), nn.Linear(backbone.num_features, num_classes))
        model = Classifier(backbone, head, backbone.num_features)
        cfg = dict(getattr(backbone, "pretrained_cfg", None) or {})
        model.pretrained_cfg = cfg  # type: ignore[assignment]
        model.architecture = arch  # type: ignore[assignment]
        model.in_chans = in_chans  # type: ignore[assignment]
        model.channel_policy = "single" if in_chans == 1 else "views"  # type: ignore[assignment]
        head_text = f"dropout p, FC {backbone.num_features}->{num_classes}"
        model.head_description = head_text  # type: ignore[assignment]
        model.description = f"timm {arch} + linear head"  # type: ignore[assignment]
        model.licence = cfg.get("license")  # type: ignore[assignment]
        return model

    factory.__name__ = f"timm_{arch}"
    return factory
