"""The four networks of Qiao et al. 2021, built as the paper describes.

Qiao et al. (BMC Medical Imaging 2021, doi 10.1186/s12880-021-00710-4) took
ResNet50, DenseNet169, InceptionV3 and InceptionResNetV2, removed each one's
last (classification) layer and added three fully connected layers, with
dropout 0.8 before the last, ending in the four uptake patterns. The paper does
not give the widths of the two hidden layers; thyroid-bench fixes them at
1024 and 256 (:data:`HEAD_WIDTHS`), so every run of a paper model has the same
head.

The backbones are timm's (``num_classes=0``: global-pooled features, no
classifier). Input: a single grayscale view replicated to three channels, as the
ImageNet-pretrained networks expect (channel policy ``replicate``); a task of several views
(residual-tissue: anterior, posterior) builds them with one input channel per view
(``in_chans=2``, policy ``views``), timm adapting the pretrained first convolution.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from thyroid_bench.models.registry import register_model

__all__ = ["HEAD_WIDTHS", "PAPER_DROPOUT", "PAPER_MODELS", "Classifier", "paper_head", "timm_backbone"]

#: Widths of the two hidden fully connected layers of the paper head (thyroid-bench's choice).
HEAD_WIDTHS: tuple[int, int] = (1024, 256)
#: Dropout before the last fully connected layer (Qiao et al. 2021).
PAPER_DROPOUT = 0.8


class Classifier(nn.Module):
    """A feature backbone followed by a head: ``head(backbone(x))``.

    ``backbone`` maps an image batch to pooled features of size
    ``num_features``; ``head`` maps those to class logits. The split lets the
    linear-probe protocol freeze the backbone and cache its features.
    """

    def __init__(self, backbone: nn.Module, head: nn.Module, num_features: int) -> None:
        super().__init__()
        self.backbone = backbone
        self.head = head
        self.num_features = int(num_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        return self.head(self.backbone(x))


def paper_head(num_features: int, num_classes: int, dropout: float = PAPER_DROPOUT,
               widths: tuple[int, int] = HEAD_WIDTHS) -> nn.Sequential:
    """Three fully connected layers, ReLU between them, dropout before the last."""
    return nn.Sequential(
        nn.Linear(num_features, widths[0]), nn.ReLU(inplace=True),
        nn.Linear(widths[0], widths[1]), nn.ReLU(inplace=True),
        nn.Dropout(p=dropout),
        nn.Linear(widths[1], num_classes),
    )


def timm_backbone(arch: str, *, pretrained: bool = False, in_chans: int = 3,
                  pretrained_file: str | None = None, **kwargs: Any) -> nn.Module:
    """A timm model without its classifier (``num_classes=0``).

    ``pretrained_file`` loads weights from a local file through timm's own
    pretrained path (classifier dropped, first convolution adapted to
    ``in_chans``) instead of the Hub.
    """
    import timm

    extra: dict[str, Any] = {}
    if pretrained and pretrained_file:
        extra["pretrained_cfg_overlay"] = {"file": str(pretrained_file)}
    return timm.create_model(arch, pretrained=pretrained, num_classes=0, in_chans=in_chans,
                             **extra, **kwargs)


def _paper_model(arch: str, num_classes: int, pretrained: bool, dropout: float,
                 pretrained_file: str | None, in_chans: int = 3) -> Classifier:
    backbone = timm_backbone(arch, pretrained=pretrained, in_chans=in_chans,
                             pretrained_file=pretrained_file)
    return Classifier(backbone, paper_head(backbone.num_features, num_classes, dropout),
                      backbone.num_features)


_HEAD = (f"paper head: FC {{features}}->{HEAD_WIDTHS[0]}, ReLU, FC {HEAD_WIDTHS[0]}->{HEAD_WIDTHS[1]}, "
         f"ReLU, dropout p, FC {HEAD_WIDTHS[1]}->{{num_classes}}")

# name -> (timm architecture, native input size, minimum input size, pretrained weights,
# pooled features). The inception stems need at least 75x75 pixels (Keras states the same).
PAPER_MODELS: dict[str, tuple[str, int, int, str, int]] = {
    "resnet50": ("resnet50", 224, 32, "timm/resnet50.a1_in1k", 2048),
    "densenet169": ("densenet169", 224, 32, "timm/densenet169.tv_in1k", 1664),
    "inception_v3": ("inception_v3", 299, 75, "timm/inception_v3.tv_in1k", 2048),
    "inception_resnet_v2": ("inception_resnet_v2", 299, 75, "timm/inception_resnet_v2.tf_in1k", 1536),
}


def _register(name: str, arch: str, size: int, min_size: int, tag: str, features: int) -> None:
    @register_model(name, architecture=arch, input_size=size, min_input_size=min_size, in_chans=3,
                    channel_policy="replicate",
                    pretrained_tag=tag, licence="apache-2.0",
                    head=_HEAD.replace("{features}", str(features)),
                    description=f"{arch} (timm) + the paper's three-layer head (Qiao et al. 2021)")
    def factory(*, num_classes: int, pretrained: bool = False, dropout: float = PAPER_DROPOUT,
                pretrained_file: str | None = None, in_chans: int = 3) -> Classifier:
        return _paper_model(arch, num_classes, pretrained, dropout, pretrained_file, in_chans)

    factory.__name__ = name


for _name, (_arch, _size, _min, _tag, _features) in PAPER_MODELS.items():
    _register(_name, _arch, _size, _min, _tag, _features)
