"""Training and inference loops: fit a model under a protocol, predict probabilities.

Determinism: on a CPU, :func:`set_determinism` fixes the seeds, the number of
threads and ``torch.use_deterministic_algorithms(True)``; all randomness of a
run (shuffling, augmentation, mix-up, dropout, initialisation) then flows from
the seed, and two runs with the same seed and thread count give the same
weights, predictions and metrics bit for bit. On CUDA the run uses automatic
mixed precision (bfloat16 where supported) and channels-last memory, and is
reproducible only up to the GPU's non-deterministic kernels.
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

from thyroid_bench.preprocess import SplitTensors, augment, mixup, to_channels
from thyroid_bench.protocols import Protocol
from thyroid_bench.schema import NUM_CLASSES

__all__ = [
    "set_determinism",
    "resolve_device",
    "TrainResult",
    "fit",
    "fit_linear_probe",
    "predict_proba",
    "extract_features",
    "selection_scores",
]

Log = Callable[[str], None]


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` -> CUDA when available, else CPU; ``cpu`` / ``cuda`` / ``cuda:N`` as given."""
    from thyroid_bench.errors import ThyroidBenchError

    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ThyroidBenchError(f"--device {device}: CUDA is not available on this machine "
                                "(torch.cuda.is_available() is False); use --device cpu")
    if device != "cpu" and not device.startswith("cuda"):
        raise ThyroidBenchError(f"--device {device!r}: expected auto, cpu, cuda or cuda:N")
    return torch.device(device)


def set_determinism(seed: int, num_threads: int | None = None, device: str = "cpu") -> int:
    """Seed python, numpy and torch, fix CPU threads, demand deterministic kernels.

    Returns the number of intra-op threads in use (recorded in the run config:
    CPU results are bit-for-bit reproducible for the same seed and thread count).
    """
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    if num_threads is None:
        num_threads = max(1, min(os.cpu_count() or 1, 8))
    torch.set_num_threads(num_threads)
    os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    # On CUDA some kernels have no deterministic variant: warn instead of failing there.
    torch.use_deterministic_algorithms(True, warn_only=not device.startswith("cpu"))
    torch.backends.cudnn.benchmark = False
    return torch.get_num_threads()


@dataclass
class TrainResult:
    """What :func:`fit` did: the best epoch on the selection fold and the per-epoch history."""

    best_epoch: int
    best_score: float
    epochs_run: int
    history: list[dict[str, Any]] = field(default_factory=list)
    train_s: float = 0.0


def _amp(device: torch.device) -> tuple[bool, torch.dtype]:
    if device.type != "cuda":
        return False, torch.float32
    return True, torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def _optimizer(params: Any, protocol: Protocol) -> torch.optim.Optimizer:
    if protocol.optimizer == "adam":
        # Keras' Adam with "decay" as the paper used is L2 on the loss; torch's Adam
        # weight_decay is that same L2 term.
        return torch.optim.Adam(params, lr=protocol.lr, weight_decay=protocol.weight_decay)
    return torch.optim.AdamW(params, lr=protocol.lr, weight_decay=protocol.weight_decay)


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


def selection_scores(y_true: np.ndarray, prob: np.ndarray) -> dict[str, float]:
    """Accuracy and macro F1 (over the four classes, 0 for absent ones) for model selection."""
    from sklearn.metrics import f1_score

    pred = prob.argmax(1)
    return {"accuracy": float((pred == y_true).mean()),
            "macro_f1": float(f1_score(y_true, pred, labels=list(range(prob.shape[1])),
                                       average="macro", zero_division=0))}


@torch.no_grad()
def predict_proba(model: nn.Module, x: torch.Tensor, *, device: torch.device, in_chans: int,
                  batch_size: int = 64, progress: bool = False, desc: str = "predict") -> np.ndarray:
    """Class probabilities (softmax in float64, rows sum to 1) for every image of ``x``."""
    from tqdm.auto import tqdm

    model.eval()
    use_amp, amp_dtype = _amp(device)
    logits = []
    starts = range(0, len(x), batch_size)
    for s in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
        xb = to_channels(x[s:s + batch_size].to(device), in_chans)
        if device.type == "cuda":
            xb = xb.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            out = model(xb)
        logits.append(out.float().cpu())
    z = torch.cat(logits).to(torch.float64) if logits else torch.empty((0, NUM_CLASSES), dtype=torch.float64)
    return torch.softmax(z, dim=1).numpy()


