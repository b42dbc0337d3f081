"""Training protocols as data: every run names one, and its config prints it whole.

A protocol has a name and a version, written ``name@version`` (``quick@2``). Changing what a
protocol computes makes a new version; an old version stays registered, unchanged, so its
entries stay valid and can be reproduced. A bare name (``quick``) means its latest version.
Entries record the version in their protocol parameters (``version``); a record without one
is version 1, as every entry written before versions existed. Fields added after version 1
(:data:`LATER_FIELDS`) are left out of a record while they hold the value that version 1
computes with, so a version-1 record is what it always was.

A :class:`Protocol` fixes everything about training that is not the model:
optimiser, schedule, epochs, batch size, input size, augmentation, pretrained
weights, and model selection. Selection uses one fold of ``train``
(``selection_fold``: fold 0 in every built-in protocol); the model trains on the
other folds and never sees the task's evaluation splits (``internal``,
``external``) before the final evaluation.

- ``paper``: Qiao et al. 2021 as published (Adam lr 1e-3, weight decay 1e-4,
  300 epochs, batch 12, dropout 0.8, flip / rotation 0-90 / mix-up,
  ImageNet-pretrained, native input size). The default on a GPU.
- ``quick@1``: small input, few epochs, from random initialisation, so a paper
  model trains and evaluates within about 15 minutes on two CPU cores.
- ``quick@2``: the default on a CPU; ``quick@1``'s budget, with the class
  imbalance weighed in the loss (see BENCHMARKS.md, "quick@2", for the fold-0
  ablation that chose it).
- ``linear-probe``: the backbone frozen (ImageNet weights when available),
  its features computed once and cached, a linear head trained on them.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from collections.abc import Mapping
from typing import Any, Literal

from thyroid_bench.errors import ThyroidBenchError, did_you_mean
from thyroid_bench.tasks import Task

__all__ = ["Protocol", "PROTOCOLS", "LATER_FIELDS", "ProtocolError", "get_protocol",
           "protocol_versions", "version_of", "default_protocol_name"]


class ProtocolError(ThyroidBenchError):
    """An unknown protocol or an invalid override."""


@dataclass(frozen=True)
class Protocol:
    """Everything about training except the model. Written into config.json and entry.json."""

    name: str
    description: str
    epochs: int
    batch_size: int
    optimizer: Literal["adam", "adamw"]
    lr: float
    weight_decay: float
    lr_schedule: Literal["constant", "cosine"] = "constant"
    warmup_epochs: int = 0
    #: Input size in pixels (square); ``None`` means the model's native size. A size below
    #: the model's minimum (``ModelMeta.min_input_size``) is raised to it.
    input_size: int | None = None
    #: Dropout of the model's head (the paper's: 0.8 before the last layer).
    dropout: float = 0.8
    #: Use ImageNet-pretrained backbone weights (Hub, HF cache or --weights).
    pretrained: bool = True
    hflip_p: float = 0.5
    #: Random rotation by an angle drawn uniformly from [0, rotation_deg] degrees.
    rotation_deg: float = 90.0
    #: Mix-up (Zhang et al. 2018) Beta(alpha, alpha) mixing; 0 disables it.
    mixup_alpha: float = 0.2
    label_smoothing: float = 0.0
    #: Train fold held out for model selection (best epoch); never internal or external.
    selection_fold: int = 0
    #: Figure on the selection fold that picks the best epoch; ``None``: the task's
    #: (``Task.selection_metric``), settled by :meth:`for_task` before a run records it.
    selection_metric: str | None = None
    #: Stop when the selection figure has not improved for this many epochs (0: never).
    early_stopping_patience: int = 0
    #: Freeze the backbone, cache its features, train only a linear head.
    linear_probe: bool = False
    #: The protocol's version: a change of what it computes is a new version (``quick@2``).
    version: int = 1
    #: Class weights of the loss: class c weighs ``(1 / n_c) ** class_weight_power``, scaled so
    #: the training cases' mean weight is 1 (``n_c``: class c's training cases). 0: unweighted,
    #: 1: inverse frequency, 0.5: its square root.
    class_weight_power: float = 0.0

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            problems.append(f"batch_size must be >= 1, got {self.batch_size}")
        if not 0 <= self.dropout < 1:
            problems.append(f"dropout must lie in [0, 1), got {self.dropout}")
        if not 0 <= self.hflip_p <= 1:
            problems.append(f"hflip_p must lie in [0, 1], got {self.hflip_p}")
        if self.lr <= 0:
            problems.append(f"lr must be > 0, got {self.lr}")
        if self.input_size is not None and self.input_size < 8:
            problems.append(f"input_size must be >= 8 pixels, got {self.input_size}")
        if self.version < 1:
            problems.append(f"version must be >= 1, got {self.version}")
        if not 0 <= self.class_weight_power <= 2:
            problems.append(f"class_weight_power must lie in [0, 2], got {self.class_weight_power}")
        if self.selection_fold < 0:
            problems.append(f"selection_fold must be a train fold (0 or more), got {self.selection_fold}")
        if problems:
            raise ProtocolError(f"protocol {self.label!r}: " + "; ".join(problems))

    def with_overrides(self, **overrides: Any) -> Protocol:
        """A copy with some fields replaced (e.g. ``epochs`` from ``--epochs``)."""
        fields = {f.name for f in dataclasses.fields(self)}
        unknown = set(overrides) - fields
        if unknown:
            raise ProtocolError(f"unknown protocol field(s) {sorted(unknown)}; fields: {sorted(fields)}")
        return dataclasses.replace(self, **{k: v for k, v in overrides.items() if v is not None})

    def for_task(self, task: Task) -> Protocol:
        """This protocol as it runs on ``task``: the task's selection metric unless the protocol
        names one, a selection fold the task's datasets have, and no class weights on a task
        that does not take them (``Task.class_weighting``: residual-tissue trains unweighted
        under ``quick@2``, as under ``quick@1``, and its record says ``class_weight_power`` 0)."""
        if not self.selection_fold < task.folds:
            raise ProtocolError(f"protocol {self.name!r}: selection_fold {self.selection_fold} is not "
                                f"a fold of task {task.name} (0-{task.folds - 1})")
        changes: dict[str, Any] = {}
        if self.selection_metric is None:
            changes["selection_metric"] = task.selection_metric
        if self.class_weight_power and not task.class_weighting:
            changes["class_weight_power"] = 0.0
        return dataclasses.replace(self, **changes) if changes else self

    @property
    def label(self) -> str:
        """``name@version``, as the command line, the log and the leaderboard write it."""
        return versioned_name(self.name, self.version)

    @property
    def slug(self) -> str:
        """The protocol in run folder names and entry ids (:func:`version_slug`)."""
        return version_slug(self.name, self.version)

    def to_dict(self) -> dict[str, Any]:
        """Every field, JSON-able; a version-1 protocol leaves out a field of
        :data:`LATER_FIELDS` that holds its version-1 value (its record is as it was before
        versions). A later version records every field."""
        return {k: v for k, v in dataclasses.asdict(self).items()
                if not (self.version == 1 and k in LATER_FIELDS and v == LATER_FIELDS[k])}


def versioned_name(name: str, version: object) -> str:
    """``name@version`` (``quick@2``): how the command line, logs and the leaderboard name a
    protocol version."""
    return f"{name}@{version}"


def version_slug(name: str, version: object) -> str:
    """A protocol version in a file or folder name: the bare name for version 1, as before
    versions existed (``quick``, so committed run folders and entry ids keep their names),
    the version appended from version 2 on (``quick2``)."""
    return name if version == 1 else f"{name}{version}"


#: Fields added after version 1, with the value that version 1 computes with.
LATER_FIELDS: dict[str, Any] = {"version": 1, "class_weight_power": 0.0}


_QUICK_1 = dict(epochs=6, batch_size=32, optimizer="adamw", lr=2e-3, weight_decay=0.05,
                lr_schedule="cosine", warmup_epochs=1, input_size=64, dropout=0.2, pretrained=False,
                hflip_p=0.5, rotation_deg=90.0, mixup_alpha=0.0)

#: Every registered protocol version, by ``name@version``.
PROTOCOLS: dict[str, Protocol] = {
    p.label: p
    for p in (
        Protocol(
            name="paper",
            description="Qiao et al. 2021: Adam lr 1e-3, weight decay 1e-4, 300 epochs, batch 12, "
            "dropout 0.8, flip/rotation 0-90/mix-up, ImageNet-pretrained, native input size",
            epochs=300, batch_size=12, optimizer="adam", lr=1e-3, weight_decay=1e-4,
            lr_schedule="constant", input_size=None, dropout=0.8, pretrained=True,
            hflip_p=0.5, rotation_deg=90.0, mixup_alpha=0.2,
        ),
        Protocol(
            name="quick",  # its description is part of every quick@1 record: kept as written
            description="CPU default: 64x64 input (75x75 for the inceptions, their minimum), "
            "6 epochs of AdamW with a one-epoch warm-up and cosine decay, batch 32, "
            "flip/rotation 0-90, no mix-up, random initialisation",
            **_QUICK_1,
        ),
        Protocol(
            name="quick", version=2,
            description="CPU default: quick@1 with the loss weighted by inverse class frequency "
            "(the rare focal pattern weighs as much as the common ones)",
            **{**_QUICK_1, "class_weight_power": 1.0},
        ),
        Protocol(
            name="linear-probe",
            description="frozen backbone (ImageNet weights when available), features computed once "
            "and cached, a linear head trained by AdamW on them for 200 full-batch epochs",
            epochs=200, batch_size=256, optimizer="adamw", lr=1e-2, weight_decay=1e-4,
            lr_schedule="cosine", input_size=None, dropout=0.0, pretrained=True,
            hflip_p=0.0, rotation_deg=0.0, mixup_alpha=0.0, linear_probe=True,
        ),
    )
}


def version_of(parameters: Mapping[str, Any]) -> int | None:
    """The version a protocol record's parameters name: 1 when they name none (every record
    written before versions existed), ``None`` when ``version`` is not a whole number >= 1."""
    version = parameters.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        return None
    return version


def protocol_versions(name: str) -> list[Protocol]:
    """The registered versions of protocol ``name``, oldest first (empty if none)."""
    return sorted((p for p in PROTOCOLS.values() if p.name == name), key=lambda p: p.version)


def get_protocol(name: str, version: int | None = None) -> Protocol:
    """The protocol ``name@version`` (``name`` may carry it: ``quick@1``); without a version,
    the latest. :class:`ProtocolError` with close matches otherwise."""
    base, sep, tail = name.partition("@")
    if sep:
        if not tail.isdigit() or version is not None and int(tail) != version:
            raise ProtocolError(f"protocol {name!r}: expected NAME or NAME@VERSION, e.g. quick@1")
        version = int(tail)
    versions = protocol_versions(base)
    if not versions:
        names = sorted({p.name for p in PROTOCOLS.values()} | set(PROTOCOLS))
        hint = did_you_mean(name, names, n=2, cutoff=0.4)
        raise ProtocolError(f"unknown protocol {name!r}; {hint}known: {', '.join(PROTOCOLS)}")
    if version is None:
        return versions[-1]
    for p in versions:
        if p.version == version:
            return p
    raise ProtocolError(f"protocol {base!r} has no version {version}; versions: "
                        f"{', '.join(p.label for p in versions)}")


def default_protocol_name(device: str) -> str:
    """``paper`` on a GPU, ``quick`` (its latest version) on a CPU."""
    return "paper" if device.startswith("cuda") else "quick"
