"""Training throughput through the streaming path against the in-memory path, on a slice.

    .venv/bin/python scripts/stream-throughput.py --model densenet169 --rows 256 --repeats 3 \
        --num-threads 1 [--dataset tsb-synthetic] [--home DIR]

Takes the first ``--rows`` training images of the dataset (folds other than 0) at the protocol's
input size (``quick``: 64 px), once in memory (:func:`~thyroid_bench.harness.preprocess.load_split`)
and once streamed from a disk cache (:func:`~thyroid_bench.harness.stream.stream_split`), then
trains one epoch of the protocol on each, alternating the paths ``--repeats`` times so a busy
machine slows both alike. Prints images/s per path (median over the repeats), their ratio
(stream / memory), and the largest difference between the two paths' predictions on a held-out
batch (the same seed must give the same weights: expected 0).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--model", default="densenet169")
    ap.add_argument("--protocol", default="quick")
    ap.add_argument("--dataset", default=None, help="name, name@version or folder (default: tsb-synthetic)")
    ap.add_argument("--home", type=Path, default=None)
    ap.add_argument("--rows", type=int, default=256, help="training images in the slice")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--num-threads", type=int, default=1)
    args = ap.parse_args()

    from thyroid_bench.data.format import resolve_dataset
    from thyroid_bench.data.manifest import read_manifest
    from thyroid_bench.harness.preprocess import load_split
    from thyroid_bench.harness.protocols import get_protocol
    from thyroid_bench.harness.stream import DataPath, open_split
    from thyroid_bench.harness.train import set_determinism
    from thyroid_bench.models import describe_model
    from thyroid_bench.models.resolve import channel_kwargs

    path = resolve_dataset(args.dataset, home=args.home)
    task = read_manifest(path).get_task()
    proto = get_protocol(args.protocol).with_overrides(epochs=1).for_task(task)
    meta = describe_model(args.model, num_classes=task.num_classes, **channel_kwargs(task))
    size = max(proto.input_size or meta.input_size, meta.min_input_size)
    set_determinism(0, args.num_threads)

    t = time.perf_counter()
    memory = load_split(path, "train", size, task, progress=False)
    load_s = time.perf_counter() - t
    t = time.perf_counter()
    # the run's own cache (in $TMPDIR), removed when the block ends, also on an error
    with open_split(path, "train", size, task, data=DataPath(True, "--stream"), progress=False) as streamed:
        cache_s = time.perf_counter() - t
        _compare(args, task, proto, meta, size, memory, streamed, load_s, cache_s)


def _compare(args, task, proto, meta, size: int, memory, streamed, load_s: float, cache_s: float) -> None:
    """Train on the same rows of both paths, alternating, and print the figures."""
    import torch

    from thyroid_bench.harness.train import fit, predict_proba, set_determinism
    from thyroid_bench.models import create_model
    from thyroid_bench.models.resolve import channel_kwargs

    train_rows = np.flatnonzero(memory.folds != 0)[:args.rows]
    val_rows = np.flatnonzero(memory.folds == 0)[:proto.batch_size]
    pick = np.zeros(len(memory), dtype=bool)
    splits = {}
    for name, data in (("memory", memory), ("stream", streamed)):
        tr, va = pick.copy(), pick.copy()
        tr[train_rows], va[val_rows] = True, True
        splits[name] = (data.subset(tr), data.subset(va))
    print(f"{args.model}, {args.protocol} at {size} px, {len(train_rows)} training images, batch "
          f"{proto.batch_size}, {args.num_threads} thread(s); split prepared in memory in {load_s:.1f} s, "
          f"into the cache in {cache_s:.1f} s")

    read_ms = {name: _read_ms(splits[name][0], proto.batch_size) for name in ("memory", "stream")}
    print(f"reading an epoch's batches alone (no model): memory {read_ms['memory']:.3f} ms, stream "
          f"{read_ms['stream']:.3f} ms a batch of {proto.batch_size}")
    speed: dict[str, list[float]] = {"memory": [], "stream": []}
    probs: dict[str, np.ndarray] = {}
    for r in range(args.repeats):
        for name in (("memory", "stream") if r % 2 == 0 else ("stream", "memory")):
            tr, va = splits[name]
            set_determinism(0, args.num_threads)
            net, _ = create_model(args.model, num_classes=task.num_classes, pretrained=False,
                                  dropout=proto.dropout, **channel_kwargs(task))
            res = fit(net, proto, tr, va, task=task, device=torch.device("cpu"), seed=0,
                      in_chans=meta.in_chans, log=lambda m: None, progress=False)
            # fit's clock covers the epoch and the selection pass over the small held-out batch.
            speed[name].append(len(tr) / res.train_s)
            probs[name] = predict_proba(net, va.x, device=torch.device("cpu"), in_chans=meta.in_chans)
            print(f"  repeat {r + 1} {name:6s}: {speed[name][-1]:.2f} images/s ({res.train_s:.1f} s)")
    med = {k: statistics.median(v) for k, v in speed.items()}
    print(f"median images/s: memory {med['memory']:.2f}, stream {med['stream']:.2f}; "
          f"ratio stream/memory {med['stream'] / med['memory']:.3f}")
    step_ms = 1000 * proto.batch_size / max(speed["memory"])  # the fastest in-memory step seen
    extra = read_ms["stream"] - read_ms["memory"]
    bound = step_ms / (step_ms + max(0.0, extra))
    print(f"from the reads alone: a step of {step_ms:.0f} ms (fastest in memory) plus "
          f"{extra:.3f} ms of extra reading gives a ratio of at least {bound:.4f}")
    print(f"largest difference of predictions between the paths: "
          f"{float(np.abs(probs['memory'] - probs['stream']).max()):.3g}")


def _read_ms(data, batch_size: int, epochs: int = 5) -> float:
    """Milliseconds to fetch one training batch (``x[idx]`` by a random permutation), no model."""
    import torch

    gen = torch.Generator().manual_seed(0)
    t = time.perf_counter()
    batches = 0
    for _ in range(epochs):
        order = torch.randperm(len(data), generator=gen)
        for b in range(len(data) // batch_size):
            data.x[order[b * batch_size:(b + 1) * batch_size]]
            batches += 1
    return 1000 * (time.perf_counter() - t) / batches


if __name__ == "__main__":
    main()
