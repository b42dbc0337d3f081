"""Training and inference loops: fit a model under a protocol, predict probabilities.

Determinism: on a CPU, :func:`set_determinism` fixes the seeds, the number of
threads and ``torch.use_deterministic_algorithms(True)``; all randomness of a
run (shuffling, augmentation, mix-up, dropout, initialisation) then flows from
the seed, and two runs with the same seed and thread count give the same
weights, predictions and metrics bit for bit. On CUDA the run uses automatic
mixed precision (bfloat16 where supported), and is reproducible only up to the
GPU's non-deterministic kernels.

How a run uses its device (:class:`Accel`: mixed precision, memory format,
``torch.compile``) is separate from the protocol: it changes speed and
rounding, not what is computed. The whole training split lives on the device
(streamed, on disk: each batch is read by its rows and moved there,
:mod:`thyroid_bench.harness.stream`) and is augmented there batch by batch, so a
GPU never waits on a data loader;
the loop reads nothing back from the device within an epoch (the loss is summed
on the device), so the host queues work ahead of the GPU. Under ``torchrun``
:func:`fit` trains with DistributedDataParallel (:mod:`thyroid_bench.harness.distributed`).
"""

from __future__ import annotations

import copy
import math
import os
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from thyroid_bench.evaluation.suites import selection_scores
from thyroid_bench.harness.distributed import SINGLE, DistInfo
from thyroid_bench.harness.preprocess import SplitTensors, targets, to_channels, train_batch
from thyroid_bench.harness.protocols import Protocol
from thyroid_bench.tasks import Task

__all__ = [
    "set_determinism",
    "resolve_device",
    "Accel",
    "resolve_accel",
    "place_model",
    "TrainResult",
    "task_loss",
    "class_weights",
    "fit",
    "fit_linear_probe",
    "predict_proba",
    "extract_features",
]

Log = Callable[[str], None]