def fit(model: nn.Module, protocol: Protocol, train: SplitTensors, val: SplitTensors, *,
        device: torch.device, seed: int, in_chans: int, log: Log = print,
        progress: bool = True) -> TrainResult:
    """Train ``model`` on ``train`` under ``protocol``; keep the epoch best on ``val`` (fold 0).

    The model ends holding the weights of the best epoch (by
    ``protocol.selection_metric``, ties to the earlier epoch).
    """
    from tqdm.auto import tqdm

    gen = torch.Generator().manual_seed(seed)
    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    use_amp, amp_dtype = _amp(device)
    opt = _optimizer([p for p in model.parameters() if p.requires_grad], protocol)
    n = len(train)
    bs = min(protocol.batch_size, n)
    steps = n // bs if n >= bs else 1  # drop the last incomplete batch (BatchNorm needs > 1)
    sched = _schedule(opt, protocol, steps)
    scaler = torch.amp.GradScaler("cuda", enabled=use_amp and amp_dtype == torch.float16)
    x_all = train.x.to(device)
    y_all = train.y.to(device)
    best = TrainResult(best_epoch=-1, best_score=-math.inf, epochs_run=0)
    best_state: dict[str, torch.Tensor] | None = None
    since_best = 0
    t0 = time.perf_counter()
    for epoch in range(1, protocol.epochs + 1):
        model.train()
        order = torch.randperm(n, generator=gen)
        total_loss = 0.0
        bar = tqdm(range(steps), desc=f"epoch {epoch}/{protocol.epochs}", unit="batch",
                   disable=not progress, leave=False)
        for b in bar:
            idx = order[b * bs:(b + 1) * bs].to(device)
            xb = augment(x_all[idx], gen, hflip_p=protocol.hflip_p, rotation_deg=protocol.rotation_deg)
            xb, target = mixup(xb, y_all[idx], NUM_CLASSES, protocol.mixup_alpha, gen)
            xb = to_channels(xb, in_chans)
            if device.type == "cuda":
                xb = xb.contiguous(memory_format=torch.channels_last)
            with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
                out = model(xb)
            loss = F.cross_entropy(out.float(), target, label_smoothing=protocol.label_smoothing)
            opt.zero_grad(set_to_none=True)
            scaler.scale(loss).backward()
            scaler.step(opt)
            scaler.update()
            sched.step()
            total_loss += float(loss.detach())
            bar.set_postfix(loss=f"{total_loss / (b + 1):.3f}")
        bar.close()
        prob = predict_proba(model, val.x, device=device, in_chans=in_chans,
                             batch_size=max(64, bs))
        scores = selection_scores(val.y.numpy(), prob)
        score = scores[protocol.selection_metric]
        row = {"epoch": epoch, "train_loss": total_loss / steps, "lr": opt.param_groups[0]["lr"],
               **{f"fold{protocol.selection_fold}_{k}": v for k, v in scores.items()},
               "elapsed_s": round(time.perf_counter() - t0, 1)}
        best.history.append(row)
        improved = score > best.best_score
        if improved:
            best.best_epoch, best.best_score = epoch, score
            best_state = {k: v.detach().clone() for k, v in model.state_dict().items()}
            since_best = 0
        else:
            since_best += 1
        log(f"epoch {epoch:>3}/{protocol.epochs}  loss {row['train_loss']:.4f}  "
            f"fold{protocol.selection_fold} acc {scores['accuracy']:.4f}  macro-F1 {scores['macro_f1']:.4f}"
            f"{'  *best' if improved else ''}  ({row['elapsed_s']:.0f} s)")
        best.epochs_run = epoch
        if protocol.early_stopping_patience and since_best >= protocol.early_stopping_patience:
            log(f"early stop: no improvement on fold {protocol.selection_fold} for {since_best} epochs")
            break
    if best_state is not None:
        model.load_state_dict(best_state)
    best.train_s = time.perf_counter() - t0
    return best


@torch.no_grad()
def extract_features(backbone: nn.Module, x: torch.Tensor, *, device: torch.device, in_chans: int,
                     batch_size: int = 64, progress: bool = True, desc: str = "features") -> torch.Tensor:
    """Pooled backbone features (float32, on the CPU) of every image of ``x``."""
    from tqdm.auto import tqdm

    backbone.eval().to(device)
    use_amp, amp_dtype = _amp(device)
    out = []
    for s in tqdm(range(0, len(x), batch_size), desc=desc, unit="batch", disable=not progress,
                  leave=False):
        xb = to_channels(x[s:s + batch_size].to(device), in_chans)
        with torch.autocast(device.type, dtype=amp_dtype, enabled=use_amp):
            out.append(backbone(xb).float().cpu())
    return torch.cat(out)


def fit_linear_probe(head: nn.Linear, protocol: Protocol, f_train: torch.Tensor, y_train: torch.Tensor,
                     f_val: torch.Tensor, y_val: torch.Tensor, *, seed: int, log: Log = print
                     ) -> TrainResult:
    """Train a linear head on cached features (mini-batches of ``protocol.batch_size``).

    Features are standardised by the training mean and standard deviation,
    folded into the head's weights at the end so the head takes raw features.
    """
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
            loss = F.cross_entropy(head(zt[idx]), y_train[idx], label_smoothing=protocol.label_smoothing)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        with torch.no_grad():
            prob = torch.softmax(head(zv).double(), 1).numpy()
        scores = selection_scores(y_val.numpy(), prob)
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
