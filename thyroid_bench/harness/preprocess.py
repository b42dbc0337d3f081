"""Input pipeline: raw counts -> model input tensors, and the paper's augmentation.

As Qiao et al. 2021 prepared their scintigrams: each image's raw counts are
scaled to 8-bit grayscale [0, 255] by the image's own intensity range
(min -> 0, max -> 255, rounded), divided by 255, and resized to the model's
input size (bilinear, antialiased). Counts stay data in the dataset; this
scaling is a model transform.

A split is decoded shard by shard (:func:`prepared_chunks`: a few dozen images at a time,
so no more than one shard's PNG bytes are held) into one float32 tensor (N x V x S x S, one
channel per view of the task's ``image_columns``, each view scaled by its own range), kept
in memory so the data loader never limits a CPU run (:func:`load_split`); a split too large
for memory streams from a disk cache built by the same chunks
(:mod:`thyroid_bench.harness.stream`). A single grayscale view is replicated to the model's
input channels on the fly (:func:`to_channels`); several views (residual-tissue: anterior,
posterior) are the model's channels as they are.

Augmentation works on batches of those tensors with an explicit
``torch.Generator``, so a seed fixes it: horizontal flip with probability
``hflip_p``, rotation by an angle drawn uniformly from [0, ``rotation_deg``]
degrees about the image centre (zero fill), and mix-up (Zhang et al. 2018,
arXiv:1710.09412): x = lam x_i + (1 - lam) x_j, y = lam y_i + (1 - lam) y_j
with lam ~ Beta(alpha, alpha).
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
import torch.nn.functional as F

from thyroid_bench.data.private import WITHHELD_LABEL, withheld_splits
from thyroid_bench.errors import DatasetError, ThyroidBenchError
from thyroid_bench.tasks import UNKNOWN_GRADE, Task

if TYPE_CHECKING:
    from thyroid_bench.harness.rows import DiskRows

#: Images decoded and prepared at a time (memory: this many images at native size).
CHUNK_ROWS = 64

__all__ = [
    "scale_counts",
    "prepare_images",
    "prepare_views",
    "to_channels",
    "SplitTensors",
    "split_records",
    "prepared_chunks",
    "load_split",
    "hflip",
    "rotate",
    "augment",
    "targets",
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
    return prepare_views([images], size)


def prepare_views(views: Sequence[Sequence[np.ndarray]], size: int) -> torch.Tensor:
    """Several views of the same cases as channels: N x len(views) x size x size float32.

    ``views[v][i]`` is view ``v`` of case ``i``; each image is prepared on its own as
    :func:`prepare_images` does (own intensity range, then resized), so a channel is
    exactly that view's single-view tensor.
    """
    n = len(views[0]) if views else 0
    if any(len(v) != n for v in views):
        raise ValueError(f"every view needs one image per case; got {[len(v) for v in views]}")
    out = torch.empty((n, len(views), size, size), dtype=torch.float32)
    for c, images in enumerate(views):
        for i, counts in enumerate(images):
            out[i, c] = _prepare_one(counts, size)
    return out


def _prepare_one(counts: np.ndarray, size: int) -> torch.Tensor:
    """One image: 8-bit grayscale / 255, resized (bilinear, antialiased) to size x size."""
    x = torch.from_numpy(scale_counts(counts).astype(np.float32) / 255.0)[None, None]
    if x.shape[-2:] != (size, size):
        x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False,
                          antialias=True).clamp_(0.0, 1.0)
    return x[0, 0]


def to_channels(x: torch.Tensor, in_chans: int) -> torch.Tensor:
    """Replicate a 1-channel batch to ``in_chans`` channels (a view, no copy); a batch that
    already has ``in_chans`` channels (one per view) comes back as it is."""
    if x.shape[1] == in_chans:
        return x
    if x.shape[1] != 1:
        raise ValueError(f"a {x.shape[1]}-channel batch (one channel per view) cannot feed a model "
                         f"of {in_chans} input channels; build the model with in_chans={x.shape[1]}")
    return x.expand(-1, in_chans, -1, -1)


class SplitTensors:
    """One split decoded and preprocessed: images, labels, case ids and folds.

    ``x`` is the images in memory (a tensor) or on disk (:class:`~thyroid_bench.harness.rows.
    DiskRows`, which a streamed split holds): both give a batch tensor for ``x[idx]`` and
    ``x[a:b]``, so training and prediction take either. ``y`` holds class indices, or
    :data:`~thyroid_bench.tasks.UNKNOWN_GRADE` (-1) for a case known present but of unknown
    class; ``values`` holds the task's regression target (NaN where not measured), empty for
    a task without one.
    """

    def __init__(self, x: torch.Tensor | DiskRows, y: torch.Tensor, case_ids: list[str],
                 folds: np.ndarray, values: dict[str, np.ndarray] | None = None):
        self.x, self.y, self.case_ids, self.folds = x, y, case_ids, folds
        self.values = values or {}

    def __len__(self) -> int:
        return len(self.case_ids)

    def subset(self, mask: np.ndarray) -> SplitTensors:
        """Rows where ``mask`` is true, in order (on disk: the same file, read through a row map)."""
        idx = torch.from_numpy(np.flatnonzero(mask))
        rows = idx.numpy()
        x = self.x[idx] if isinstance(self.x, torch.Tensor) else self.x.subset(rows)
        return SplitTensors(x, self.y[idx], [self.case_ids[i] for i in idx.tolist()],
                            self.folds[rows], {k: v[rows] for k, v in self.values.items()})


def split_records(path: Path, split: str, task: Task) -> SplitTensors:
    """Everything of a split but its images (labels, case ids, folds, regression values):
    compact per-case records, read without touching the image columns. ``x`` is left empty
    (0 x 0) for the caller to fill."""
    from thyroid_bench.data.format import read_split

    extra = [task.regression_target] if task.regression_target else []
    table = read_split(path, split, columns=["case_id", "label", "fold", *extra])
    y = torch.from_numpy(_labels(table["label"].to_numpy(), task, path, split,
                                 withheld=split in withheld_splits(path)))
    values = {c: table[c].to_numpy(dtype=np.float64, na_value=np.nan) for c in extra}
    return SplitTensors(torch.empty((0, 0)), y, [str(c) for c in table["case_id"]],
                        table["fold"].to_numpy(dtype=np.int64), values)


def prepared_chunks(shard: Path, task: Task, size: int,
                    rows: int = CHUNK_ROWS) -> Iterator[tuple[int, torch.Tensor]]:
    """One shard's images prepared (:func:`prepare_views`), ``rows`` at a time:
    ``(first row within the shard, chunk n x V x size x size)``. Both data paths (in memory,
    streamed) are built from these chunks, so they hold the same values."""
    import pyarrow as pa

    from thyroid_bench.data.shards import image_bytes, open_shard, shard_error

    start = 0
    try:
        for batch in open_shard(shard).iter_batches(batch_size=rows, columns=list(task.image_columns)):
            images = [image_bytes(batch.column(c)) for c in task.image_columns]
            yield start, _prepare_chunk(images, size, shard, start)
            start += batch.num_rows
    except (pa.ArrowException, OSError) as exc:
        raise shard_error(shard, exc) from None


def _prepare_chunk(images: list[list[bytes | None]], size: int, shard: Path, start: int) -> torch.Tensor:
    from thyroid_bench.data.images import decode_image

    try:
        views = [[decode_image(b) for b in column] for column in images]
    except (ValueError, TypeError, OSError) as exc:
        # PIL's "cannot identify image file <BytesIO at 0x...>" says no more than "not an image".
        reason = "not an image" if isinstance(exc, OSError) else str(exc)
        raise DatasetError(f"{shard}: an image of rows {start}-{start + len(images[0]) - 1} does not "
                           f"decode ({reason}); verify the dataset (`thyroid-bench verify`) and "
                           "rebuild it") from None
    return prepare_views(views, size)


def load_split(path: Path, split: str, size: int, task: Task, progress: bool = True) -> SplitTensors:
    """Decode and preprocess a whole split of a dataset folder at input size ``size``, in memory.

    The model input is the task's image columns (``task.image_columns``) stacked as channels
    in that order (residual-tissue: anterior, posterior), each view prepared on its own.
    Labels may be :data:`~thyroid_bench.tasks.UNKNOWN_GRADE` only for a task with a
    detection reading (present, class unknown). Shards are decoded one chunk at a time
    (:func:`prepared_chunks`), so memory holds the float tensor and one chunk of images.
    """
    from tqdm.auto import tqdm

    from thyroid_bench.data.shards import shard_files

    out = split_records(path, split, task)
    x = torch.empty((len(out), len(task.image_columns), size, size), dtype=torch.float32)
    first = 0
    with tqdm(total=len(out), desc=f"decode {split}", unit="img", disable=not progress,
              leave=False) as bar:
        for shard in shard_files(path, split):
            n = 0
            for start, chunk in prepared_chunks(shard, task, size):
                n = start + len(chunk)
                if first + n > len(out):
                    raise _count_error(path, split, first + n, len(out))
                x[first + start:first + n] = chunk
                bar.update(len(chunk))
            first += n
    if first != len(out):
        raise _count_error(path, split, first, len(out))
    out.x = x
    return out


def _count_error(path: Path, split: str, images: int, rows: int) -> DatasetError:
    return DatasetError(f"dataset {path}: {split}'s shards hold {'at least ' if images > rows else ''}"
                        f"{images} images for {rows} rows; verify the dataset "
                        "(`thyroid-bench verify`) and rebuild it")


def _labels(raw: np.ndarray, task: Task, path: Path, split: str, withheld: bool = False) -> np.ndarray:
    """Class indices, checked: 0..k-1, or UNKNOWN_GRADE where the task has a detection reading
    (a split whose labels are withheld, :mod:`thyroid_bench.data.private`: -1 throughout)."""
    y = np.array(raw, dtype=np.int64)  # a copy: torch wants a writable array
    if withheld:
        return np.full_like(y, WITHHELD_LABEL)
    allowed = (y >= 0) & (y < task.num_classes)
    if task.detection is not None:
        allowed |= y == UNKNOWN_GRADE
    if not allowed.all():
        bad = int(np.flatnonzero(~allowed)[0])
        unknown = f" or {UNKNOWN_GRADE}: present, class unknown" if task.detection is not None else ""
        raise ThyroidBenchError(f"dataset {path}: {split} row {bad} has label {int(y[bad])}, not a "
                                f"class of task {task.name} (0-{task.num_classes - 1}{unknown}); "
                                "rebuild the dataset")
    return y


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


def targets(y: torch.Tensor, num_classes: int, unknown_column: bool = False) -> torch.Tensor:
    """One-hot targets of class indices ``y``.

    With ``unknown_column`` the targets get one more column, ``num_classes``, holding the
    cases labelled :data:`~thyroid_bench.tasks.UNKNOWN_GRADE` (present, class unknown), so
    mix-up can mix them too; the loss reads that column as "present".
    """
    if not unknown_column:
        return F.one_hot(y, num_classes)
    return F.one_hot(torch.where(y == UNKNOWN_GRADE, num_classes, y), num_classes + 1)


def mixup(x: torch.Tensor, y: torch.Tensor, num_classes: int, alpha: float,
          generator: torch.Generator, unknown_column: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """Mix-up a batch: returns mixed images and soft targets (rows sum to 1).

    ``y`` holds class indices; with ``alpha <= 0`` the one-hot targets come back unmixed.
    ``unknown_column`` adds the column of unknown-class cases (:func:`targets`).
    """
    target = targets(y, num_classes, unknown_column).to(x.dtype)
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
                num_classes: int, unknown_column: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One training batch from the in-memory split: rows ``idx``, flipped, rotated and mixed up.

    Returns images (on ``x``'s device) and soft targets (with the unknown-class column when
    ``unknown_column``); this is the whole data loader.
    """
    xb = augment(x[idx], generator, hflip_p=hflip_p, rotation_deg=rotation_deg)
    return mixup(xb, y[idx], num_classes, mixup_alpha, generator, unknown_column)