def resolve_device(device: str = "auto", dist: DistInfo = SINGLE) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given.

    Under a multi-process launcher each rank takes CUDA device ``LOCAL_RANK``.
    """
    from thyroid_bench.errors import ThyroidBenchError

    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ThyroidBenchError(f"--device {device}: CUDA is not available on this machine "
                                "(torch.cuda.is_available() is False); use --device cpu")
    if device not in ("auto", "cpu") and not device.startswith("cuda"):
        raise ThyroidBenchError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    if device == "cpu" or (device == "auto" and not torch.cuda.is_available()):
        return torch.device("cpu")
    if dist.enabled:
        return torch.device("cuda", dist.local_rank)
    return torch.device("cuda" if device == "auto" else device)


@dataclass(frozen=True)
class Accel:
    """How a run uses its device; the same computation, faster (and rounded differently).

    ``amp``: autocast dtype (``"bfloat16"`` / ``"float16"``) or ``None`` for float32.
    ``channels_last``: model and batches in NHWC memory format.
    ``compile``: wrap the model in ``torch.compile`` (first steps are slow while it compiles).
    """

    amp: str | None = None
    channels_last: bool = False
    compile: bool = False

    @property
    def amp_dtype(self) -> torch.dtype:
        return getattr(torch, self.amp) if self.amp else torch.float32

    def autocast(self, device: torch.device) -> torch.autocast:
        """The autocast context for a forward pass (disabled when ``amp`` is ``None``)."""
        return torch.autocast(device.type, dtype=self.amp_dtype, enabled=self.amp is not None)

    def to_dict(self) -> dict[str, Any]:
        return {"amp": self.amp, "channels_last": self.channels_last, "compile": self.compile}


def resolve_accel(device: torch.device, *, amp: str = "auto", channels_last: str = "auto",
                  compile: bool = False) -> Accel:
    """Defaults per device: channels-last everywhere (measured 1.16x faster training on
    the CPU, see BENCHMARKS.md; the usual layout for cuDNN with mixed precision); bfloat16
    autocast on CUDA (float16 where bfloat16 is unsupported), float32 on the CPU.
    ``amp`` is ``auto``, ``off``, ``bf16`` or ``fp16``; ``channels_last`` is ``auto``,
    ``on`` or ``off``.
    """
    from thyroid_bench.errors import ThyroidBenchError

    cuda = device.type == "cuda"
    names = {"off": None, "bf16": "bfloat16", "fp16": "float16"}
    if amp == "auto":
        amp_name = (("bfloat16" if torch.cuda.is_bf16_supported() else "float16") if cuda else None)
    elif amp in names:
        amp_name = names[amp]
    else:
        raise ThyroidBenchError(f"--amp {amp!r}: expected auto, off, bf16 or fp16")
    if amp_name == "float16" and not cuda:
        raise ThyroidBenchError("--amp fp16 needs CUDA (float16 autocast on the CPU is not "
                                "supported); use --amp bf16 or off")
    if channels_last not in ("auto", "on", "off"):
        raise ThyroidBenchError(f"--channels-last {channels_last!r}: expected auto, on or off")
    cl = channels_last in ("auto", "on")
    return Accel(amp=amp_name, channels_last=cl, compile=compile)


def set_determinism(seed: int, num_threads: int | None = None, device: str = "cpu") -> int:
    """Seed python, numpy and torch, fix CPU threads; on the CPU demand deterministic kernels.

    Returns the number of intra-op threads in use (recorded in the run config:
    CPU results are bit-for-bit reproducible for the same seed and thread count).
    On CUDA, speed comes first: cuDNN picks the fastest kernels (``cudnn.benchmark``),
    float32 matrix products may use TF32, and non-deterministic kernels are allowed.
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if num_threads is None:
        num_threads = max(1, min(os.cpu_count() or 1, 8))
    torch.set_num_threads(num_threads)
    cuda = device.startswith("cuda")
    torch.use_deterministic_algorithms(not cuda)
    torch.backends.cudnn.benchmark = cuda
    torch.set_float32_matmul_precision("high" if cuda else "highest")
    return torch.get_num_threads()


@dataclass
class TrainResult:
    """What :func:`fit` did: the best epoch on the selection fold and the per-epoch history."""

    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    train_s: float = 0.0


