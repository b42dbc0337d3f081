"""Input pipeline: raw counts -> model input tensors, and the paper's augmentation.

As Qiao et al. 2021 prepared their scintigrams: each image's raw counts are
scaled to 8-bit grayscale [0, 255] by the image's own intensity range
(min -> 0, max -> 255, rounded), divided by 255, and resized to the model's
input size (bilinear, antialiased). Counts stay data in the dataset; this
scaling is a model transform.

Whole splits are decoded once and kept in memory as one float32 tensor
(N x 1 x S x S), so the data loader never limits a CPU run. The grayscale
channel is replicated to the model's input channels on the fly (:func:`to_channels`).

Augmentation works on batches of those tensors with an explicit
``torch.Generator``, so a seed fixes it: horizontal flip with probability
``hflip_p``, rotation by an angle drawn uniformly from [0, ``rotation_deg``]
degrees about the image centre (zero fill), and mix-up (Zhang et al. 2018,
arXiv:1710.09412): x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j
with lam ~ Beta(alpha, alpha).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.tasks import Task

__all__ = [
    "scale_counts",
    "prepare_images",
    "to_channels",
    "SplitTensors",
    "load_split",
    "hflip",
    "rotate",
    "augment",
    "mixup",
    "train_batch",
]


def scale_counts(counts: np.ndarray) -> np.ndarray:
    """Raw counts -> uint8 grayscale [0, 255] by the image's own range (a flat image -> 0)."""
    arr = np.asarray(counts, dtype=np.float64)
    lo, hi = float(arr.min()), float(arr.max())
    if hi <= lo:
        return np.zeros(arr.shape, dtype=np.uint8)
    return np.rint((arr - lo) * (255.0 / (hi - lo))).astype(np.uint8)


def prepare_images(images: Sequence[np.ndarray], size: int) -> torch.Tensor:
    """Scale each image to [0, 255], divide by 255, resize to ``size``: N x 1 x size x size float32."""
    out = torch.empty((len(images), 1, size, size), dtype=torch.float32)
    for i, counts in enumerate(images):
        x = torch.from_numpy(scale_counts(counts).astype(np.float32) / 255.0)[None, None]
        if x.shape[-2:] != (size, size):
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                              antialias=True).clamp_(0.0, 1.0)
        out[i] = x[0]
    return out


def to_channels(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Replicate a 1-channel batch to ``in_chans`` channels (a view, no copy)."""
    if x.shape[1] == in_chans:
        return x
    if x.shape[1] != 1:
        raise ValueError(f"expected a 1-channel batch, got {x.shape[1]} channels")
    return x.expand(-1, in_chans, -1, -1)


class SplitTensors:
    """One split decoded and preprocessed: images, labels, case ids and folds."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor, case_ids: list[str], folds: np.ndarray):
        self.x, self.y, self.case_ids, self.folds = x, y, case_ids, folds

    def __len__(self) -> int:
        return len(self.case_ids)

    def subset(self, mask: np.ndarray) -> SplitTensors:
        """Rows where ``mask`` is true, in order."""
        idx = torch.from_numpy(np.flatnonzero(mask))
        return SplitTensors(self.x[idx], self.y[idx], [self.case_ids[i] for i in idx.tolist()],
                            self.folds[idx.numpy()])


def load_split(path: Path, split: str, size: int, task: Task, progress: bool = True) -> SplitTensors:
    """Decode and preprocess a whole split of a dataset folder at input size ``size``.

    The model input is the task's image column (``task.image_columns``); a task whose input
    is several views is refused with a clear error until the harness stacks views.
    """
    from tqdm.auto import tqdm

    from thyroid_bench.data.format import read_split
    from thyroid_bench.data.images import decode_image

    if len(task.image_columns) != 1:
        raise ThyroidBenchError(f"task {task.name}: its model input is {len(task.image_columns)} "
                                f"image columns {list(task.image_columns)}; this harness trains on "
                                "one view per case")
    column = task.image_columns[0]
    table = read_split(path, split, columns=["case_id", column, "label", "fold"])
    images = [decode_image(b) for b in tqdm(table[column], desc=f"decode {split}", unit="img",
                                            disable=not progress, leave=False)]
    x = prepare_images(images, size)
    y = torch.from_numpy(np.array(table["label"], dtype=np.int64))
    return SplitTensors(x, y, [str(c) for c in table["case_id"]], table["fold"].to_numpy(dtype=np.int64))


# --------------------------------------------------------------------------- augmentation
def hflip(x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mirror left-right the images of batch ``x`` where ``mask`` is true."""
    return torch.where(mask.view(-1, 1, 1, 1).to(x.device), x.flip(-1), x)


def rotate(x: torch.Tensor, degrees: torch.Tensor) -> torch.Tensor:
    """Rotate each image of ``x`` counter-clockwise by its angle (degrees) about the centre, zero fill."""
    theta_rad = degrees.to(torch.float64) * (math.pi / 180.0)
    cos, sin = torch.cos(theta_rad), torch.sin(theta_rad)
    zeros = torch.zeros_like(cos)
    # affine_grid maps output coordinates to input coordinates: rotating the image by +a
    # samples the input at R(-a) applied to the output point (y axis points down).
    theta = torch.stack([torch.stack([cos, -sin, zeros], -1), torch.stack([sin, cos, zeros], -1)], 1)
    grid = F.affine_grid(theta.to(device=x.device, dtype=x.dtype), list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def augment(x: torch.Tensor, generator: torch.Generator, *, hflip_p: float,
            rotation_deg: float) -> torch.Tensor:
    """Random horizontal flip (probability ``hflip_p``) and rotation in [0, rotation_deg] degrees."""
    n = x.shape[0]
    if hflip_p > 0:
        x = hflip(x, torch.rand(n, generator=generator) < hflip_p)
    if rotation_deg > 0:
        x = rotate(x, torch.rand(n, generator=generator, dtype=torch.float64) * rotation_deg)
    return x


def mixup(x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float,
          generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix-up a batch: returns mixed images and soft targets (rows sum to 1).

    ``y`` holds class indices; with ``alpha <= 0`` the one-hot targets come back unmixed.
    """
    target = F.one_hot(y, num_classes).to(x.dtype)
    if alpha <= 0:
        return x, target
    lam = _beta(alpha, generator)
    perm = torch.randperm(x.shape[0], generator=generator).to(x.device)
    return lam * x + (1 - lam) * x[perm], lam * target + (1 - lam) * target[perm]


def _beta(alpha: float, generator: torch.Generator) -> float:
    """One draw of Beta(alpha, alpha) from the seeded generator, via numpy's Beta on a derived seed."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return float(np.random.default_rng(seed).beta(alpha, alpha))


def train_batch(x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor, generator: torch.Generator, *,
                hflip_p: float, rotation_deg: float, mixup_alpha: float,
                num_classes: int) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch from the in-memory split: rows ``idx``, flipped, rotated and mixed up.

    Returns images (on ``x``'s device) and soft targets; this is the whole data loader.
    """
    xb = augment(x[idx], generator, hflip_p=hflip_p, rotation_deg=rotation_deg)
    return mixup(xb, y[idx], num_classes, mixup_alpha, generator)
