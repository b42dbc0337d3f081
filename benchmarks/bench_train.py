"""Speed of training, evaluation and the data loader, each beside a bare loop in the same run.

- Training: images/s of :func:`thyroid_bench.harness.train.fit` (one epoch of ``STEPS``
  batches: the data loader, augmentation, optimiser, schedule and the end-of-epoch
  selection pass on a token fold) against a bare loop on the same network,
  resolution and batch: a fresh AdamW, then ``STEPS`` times a fixed tensor,
  forward, cross-entropy, backward, step. Goal: >= 0.9.
- Evaluation: images/s of :func:`thyroid_bench.harness.train.predict_proba` against a bare
  ``model(x)`` loop under ``torch.inference_mode``. Goal: >= 0.95.
- Data loader: images/s of the batches :func:`thyroid_bench.harness.preprocess.train_batch`
  delivers (index, flip, rotation, mix-up) against slicing an in-memory numpy
  array; goal: the loader delivers at least 10x what the model trains on.

On the CPU both sides use the ``quick`` protocol's input (64 x 64, batch 32) and
the run's threads; on CUDA the ``paper`` protocol's native size and batch 12,
with the run's default device settings (bf16 autocast, channels-last) on both
sides. Models: ``timm:resnet18`` (small) and ``densenet169`` (a paper model).
Run::

    .venv/bin/pytest benchmarks/bench_train.py --benchmark-columns=min,mean,rounds -s

Each benchmark times the project's path with pytest-benchmark and runs the bare loop in
the set-up before each round, so the two alternate; the ratio compares their best rounds
and is stored in ``extra_info`` (``ratio_vs_baseline``, with the ``goal``).
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from thyroid_bench.harness.preprocess import SplitTensors, to_channels, train_batch
from thyroid_bench.harness.protocols import get_protocol
from thyroid_bench.harness.train import Accel, fit, predict_proba, resolve_accel, set_determinism
from thyroid_bench.models import create_model, describe_model
from thyroid_bench.tasks import DEFAULT_TASK, get_task

from _clock import Clock  # benchmarks/_clock.py, beside this file

TASK = get_task(DEFAULT_TASK)
NUM_CLASSES = TASK.num_classes
DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
PROTOCOL = get_protocol("paper" if DEVICE.type == "cuda" else "quick")
STEPS = 12 if DEVICE.type == "cpu" else 50
ROUNDS = 3
MODELS = ["timm:resnet18", "densenet169"]
ACCEL = resolve_accel(DEVICE)
_RATE: dict[str, float] = {}  # images/s by key, filled as the benchmarks run


def _size(name: str) -> int:
    meta = describe_model(name, num_classes=NUM_CLASSES)
    return max(PROTOCOL.input_size or meta.input_size, meta.min_input_size)


def _split(n: int, size: int, seed: int) -> SplitTensors:
    g = torch.Generator().manual_seed(seed)
    return SplitTensors(torch.rand((n, 1, size, size), generator=g), torch.arange(n) % NUM_CLASSES,
                        [f"c{i}" for i in range(n)], np.zeros(n, dtype=np.int64))


def _sync() -> None:
    if DEVICE.type == "cuda":
        torch.cuda.synchronize()


def _model(name: str):
    set_determinism(0, None, DEVICE.type)
    net, meta = create_model(name, num_classes=NUM_CLASSES, dropout=PROTOCOL.dropout)
    net.to(DEVICE)
    if ACCEL.channels_last:
        net.to(memory_format=torch.channels_last)
    return net, meta.in_chans


def _side_by_side(benchmark, project, baseline, rounds: int) -> tuple[float, float]:
    """Time ``project`` with pytest-benchmark and ``baseline`` in the set-up before each of its
    rounds, so the two alternate and drift on a shared machine hits both alike. Returns the
    best seconds of each (project, baseline); both are warmed up first. With
    ``--benchmark-disable`` each runs once after the warm-up, and those seconds are returned."""
    base_times: list[float] = []

    def setup():
        t = time.perf_counter()
        baseline()
        base_times.append(time.perf_counter() - t)

    clock = Clock(project)
    project()
    baseline()
    benchmark.pedantic(clock, setup=setup, rounds=rounds, iterations=1)
    return clock.best(benchmark), min(base_times)


def _report(benchmark, key: str, images: int, times: tuple[float, float], goal: float | None,
            what: str) -> None:
    project_s, base_s = times
    _RATE[key] = images / project_s
    base = images / base_s
    ratio = _RATE[key] / base
    benchmark.extra_info.update(images_per_s=_RATE[key], baseline_images_per_s=base,
                                ratio_vs_baseline=ratio)
    if goal is not None:
        benchmark.extra_info["goal"] = goal
    print(f"\n[bench_train] {what}: {_RATE[key]:.1f} img/s, baseline {base:.1f} img/s, "
          f"ratio {ratio:.3f}" + (f" (goal >= {goal})" if goal is not None else ""))


# --------------------------------------------------------------------------- training
@pytest.mark.parametrize("name", MODELS)
@pytest.mark.benchmark(group="train")
def test_train_fit_vs_bare_loop(benchmark, name):
    size, bs = _size(name), PROTOCOL.batch_size
    proto = PROTOCOL.with_overrides(epochs=1, pretrained=False)
    train, val = _split(STEPS * bs, size, 0), _split(2, size, 1)  # a token selection fold
    net, in_chans = _model(name)
    bare_net, _ = _model(name)
    x = torch.rand((bs, in_chans, size, size), device=DEVICE)
    if ACCEL.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = (torch.arange(bs) % NUM_CLASSES).to(DEVICE)

    def bare_loop():  # a short training run: a fresh optimiser, as every run (and fit()) has
        opt = torch.optim.AdamW(bare_net.parameters(), lr=PROTOCOL.lr,
                                weight_decay=PROTOCOL.weight_decay)
        bare_net.train()
        for _ in range(STEPS):
            with ACCEL.autocast(DEVICE):
                out = bare_net(x)
            loss = F.cross_entropy(out.float(), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        _sync()

    def one_epoch():
        fit(net, proto, train, val, task=TASK, device=DEVICE, seed=0, in_chans=in_chans,
            log=lambda m: None, progress=False, accel=ACCEL)
        _sync()

    times = _side_by_side(benchmark, one_epoch, bare_loop, ROUNDS)
    _report(benchmark, f"train-fit-{name}", STEPS * bs, times, 0.9,
            f"fit() {name} {size}x{size} batch {bs}")


@pytest.mark.skipif(DEVICE.type != "cpu", reason="the CPU's memory-format choice")
@pytest.mark.benchmark(group="train")
def test_train_channels_last_vs_default_format_cpu(benchmark):
    """The CPU default (channels-last) against the default memory format, both through fit()."""
    name = "densenet169"
    size, bs = _size(name), PROTOCOL.batch_size
    proto = PROTOCOL.with_overrides(epochs=1, pretrained=False)
    train, val = _split(STEPS * bs, size, 0), _split(2, size, 1)
    nets = {cl: _model(name)[0] for cl in (True, False)}
    nets[False].to(memory_format=torch.contiguous_format)

    def epoch(cl: bool):
        fit(nets[cl], proto, train, val, task=TASK, device=DEVICE, seed=0, in_chans=3,
            log=lambda m: None, progress=False, accel=Accel(channels_last=cl))

    times = _side_by_side(benchmark, lambda: epoch(True), lambda: epoch(False), ROUNDS)
    _report(benchmark, "train-fit-channels-last", STEPS * bs, times, None,
            f"fit() {name} channels-last vs default memory format (CPU)")


# --------------------------------------------------------------------------- evaluation
EVAL_N = 512 if DEVICE.type == "cpu" else 4096


@pytest.mark.parametrize("name", MODELS)
@pytest.mark.benchmark(group="evaluate")
def test_eval_predict_proba_vs_bare_loop(benchmark, name):
    net, in_chans = _model(name)
    x = _split(EVAL_N, _size(name), 0).x.to(DEVICE)

    @torch.inference_mode()
    def bare_loop():
        net.eval()
        for s in range(0, EVAL_N, 64):
            xb = to_channels(x[s:s + 64], in_chans)
            if ACCEL.channels_last:
                xb = xb.contiguous(memory_format=torch.channels_last)
            with ACCEL.autocast(DEVICE):
                net(xb)
        _sync()

    def predict():
        prob = predict_proba(net, x, device=DEVICE, in_chans=in_chans, batch_size=64, accel=ACCEL)
        assert prob.shape == (EVAL_N, NUM_CLASSES)

    times = _side_by_side(benchmark, predict, bare_loop, 5)
    _report(benchmark, f"eval-predict-{name}", EVAL_N, times, 0.95, f"predict_proba() {name}")


# --------------------------------------------------------------------------- data loader
LOADER_N = 1974  # the quick protocol's training images (train folds 1-4 of tsb-synthetic)


@pytest.mark.benchmark(group="loader")
def test_loader_train_batches_vs_numpy_slices(benchmark):
    size, bs = _size("densenet169"), PROTOCOL.batch_size
    split = _split(LOADER_N, size, 0)
    x, y = split.x.to(DEVICE), split.y.to(DEVICE)
    arr = split.x.numpy()
    gen = torch.Generator().manual_seed(0)
    batches = LOADER_N // bs

    def numpy_slices():
        order = np.random.default_rng(1).permutation(LOADER_N)
        for b in range(batches):
            torch.from_numpy(arr[order[b * bs:(b + 1) * bs]]).to(DEVICE)
        _sync()

    def train_batches():
        order = torch.randperm(LOADER_N, generator=gen).to(DEVICE)
        for b in range(batches):
            train_batch(x, y, order[b * bs:(b + 1) * bs], gen, hflip_p=PROTOCOL.hflip_p,
                        rotation_deg=PROTOCOL.rotation_deg, mixup_alpha=PROTOCOL.mixup_alpha,
                        num_classes=NUM_CLASSES)
        _sync()

    times = _side_by_side(benchmark, train_batches, numpy_slices, 5)
    _report(benchmark, "loader-train-batches", batches * bs, times, None,
            "train_batch() (flip, rotation, mix-up) vs numpy slices")
    train_key = "train-fit-densenet169"
    if train_key in _RATE:
        headroom = _RATE["loader-train-batches"] / _RATE[train_key]
        benchmark.extra_info.update(loader_vs_training=headroom, loader_goal=10.0)
        print(f"[bench_train] loader {_RATE['loader-train-batches']:.0f} img/s = {headroom:.0f}x "
              f"densenet169 training ({_RATE[train_key]:.1f} img/s; goal >= 10x)")