def task_loss(logits: torch.Tensor, target: torch.Tensor, *, negative_index: int | None = None,
              label_smoothing: float = 0.0, class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """The training loss from the task's target kind, averaged over the batch.

    Without a detection reading (``negative_index`` None: four-pattern), the cross-entropy
    on soft targets (``target``: n x k, mix-up's mixed one-hot rows), as
    ``F.cross_entropy`` computes it. With one (residual-tissue), ``target`` has a last
    column, the mass of cases known present but of unknown class (label -1): their term is
    the binary log-loss on P(present) = 1 - p[negative_index], and the first k columns get
    the cross-entropy (label smoothing spread within that known-class mass), so a case is
    asked only what its label says: per row,
    ``-sum_c t_c log p_c - t_unknown log(1 - p_negative)``.

    ``class_weights`` (k, optional) weigh class c's term by ``w_c``, as ``F.cross_entropy``'s
    ``weight`` does for soft targets (``-sum_c w_c t_c log p_c``, averaged over the batch);
    the unknown-grade term keeps weight 1.
    """
    if negative_index is None:
        return F.cross_entropy(logits, target, weight=class_weights, label_smoothing=label_smoothing)
    k = logits.shape[1]
    logp = F.log_softmax(logits, dim=1)
    known, unknown = target[:, :k], target[:, k]
    if label_smoothing:
        known = (1 - label_smoothing) * known + label_smoothing / k * known.sum(1, keepdim=True)
    present = [c for c in range(k) if c != negative_index]
    log_present = torch.logsumexp(logp[:, present], dim=1)  # log(1 - p_negative), stably
    if class_weights is not None:
        known = known * class_weights
    return (-(known * logp).sum(1) - unknown * log_present).mean()


def class_weights(y: torch.Tensor, num_classes: int, power: float) -> torch.Tensor | None:
    """Loss weights ``(1 / n_c) ** power`` from the training labels ``y`` (labels below 0,
    unknown grades, are not counted), scaled so the counted cases' mean weight is 1;
    ``None`` when ``power`` is 0 (the unweighted loss, computed exactly as before weights
    existed). A class with no training case is counted as one."""
    if power == 0:
        return None
    known = y[y >= 0].to(torch.int64)
    counts = torch.bincount(known, minlength=num_classes).to(torch.float64)
    if not len(known):
        return torch.ones(num_classes)
    w = counts.clamp(min=1).pow(-power)
    return (w * (len(known) / float((w * counts).sum()))).to(torch.float32)


def _hard_loss(logits: torch.Tensor, y: torch.Tensor, task: Task, label_smoothing: float) -> torch.Tensor:
    """:func:`task_loss` on class indices ``y`` (``UNKNOWN_GRADE`` allowed with a detection reading)."""
    if task.negative_index is None:
        return F.cross_entropy(logits, y, label_smoothing=label_smoothing)
    return task_loss(logits, targets(y, task.num_classes, unknown_column=True).to(logits.dtype),
                     negative_index=task.negative_index, label_smoothing=label_smoothing)


def place_model(model: nn.Module, device: torch.device, accel: Accel) -> nn.Module:
    """Move ``model`` to ``device`` in the memory format ``accel`` asks for (in place)."""
    model.to(device)
    if accel.channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def _batch(x: torch.Tensor, in_chans: int, accel: Accel) -> torch.Tensor:
    """A batch as the model takes it: one view replicated to its channels, memory format."""
    x = to_channels(x, in_chans)
    return x.contiguous(memory_format=torch.channels_last) if accel.channels_last else x


def _optimizer(params: Any, protocol: Protocol, device: torch.device | None = None
               ) -> torch.optim.Optimizer:
    # On CUDA the fused kernels (one launch for all parameters) do the same update.
    fused = {"fused": True} if device is not None and device.type == "cuda" else {}
    if protocol.optimizer == "adam":
        # Keras' Adam with "decay" as the paper used is L2 on the loss; torch's Adam
        # weight_decay is that same L2 term.
        return torch.optim.Adam(params, lr=protocol.lr, weight_decay=protocol.weight_decay, **fused)
    return torch.optim.AdamW(params, lr=protocol.lr, weight_decay=protocol.weight_decay, **fused)


def _schedule(opt: torch.optim.Optimizer, protocol: Protocol, steps_per_epoch: int
              ) -> torch.optim.lr_scheduler.LambdaLR:
    total = max(1, protocol.epochs * steps_per_epoch)
    warm = protocol.warmup_epochs * steps_per_epoch

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if protocol.lr_schedule == "cosine":
            t = (step - warm) / max(1, total - warm)
            return 0.5 * (1 + math.cos(math.pi * min(1.0, t)))
        return 1.0

    return torch.optim.lr_scheduler.LambdaLR(opt, factor)


@torch.inference_mode()
def predict_proba(model: nn.Module, x: torch.Tensor, *, device: torch.device, in_chans: int,
                  batch_size: int = 64, progress: bool = False, desc: str = "predict",
                  accel: Accel | None = None) -> np.ndarray:
    """Class probabilities (softmax in float64, rows sum to 1) for every image of ``x``."""
    from tqdm.auto import tqdm

    accel = accel or resolve_accel(device)
    model.eval()
    logits = []
    starts = range(0, len(x), batch_size)
    for s in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
        xb = _batch(x[s:s + batch_size].to(device, non_blocking=True), in_chans, accel)
        with accel.autocast(device):
            logits.append(model(xb).float())
    if not logits:
        return np.empty((0, 0), dtype=np.float64)
    z = torch.cat(logits).to("cpu", torch.float64)
    return torch.softmax(z, dim=1).numpy()


def _wrap(model: nn.Module, device: torch.device, accel: Accel, dist: DistInfo) -> nn.Module:
    """The module the training step calls: DDP around the model, then ``torch.compile``."""
    step_model = model
    if dist.enabled:
        from torch.nn.parallel import DistributedDataParallel

        step_model = DistributedDataParallel(
            model, device_ids=[device.index] if device.type == "cuda" else None)
    if accel.compile:
        step_model = torch.compile(step_model)
    return step_model


@dataclass(frozen=True)
class _Batching:
    """How an epoch cuts the training split: global batch ``size``, this rank's ``mine`` slice
    of every batch, and ``steps`` batches per epoch (the last incomplete batch is dropped)."""

    size: int
    mine: slice
    steps: int


def _batching(n: int, batch_size: int, dist: DistInfo) -> _Batching:
    from thyroid_bench.errors import ThyroidBenchError

    bs = min(batch_size, n)
    if bs % dist.world_size:
        raise ThyroidBenchError(f"batch size {bs} does not split evenly over {dist.world_size} "
                                "processes; pass --batch-size a multiple of the process count")
    share = bs // dist.world_size
    steps = n // bs if n >= bs else 1  # drop the last incomplete batch (BatchNorm needs > 1)
    return _Batching(size=bs, mine=slice(dist.rank * share, (dist.rank + 1) * share), steps=steps)


@dataclass
class _Stepper:
    """One optimisation step: autocast forward, the task's loss on soft targets
    (:func:`task_loss`), scaled backward, update."""

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    device: torch.device
    in_chans: int
    accel: Accel
    label_smoothing: float
    negative_index: int | None = None
    class_weights: torch.Tensor | None = None

    def __call__(self, xb: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        with self.accel.autocast(self.device):
            out = self.model(_batch(xb, self.in_chans, self.accel))
        loss = task_loss(out.float(), target, negative_index=self.negative_index,
                         label_smoothing=self.label_smoothing, class_weights=self.class_weights)
        self.opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.opt)
        self.scaler.update()
        self.sched.step()
        return loss.detach()


def _train_epoch(step: _Stepper, x_all: torch.Tensor, y_all: torch.Tensor, gen: torch.Generator,
                 protocol: Protocol, batching: _Batching, *, num_classes: int, dist: DistInfo,
                 desc: str, progress: bool) -> torch.Tensor:
    """One pass over the shuffled training split; the summed loss, left on the device."""
    from tqdm.auto import tqdm

    step.model.train()
    order = torch.randperm(len(x_all), generator=gen)
    if isinstance(x_all, torch.Tensor):  # in memory: the order moves to the split's device once;
        order = order.to(step.device)    # streamed rows (DiskRows) are read by host positions
    loss_sum = torch.zeros((), device=step.device)
    bs = batching.size
    for b in tqdm(range(batching.steps), desc=desc, unit="batch",
                  disable=not progress or not dist.is_main, leave=False):
        # Every rank draws the whole batch's augmentation, so the stream is the seed's.
        xb, target = train_batch(x_all, y_all, order[b * bs:(b + 1) * bs], gen,
                                 hflip_p=protocol.hflip_p, rotation_deg=protocol.rotation_deg,
                                 mixup_alpha=protocol.mixup_alpha, num_classes=num_classes,
                                 unknown_column=step.negative_index is not None)
        if dist.enabled:
            xb, target = xb[batching.mine], target[batching.mine]
        loss_sum += step(xb, target)  # stays on the device: no host sync within the epoch
    return loss_sum


class _Selection:
    """The best epoch so far on the selection fold, its weights, and the early-stopping count."""

    def __init__(self, model: nn.Module, protocol: Protocol, log: Log, grades_shown: bool = True) -> None:
        self.model, self.protocol, self.log = model, protocol, log
        # A task with a detection reading may have labels of unknown grade on the fold, where
        # accuracy and macro F1 are undefined (scored 0): its line shows the selection metric.
        self.grades_shown = grades_shown
        self.result = TrainResult(best_epoch=-1, best_score=-math.inf, epochs_run=0)
        self.best_state: dict[str, torch.Tensor] | None = None
        self.since_best = 0

    def record(self, epoch: int, scores: dict[str, float], row: dict[str, Any]) -> bool:
        """Add an epoch's history row; keep its weights if it is the best; True to stop early."""
        p = self.protocol
        self.result.history.append(row)
        score = scores[p.selection_metric]
        improved = score > self.result.best_score  # ties go to the earlier epoch
        if improved:
            self.result.best_epoch, self.result.best_score = epoch, score
            self.best_state = {k: v.detach().clone() for k, v in self.model.state_dict().items()}
            self.since_best = 0
        else:
            self.since_best += 1
        grades = (f"acc {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}"
                  if self.grades_shown else "")
        self.log(f"epoch {epoch:>3}/{p.epochs}  loss {row['train_loss']:.4f}  "
                 f"fold{p.selection_fold} {grades}"
                 + (f"{'  ' if grades else ''}{p.selection_metric} {score:.4f}"
                    if p.selection_metric not in ("accuracy", "macro_f1") or not grades else "")
                 + f"{'  *best' if improved else ''}  "
                 f"({row['elapsed_s']:.0f} s)")
        stop = bool(p.early_stopping_patience and self.since_best >= p.early_stopping_patience)
        if stop:
            self.log(f"early stop: no improvement on fold {p.selection_fold} for "
                     f"{self.since_best} epochs")
        return stop


def fit(model: nn.Module, protocol: Protocol, train: SplitTensors, val: SplitTensors, *,
        task: Task, device: torch.device, seed: int, in_chans: int, log: Log = print,
        progress: bool = True, accel: Accel | None = None, dist: DistInfo = SINGLE) -> TrainResult:
    """Train ``model`` on ``train`` under ``protocol``; keep the epoch best on ``val`` (the
    selection fold).

    ``task`` gives the classes (the loss and mix-up targets; with a detection reading, labels
    -1 train on P(present): :func:`task_loss`) and scores the selection fold
    (:func:`thyroid_bench.evaluation.suites.selection_scores`).

    The model ends holding the weights of the best epoch (by
    ``protocol.selection_metric``, ties to the earlier epoch). Under a
    multi-process group (``dist``) each rank trains on its slice of every batch
    and rank 0 alone validates; the others follow its early-stopping decision.
    """
    protocol = protocol.for_task(task)
    accel = accel or resolve_accel(device)
    gen = torch.Generator().manual_seed(seed)
    place_model(model, device, accel)
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], protocol, device)
    batching = _batching(len(train), protocol.batch_size, dist)
    step = _Stepper(model=_wrap(model, device, accel, dist), opt=opt,
                    sched=_schedule(opt, protocol, batching.steps),
                    scaler=torch.amp.GradScaler("cuda", enabled=accel.amp == "float16"),
                    device=device, in_chans=in_chans, accel=accel,
                    label_smoothing=protocol.label_smoothing, negative_index=task.negative_index)
    weights = class_weights(train.y, task.num_classes, protocol.class_weight_power)
    if weights is not None:
        step.class_weights = weights.to(device)
        log("class weights " + "  ".join(f"{name} {w:.2f}" for name, w in zip(task.class_names, weights.tolist())))
    x_all, y_all, x_val = train.x.to(device), train.y.to(device), val.x.to(device)
    selection = _Selection(model, protocol, log, grades_shown=task.detection is None)
    t0 = time.perf_counter()
    for epoch in range(1, protocol.epochs + 1):
        loss_sum = _train_epoch(step, x_all, y_all, gen, protocol, batching,
                                num_classes=task.num_classes, dist=dist,
                                desc=f"epoch {epoch}/{protocol.epochs}", progress=progress)
        stop = False
        if dist.is_main:
            prob = predict_proba(model, x_val, device=device, in_chans=in_chans,
                                 batch_size=max(64, batching.size), accel=accel)
            scores = selection_scores(task, val.y.numpy(), prob, protocol.selection_metric)
            row = {"epoch": epoch, "train_loss": float(loss_sum) / batching.steps,
                   "lr": opt.param_groups[0]["lr"],
                   **{f"fold{protocol.selection_fold}_{k}": v for k, v in scores.items()},
                   "elapsed_s": round(time.perf_counter() - t0, 1)}
            stop = selection.record(epoch, scores, row)
        selection.result.epochs_run = epoch
        if dist.broadcast_flag(stop):
            break
    if selection.best_state is not None:
        model.load_state_dict(selection.best_state)
    selection.result.train_s = time.perf_counter() - t0
    return selection.result


