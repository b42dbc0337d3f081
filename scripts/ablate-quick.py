"""The fold-0 ablation behind ``quick@2``: train a model under protocol variants, score fold 0.

Each variant is ``quick@1`` with some fields changed. It trains on the train folds other
than fold 0 and is scored on fold 0 only, the selection fold: the task's evaluation splits
(``internal``, ``external``) are never read, so a choice made from this table cannot have
looked at them. One JSON line per variant goes to ``--out`` (appended) and to stdout: fold-0
macro F1 and per-class sensitivity of the selected epoch, the selected epoch, training seconds.

    python scripts/ablate-quick.py --variant base --variant 'w1:class_weight_power=1'
    python scripts/ablate-quick.py --model densenet169 --num-threads 1 \\
        --variant 'w1-ls:class_weight_power=1,label_smoothing=0.1' --out ablation.jsonl

A variant is ``LABEL`` (``base``: ``quick@1`` itself) or ``LABEL:field=value,...``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
from sklearn.metrics import f1_score, recall_score


def _variant(text: str):
    from thyroid_bench.harness.protocols import get_protocol

    base = get_protocol("quick", 1)
    label, _, fields = text.partition(":")
    overrides = {}
    for item in filter(None, fields.split(",")):
        key, _, value = item.partition("=")
        current = getattr(base, key, None)
        if isinstance(current, bool):
            overrides[key] = value.strip().lower() in ("1", "true", "yes")
        elif isinstance(current, (int, float)):
            overrides[key] = type(current)(float(value))
        else:
            overrides[key] = value
    return label, base.with_overrides(**overrides), overrides  # an unknown field: ProtocolError


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--variant", action="append", required=True)
    ap.add_argument("--model", default="densenet169")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--dataset", default="tsb-synthetic")
    ap.add_argument("--num-threads", type=int, default=None)
    ap.add_argument("--out", type=Path, default=None)
    args = ap.parse_args(argv)

    from thyroid_bench.data.format import resolve_dataset
    from thyroid_bench.data.manifest import read_manifest
    from thyroid_bench.harness.preprocess import load_split
    from thyroid_bench.harness.train import fit, predict_proba, resolve_accel, set_determinism
    from thyroid_bench.models import create_model, describe_model
    from thyroid_bench.models.resolve import channel_kwargs

    path = resolve_dataset(args.dataset)
    task = read_manifest(path).get_task()
    for text in args.variant:
        label, proto, overrides = _variant(text)
        proto = proto.for_task(task)
        kw = {**channel_kwargs(task), "dropout": proto.dropout}
        meta = describe_model(args.model, num_classes=task.num_classes, **kw)
        size = max(proto.input_size or meta.input_size, meta.min_input_size)
        threads = set_determinism(args.seed, args.num_threads, "cpu")
        net, _ = create_model(args.model, num_classes=task.num_classes, pretrained=False, **kw)
        train_all = load_split(path, "train", size, task, progress=False)
        val_mask = train_all.folds == proto.selection_fold
        tr, val = train_all.subset(~val_mask), train_all.subset(val_mask)
        import torch

        dev, t0 = torch.device("cpu"), time.perf_counter()
        res = fit(net, proto, tr, val, task=task, device=dev, seed=args.seed, in_chans=meta.in_chans,
                  log=lambda m: print(f"  [{label}] {m}", file=sys.stderr, flush=True), progress=False,
                  accel=resolve_accel(dev))
        train_s = time.perf_counter() - t0
        prob = predict_proba(net, val.x, device=dev, in_chans=meta.in_chans, batch_size=64,
                             accel=resolve_accel(dev))
        y, pred = val.y.numpy(), np.asarray(prob).argmax(1)
        sens = recall_score(y, pred, labels=list(range(task.num_classes)), average=None, zero_division=0)
        row = {"variant": label, "overrides": overrides, "model": args.model, "seed": args.seed,
               "threads": threads, "input_size": size, "best_epoch": res.best_epoch,
               "fold0_macro_f1": round(float(f1_score(y, pred, average="macro")), 4),
               "fold0_sensitivity": {c: round(float(v), 4) for c, v in zip(task.class_names, sens)},
               "fold0_n": int(len(y)), "train_s": round(train_s, 1)}
        print(json.dumps(row), flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(json.dumps(row) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
