"""``thyroid-bench run``: train a model under a protocol, evaluate it, leave a run folder.

The run folder (``runs/<model>-<protocol>-<UTC timestamp>/`` unless ``out``)::

    INCOMPLETE            present from the start until entry.json is written; says why
                          when a run was interrupted (Ctrl-C) or failed
    config.json           the full configuration: model, protocol, seed, device, threads,
                          dataset fingerprint, pretrained weights, package versions
    train.log             per-epoch lines (loss, fold-0 accuracy and macro F1)
    model.safetensors     the selected weights, with the run's metadata (never a pickle)
    predictions/internal.csv, predictions/external.csv
    metrics.json          metrics.evaluate() per split, computed from the CSVs as written
    report.md, figures/   the paper's Table 2 per split, ROC curves, confusion matrices
    entry.json            the leaderboard entry, written last and atomically

Data flows one way: the dataset is verified before anything is written; the
model trains on train folds 1-4, fold 0 picks the best epoch, and internal and
external are touched only by the final evaluation.

Launched by ``torchrun`` or ``accelerate launch`` with several processes, every
process trains on its share of each batch (:mod:`thyroid_bench.distributed`) and
rank 0 alone writes the run folder and its one entry; the other ranks write
nothing and :func:`run` returns ``None`` there.
"""

from __future__ import annotations

import json
import os
import platform
import re
import sys
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from thyroid_bench.entry import (
    EVAL_SPLITS,
    DatasetRef,
    Entry,
    Environment,
    PredictionsFile,
    ProtocolRecord,
    sha256_file,
    write_entry,
)
from thyroid_bench.errors import ThyroidBenchError, VerificationError
from thyroid_bench.protocols import Protocol, default_protocol_name, get_protocol