@torch.inference_mode()
def extract_features(backbone: nn.Module, x: torch.Tensor, *, device: torch.device, in_chans: int,
                     batch_size: int = 64, progress: bool = True, desc: str = "features",
                     accel: Accel | None = None) -> torch.Tensor:
    """Pooled backbone features (float32, on the CPU) of every image of ``x``."""
    from tqdm.auto import tqdm

    accel = accel or resolve_accel(device)
    backbone.eval().to(device)
    out = []
    for s in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", disable=not progress,
                  leave=False):
        xb = _batch(x[s:s + batch_size].to(device, non_blocking=True), in_chans, accel)
        with accel.autocast(device):
            out.append(backbone(xb).float())
    return torch.cat(out).cpu()


def fit_linear_probe(head: nn.Linear, protocol: Protocol, f_train: torch.Tensor, y_train: torch.Tensor,
                     f_val: torch.Tensor, y_val: torch.Tensor, *, task: Task, seed: int,
                     log: Log = print) -> TrainResult:
    """Train a linear head on cached features (mini-batches of ``protocol.batch_size``).

    Features are standardised by the training mean and standard deviation,
    folded into the head's weights at the end so the head takes raw features.
    """
    protocol = protocol.for_task(task)
    gen = torch.Generator().manual_seed(seed)
    mean, std = f_train.mean(0), f_train.std(0).clamp_min(1e-6)
    zt, zv = (f_train - mean) / std, (f_val - mean) / std
    opt = _optimizer(head.parameters(), protocol)
    n = len(zt)
    bs = min(protocol.batch_size, n)
    steps = max(1, -(-n // bs))
    sched = _schedule(opt, protocol, steps)
    best = TrainResult(best_epoch=-1, best_score=-math.inf, epochs_run=0)
    best_state = None
    t0 = time.perf_counter()
    for epoch in range(1, protocol.epochs + 1):
        head.train()
        order = torch.randperm(n, generator=gen)
        for b in range(steps):
            idx = order[b * bs:(b + 1) * bs]
            loss = _hard_loss(head(zt[idx]), y_train[idx], task, protocol.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            prob = torch.softmax(head(zv).double(), 1).numpy()
        scores = selection_scores(task, y_val.numpy(), prob, protocol.selection_metric)
        if scores[protocol.selection_metric] > best.best_score:
            best.best_epoch, best.best_score = epoch, scores[protocol.selection_metric]
            best_state = copy.deepcopy(head.state_dict())
        best.history.append({"epoch": epoch, "loss": float(loss.detach()), **scores})
        best.epochs_run = epoch
    if best_state is not None:
        head.load_state_dict(best_state)
    with torch.no_grad():  # fold the standardisation into the weights: W (f - m) / s + b
        w = head.weight / std
        head.bias.sub_((w * mean).sum(1))
        head.weight.copy_(w)
    log(f"linear probe: best epoch {best.best_epoch}/{protocol.epochs}, fold{protocol.selection_fold} "
        f"{protocol.selection_metric} {best.best_score:.4f}")
    best.train_s = time.perf_counter() - t0
    return best