__all__ = ["RunResult", "run", "run_dir_name", "read_checkpoint_metadata", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "thyroid-bench checkpoint v1"


@dataclass
class RunResult:
    """What :func:`run` produced."""

    run_dir: Path
    entry: Entry
    metrics: dict[str, dict]


class _RunLog:
    """Lines to train.log (flushed) and to the terminal (above any progress bar)."""

    def __init__(self, path: Path, echo: bool) -> None:
        self.path, self.echo = path, echo
        self._f = open(path, "a", encoding="utf-8")  # noqa: SIM115 - closed in close()

    def __call__(self, msg: str) -> None:
        stamp = datetime.now(timezone.utc).strftime("%H:%M:%S")
        self._f.write(f"{stamp} {msg}\n")
        self._f.flush()
        if self.echo:
            from tqdm.auto import tqdm

            tqdm.write(msg, file=sys.stderr)

    def close(self) -> None:
        self._f.close()


def run_dir_name(model: str, protocol: str, when: datetime) -> str:
    """``<model>-<protocol>-<YYYYmmddTHHMMSSZ>`` with the model name made path-safe."""
    slug = re.sub(r"[^A-Za-z0-9_.]+", "-", model.replace(".py:", "-")).strip("-.") or "model"
    return f"{slug}-{protocol}-{when.strftime('%Y%m%dT%H%M%SZ')}"


def read_checkpoint_metadata(path: str | os.PathLike) -> dict[str, str]:
    """The metadata a thyroid-bench checkpoint carries (model, protocol, input size, seed...)."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise ThyroidBenchError(f"--checkpoint {path}: no such file")
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
    except Exception as exc:  # noqa: BLE001 - any parse failure means "not a safetensors file"
        raise ThyroidBenchError(f"--checkpoint {path}: not a safetensors file ({exc}); give the "
                                "model.safetensors of a thyroid-bench run folder") from None
    if meta.get("format") != CHECKPOINT_FORMAT:
        raise ThyroidBenchError(f"--checkpoint {path}: no thyroid-bench metadata (format "
                                f"{meta.get('format')!r}); give the model.safetensors of a run folder")
    return meta


def _environment(device: Any, threads: int, amp: bool, world_size: int,
                 deterministic: bool) -> Environment:
    import timm
    import torch

    from thyroid_bench import __version__

    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
    else:
        name = platform.processor() or platform.machine()
        try:
            for line in Path("/proc/cpuinfo").read_text().splitlines():
                if line.startswith("model name"):
                    name = line.split(":", 1)[1].strip()
                    break
        except OSError:
            pass
        name = f"{name} ({os.cpu_count()} logical cores)"
    if world_size > 1:
        name = f"{name}, {world_size} processes (DistributedDataParallel)"
    return Environment(thyroid_bench=__version__, python=platform.python_version(),
                       torch=torch.__version__, timm=timm.__version__, numpy=np.__version__,
                       platform=platform.platform(), device=device.type, device_name=name,
                       num_threads=threads, deterministic=deterministic, amp=amp)


def _make_run_dir(out: Path | None, runs_dir: Path, model: str, protocol: str, when: datetime) -> Path:
    run_dir = Path(out) if out is not None else Path(runs_dir) / run_dir_name(model, protocol, when)
    if run_dir.exists() and any(run_dir.iterdir()):
        raise ThyroidBenchError(f"run folder {run_dir} already exists and is not empty; choose "
                                "another --out (runs are never overwritten)")
    run_dir.mkdir(parents=True, exist_ok=True)
    return run_dir


def run(
    model: str,
    *,
    protocol: str | None = None,
    epochs: int | None = None,
    batch_size: int | None = None,
    seed: int = 0,
    device: str = "auto",
    dataset: str | os.PathLike | None = None,
    home: Path | None = None,
    out: Path | None = None,
    runs_dir: Path = Path("runs"),
    weights: str | os.PathLike | None = None,
    require_pretrained: bool = False,
    checkpoint: str | os.PathLike | None = None,
    eval_only: bool = False,
    num_threads: int | None = None,
    submitter: str | None = None,
    bootstrap: int = 1000,
    progress: bool = True,
    amp: str = "auto",
    channels_last: str = "auto",
    compile: bool = False,
) -> RunResult | None:
    """Train ``model`` under ``protocol`` (default: ``paper`` on CUDA, ``quick`` on CPU),
    evaluate on internal and external, and write a complete run folder.

    ``epochs`` / ``batch_size`` override the protocol (recorded as overrides).
    ``checkpoint`` starts from a run's ``model.safetensors``; with ``eval_only``
    nothing is trained and the checkpoint's protocol, seed and input size are
    used. ``amp``, ``channels_last`` and ``compile`` choose how the device is
    used (:func:`thyroid_bench.train.resolve_accel`), not what is computed.
    Raises :class:`ThyroidBenchError` subclasses for bad input, before
    writing anything; ``KeyboardInterrupt`` leaves the folder marked INCOMPLETE.
    Under a multi-process launcher, ranks other than 0 return ``None``.
    """
    from thyroid_bench.distributed import init_distributed

    dist = init_distributed(device)
    try:
        return _run(model, protocol=protocol, epochs=epochs, batch_size=batch_size, seed=seed,
                    device=device, dataset=dataset, home=home, out=out, runs_dir=runs_dir,
                    weights=weights, require_pretrained=require_pretrained, checkpoint=checkpoint,
                    eval_only=eval_only, num_threads=num_threads, submitter=submitter,
                    bootstrap=bootstrap, progress=progress, amp=amp, channels_last=channels_last,
                    compile=compile, dist=dist)
    finally:
        dist.close()


def _run(model, *, protocol, epochs, batch_size, seed, device, dataset, home, out, runs_dir,
         weights, require_pretrained, checkpoint, eval_only, num_threads, submitter, bootstrap,
         progress, amp, channels_last, compile, dist) -> RunResult | None:
    from thyroid_bench.data.format import read_manifest, resolve_dataset, verify_dataset
    from thyroid_bench.models.registry import describe_model
    from thyroid_bench.train import resolve_accel, resolve_device

    t_start = time.perf_counter()
    dev = resolve_device(device, dist)
    accel = resolve_accel(dev, amp=amp, channels_last=channels_last, compile=compile)
    if dist.enabled and eval_only:
        raise ThyroidBenchError("--eval-only runs in one process; launch it without torchrun")
    ckpt_meta: dict[str, str] | None = None
    if eval_only and checkpoint is None:
        raise ThyroidBenchError("--eval-only needs --checkpoint PATH (a run's model.safetensors)")
    if checkpoint is not None:
        ckpt_meta = read_checkpoint_metadata(checkpoint)
        if ckpt_meta.get("model") != model:
            raise ThyroidBenchError(f"--checkpoint {checkpoint} holds model {ckpt_meta.get('model')!r}, "
                                    f"not {model!r}; pass --model {ckpt_meta.get('model')}")
    # ----------------------------------------------------------------- protocol
    if eval_only:
        assert ckpt_meta is not None
        proto = Protocol(**json.loads(ckpt_meta["protocol"]))
        overrides = json.loads(ckpt_meta.get("overrides", "{}"))
        seed = int(ckpt_meta["seed"])
    else:
        base = get_protocol(protocol or default_protocol_name(dev.type))
        overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size}.items()
                     if v is not None}
        proto = base.with_overrides(**overrides)
    # ----------------------------------------------------------------- model and dataset checks
    meta = describe_model(model, **({"dropout": proto.dropout} if proto.dropout else {}))
    if ckpt_meta:
        input_size = int(ckpt_meta["input_size"])
    else:  # a protocol's small input is raised to what the network accepts (inceptions: 75)
        input_size = max(proto.input_size or meta.input_size, meta.min_input_size)
    data_path = resolve_dataset(dataset, home=home)
    report = verify_dataset(data_path)
    if not report.ok:
        raise VerificationError(f"dataset {data_path} failed verification, so nothing was trained:\n  - "
                                + "\n  - ".join(report.problems)
                                + "\nrebuild it (`thyroid-bench prepare --force`) or fix the source")
    manifest = read_manifest(data_path)
    if dist.enabled and proto.batch_size % dist.world_size:
        raise ThyroidBenchError(f"batch size {proto.batch_size} does not split evenly over "
                                f"{dist.world_size} processes; pass --batch-size a multiple of "
                                "the process count")
    if dist.enabled and proto.linear_probe:
        raise ThyroidBenchError(f"protocol {proto.name} trains a linear head on cached features "
                                "in one process; launch it without torchrun")
    # ----------------------------------------------------------------- run folder
    started = datetime.now(timezone.utc)
    run_dir = None
    try:
        if dist.is_main:
            run_dir = _make_run_dir(out, runs_dir, model, proto.name, started)
    finally:  # the other ranks must not wait for a rank 0 that gave up
        ok = dist.all_ok(run_dir is not None or not dist.is_main)
    if not ok:
        raise ThyroidBenchError("rank 0 could not create the run folder (see its error); "
                                "nothing was trained")
    work = dict(model=model, meta=meta, proto=proto, overrides=overrides, seed=seed, dev=dev,
                input_size=input_size, data_path=data_path, manifest=manifest, weights=weights,
                require_pretrained=require_pretrained, checkpoint=checkpoint, ckpt_meta=ckpt_meta,
                eval_only=eval_only, num_threads=num_threads, submitter=submitter,
                bootstrap=bootstrap, t_start=t_start, accel=accel, dist=dist)
    if not dist.is_main:  # a worker: train its share, write nothing
        _run_in_folder(**work, run_dir=None, progress=False, log=lambda msg: None)
        return None
    incomplete = run_dir / "INCOMPLETE"
    incomplete.write_text(f"run started {started.isoformat()}; not finished\n", encoding="utf-8")
    log = _RunLog(run_dir / "train.log", echo=progress)
    try:
        result = _run_in_folder(**work, run_dir=run_dir, progress=progress, log=log)
    except KeyboardInterrupt:
        log("interrupted (Ctrl-C): the run folder is incomplete and has no entry.json")
        incomplete.write_text(f"run started {started.isoformat()}; interrupted (KeyboardInterrupt) "
                              f"at {datetime.now(timezone.utc).isoformat()}\n", encoding="utf-8")
        raise
    except BaseException as exc:
        log(f"failed: {type(exc).__name__}: {exc}")
        incomplete.write_text(f"run started {started.isoformat()}; failed: {type(exc).__name__}: "
                              f"{exc}\n", encoding="utf-8")
        raise
    finally:
        log.close()
    incomplete.unlink()
    return result


def _run_in_folder(*, model, meta, proto, overrides, seed, dev, input_size, data_path, manifest,
                   run_dir, weights, require_pretrained, checkpoint, ckpt_meta, eval_only,
                   num_threads, submitter, bootstrap, progress, log, t_start, accel, dist
                   ) -> RunResult | None:
    import torch
    from safetensors.torch import load_file, save_file

    from thyroid_bench.metrics import evaluate
    from thyroid_bench.models.registry import create_model
    from thyroid_bench.models.weights import resolve_pretrained
    from thyroid_bench.predictions import read_predictions, write_predictions
    from thyroid_bench.preprocess import load_split
    from thyroid_bench.schema import TASK
    from thyroid_bench.train import fit, fit_linear_probe, place_model, predict_proba, set_determinism

    threads = set_determinism(seed, num_threads, dev.type)
    amp = accel.amp is not None
    log(f"run {run_dir.name if run_dir else '(worker)'}: model {model}, protocol {proto.name}"
        f"{' ' + json.dumps(overrides) if overrides else ''}, seed {seed}, device {dev}"
        f"{f' x {dist.world_size} processes' if dist.enabled else ''}, "
        f"{threads} thread(s), input {input_size}x{input_size}x{meta.in_chans}, "
        f"amp {accel.amp or 'off'}, channels-last {'on' if accel.channels_last else 'off'}"
        f"{', torch.compile' if accel.compile else ''}")
    log(f"dataset {manifest['name']} {manifest['version']} fingerprint {manifest['fingerprint']}")
    # ----------------------------------------------------------------- weights
    if ckpt_meta is not None:
        choice_tag = ckpt_meta.get("pretrained", "none")
        choice_sha = ckpt_meta.get("pretrained_sha256") or None
        net, _ = create_model(model, pretrained=False, dropout=proto.dropout)
    else:
        choice = resolve_pretrained(model, meta.pretrained_tag, want=proto.pretrained, weights=weights,
                                    require=require_pretrained, warn=log)
        choice_tag, choice_sha = choice.tag, choice.sha256
        try:
            net, _ = create_model(model, pretrained=choice.pretrained, dropout=proto.dropout,
                                  **({"pretrained_file": choice.file} if choice.file else {}))
        except Exception as exc:  # noqa: BLE001 - timm/Hub errors vary; fall back as documented
            if not choice.pretrained or choice.origin == "file" or require_pretrained:
                raise
            from thyroid_bench.models.weights import unavailable_message

            log(unavailable_message(model, choice.tag, f"{type(exc).__name__}: {exc}"))
            choice_tag, choice_sha = "none", None
            set_determinism(seed, threads, dev.type)
            net, _ = create_model(model, pretrained=False, dropout=proto.dropout)
        log(f"backbone weights: {choice_tag}")
    linear = proto.linear_probe or (ckpt_meta or {}).get("head") == "linear"
    if linear:
        if not (hasattr(net, "backbone") and hasattr(net, "head") and hasattr(net, "num_features")):
            raise ThyroidBenchError(f"protocol {proto.name}: model {model} has no backbone/head split "
                                    "(attributes backbone, head, num_features); linear probing needs one")
        net.head = torch.nn.Linear(net.num_features, len(manifest["label_schema"]["classes"]))
    if checkpoint is not None:
        state = load_file(str(checkpoint))
        try:
            net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ThyroidBenchError(f"--checkpoint {checkpoint} does not fit model {model}: {exc}") from None
        log(f"loaded checkpoint {checkpoint}")
    place_model(net, dev, accel)
    in_chans = meta.in_chans
    # ----------------------------------------------------------------- data (decoded once, in memory)
    train_all = load_split(data_path, "train", input_size, progress=progress) if not eval_only else None
    selection: dict[str, Any] = json.loads(ckpt_meta.get("selection", "{}")) if ckpt_meta else {}
    history: list[dict] = []
    if not eval_only:
        assert train_all is not None
        val_mask = train_all.folds == proto.selection_fold
        if not val_mask.any() or val_mask.all():
            raise ThyroidBenchError(f"dataset {data_path}: train needs rows in fold {proto.selection_fold} "
                                    "(model selection) and in the other folds (training)")
        tr, val = train_all.subset(~val_mask), train_all.subset(val_mask)
        log(f"training on {len(tr)} images (train folds != {proto.selection_fold}), selecting on "
            f"{len(val)} (fold {proto.selection_fold})")
        if linear:
            from thyroid_bench.train import extract_features

            for p in net.backbone.parameters():
                p.requires_grad_(False)
            f_tr = extract_features(net.backbone, tr.x, device=dev, in_chans=in_chans,
                                    progress=progress, desc="features train", accel=accel)
            f_val = extract_features(net.backbone, val.x, device=dev, in_chans=in_chans,
                                     progress=progress, desc="features fold0", accel=accel)
            save_file({"train": f_tr.contiguous(), "train_labels": tr.y.contiguous(),
                       "selection": f_val.contiguous(), "selection_labels": val.y.contiguous()},
                      str(run_dir / "features.safetensors"))
            net.head.to("cpu")
            res = fit_linear_probe(net.head, proto, f_tr, tr.y, f_val, val.y, seed=seed, log=log)
            net.head.to(dev)
        else:
            res = fit(net, proto, tr, val, device=dev, seed=seed, in_chans=in_chans, log=log,
                      progress=progress, accel=accel, dist=dist)
            if not dist.is_main:
                return None
        history = res.history
        selection = {"fold": proto.selection_fold, "metric": proto.selection_metric,
                     "best_epoch": res.best_epoch, "best_score": res.best_score,
                     "epochs_run": res.epochs_run, "train_s": round(res.train_s, 1)}
        del train_all, tr, val
    # ----------------------------------------------------------------- checkpoint
    ckpt_path = run_dir / "model.safetensors"
    if not eval_only:
        state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
        save_file(state, str(ckpt_path), metadata={
            "format": CHECKPOINT_FORMAT, "model": model, "protocol": json.dumps(proto.to_dict()),
            "overrides": json.dumps(overrides), "seed": str(seed), "input_size": str(input_size),
            "in_chans": str(in_chans), "head": "linear" if linear else "model",
            "pretrained": choice_tag, "pretrained_sha256": choice_sha or "",
            "selection": json.dumps(selection), "dataset": manifest["name"],
            "dataset_version": manifest["version"], "dataset_fingerprint": manifest["fingerprint"]})
    # ----------------------------------------------------------------- evaluation
    t_eval = time.perf_counter()
    metrics: dict[str, dict] = {}
    pred_files: dict[str, PredictionsFile] = {}
    roc_inputs: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in EVAL_SPLITS:
        data = load_split(data_path, split, input_size, progress=progress)
        prob = predict_proba(net, data.x, device=dev, in_chans=in_chans, progress=progress,
                             desc=f"evaluate {split}", accel=accel)
        rel = f"predictions/{split}.csv"
        write_predictions(run_dir / rel, data.case_ids, prob, labels=data.y.numpy())
        # Metrics come from the file as written, so re-scoring the file gives them exactly.
        preds = read_predictions(run_dir / rel, expected_case_ids=data.case_ids).align(data.case_ids)
        y_true = data.y.numpy()
        metrics[split] = evaluate(y_true, preds.probs, bootstrap=bootstrap, seed=0)
        roc_inputs[split] = (y_true, preds.probs)
        pred_files[split] = PredictionsFile(path=rel, sha256=sha256_file(run_dir / rel), rows=len(data))
        log(f"{split}: n {len(data)}  accuracy {metrics[split]['accuracy']:.4f}  "
            f"macro-F1 {metrics[split]['macro_f1']:.4f}")
    eval_s = time.perf_counter() - t_eval
    (run_dir / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
    # ----------------------------------------------------------------- config, report, entry
    env = _environment(dev, threads, amp, dist.world_size,
                       deterministic=dev.type == "cpu" and not dist.enabled and not accel.compile)
    finished = datetime.now(timezone.utc)
    wall = time.perf_counter() - t_start
    config = {
        "run_id": run_dir.name, "command": sys.argv if sys.argv and sys.argv[0] else None,
        "model": meta.model_dump(mode="json"), "protocol": proto.to_dict(), "overrides": overrides,
        "eval_only": eval_only, "checkpoint": str(checkpoint) if checkpoint else None,
        "seed": seed, "input_size": input_size, "in_chans": in_chans,
        "accel": accel.to_dict(), "world_size": dist.world_size,
        "pretrained": {"tag": choice_tag, "sha256": choice_sha},
        "dataset": {"name": manifest["name"], "version": manifest["version"],
                    "fingerprint": manifest["fingerprint"], "path": str(data_path)},
        "selection": selection, "history": history, "environment": env.model_dump(mode="json"),
        "eval_s": round(eval_s, 1), "wall_time_s": round(wall, 1),
    }
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    _write_report(run_dir, metrics, roc_inputs, config, history)
    entry = Entry(
        run_id=run_dir.name, task=manifest.get("task", TASK),
        dataset=DatasetRef(name=manifest["name"], version=manifest["version"],
                           fingerprint=manifest["fingerprint"], synthetic=bool(manifest.get("synthetic"))),
        model=meta, protocol=ProtocolRecord(name=proto.name, parameters=proto.to_dict(), overrides=overrides),
        pretrained=choice_tag, pretrained_sha256=choice_sha, seed=seed, selection=selection,
        metrics=metrics, predictions=pred_files, environment=env, wall_time_s=round(wall, 1),
        submitter=submitter or os.environ.get("THYROID_BENCH_SUBMITTER") or "anonymous",
        date=finished.replace(microsecond=0),
    )
    write_entry(run_dir / "entry.json", entry)  # last: a folder with entry.json is a finished run
    log(f"finished in {wall:.0f} s (evaluation {eval_s:.0f} s): {run_dir}")
    return RunResult(run_dir=run_dir, entry=entry, metrics=metrics)


def _write_report(run_dir: Path, metrics: dict, roc_inputs: dict, config: dict, history: list) -> None:
    from thyroid_bench.report import write_report

    p = config["protocol"]
    lines = [f"- model: `{config['model']['name']}` ({config['model']['parameters']:,} parameters, "
             f"input {config['input_size']}x{config['input_size']}x{config['in_chans']})",
             f"- protocol: `{p['name']}` {json.dumps(config['overrides']) if config['overrides'] else ''}",
             f"- seed {config['seed']}, device {config['environment']['device']} "
             f"({config['environment']['device_name']}), {config['environment']['num_threads']} thread(s)",
             f"- pretrained weights: {config['pretrained']['tag']}",
             f"- dataset: {config['dataset']['name']} {config['dataset']['version']}, fingerprint "
             f"`{config['dataset']['fingerprint']}`",
             f"- wall time {config['wall_time_s']} s"]
    sections = {"Run": "\n".join(lines)}
    if history:
        keys = list(history[0])
        rows = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        rows += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in h.values())
                 + " |" for h in history]
        sections["Training (model selection on train fold 0)"] = "\n".join(rows)
    write_report(run_dir, metrics, roc_inputs, title=f"{config['model']['name']} / "
                 f"{p['name']} / seed {config['seed']}", extra_sections=sections)
