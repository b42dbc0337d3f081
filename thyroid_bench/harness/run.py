"""``thyroid-bench run``: train a model under a protocol, evaluate it, leave a run folder.

The run folder (``runs/<model>-<protocol>-<UTC timestamp>/`` unless ``out``)::

    INCOMPLETE            present from the start until entry.json is written; says why
                          when a run was interrupted (Ctrl-C) or failed
    config.json           the full configuration: model, protocol, task, seed, device,
                          threads, dataset fingerprint, pretrained weights, package versions
    train.log             per-epoch lines (loss, selection-fold accuracy, macro F1 and the
                          task's selection metric), then each evaluation split's figures
    model.safetensors     the selected weights, with the run's metadata (never a pickle)
    features.safetensors  linear probing only: the cached backbone features
    predictions/<split>.csv  one per evaluation split of the task (internal, external)
    metrics.json          the task's metric suite per split, computed from the CSVs as written
    report.md, figures/   the task's tables per split (four-pattern: the paper's Table 2;
                          residual-tissue: detection and grade tables), ROC curves,
                          confusion matrices
    entry.json            the leaderboard entry, written last and atomically

The task comes from the dataset's manifest: its classes size the model's head, its image
columns are the model's input (several views: one channel each), its target kind sets the
loss, its evaluation splits are the ones predicted and scored, its metric suite scores them.
Data flows one way: the dataset is verified before anything is written; the
model trains on the train folds other than the protocol's selection fold (fold 0),
that fold picks the best epoch, and the evaluation splits are touched only by the
final evaluation.

Launched by ``torchrun`` or ``accelerate launch`` with several processes, every
process trains on its share of each batch (:mod:`thyroid_bench.harness.distributed`) and
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
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation.entry import Entry, Environment, PredictionsFile, ProtocolRecord, write_entry
from thyroid_bench.evaluation.withheld import is_withheld, withheld_metrics
from thyroid_bench.harness.protocols import Protocol, default_protocol_name, get_protocol
from thyroid_bench.hashing import sha256_file
from thyroid_bench.tasks import TRAIN_SPLIT

if TYPE_CHECKING:
    import torch

    from thyroid_bench.data.manifest import Manifest
    from thyroid_bench.harness.distributed import DistInfo
    from thyroid_bench.harness.preprocess import SplitTensors
    from thyroid_bench.harness.stream import DataPath
    from thyroid_bench.harness.train import Accel, Log, TrainResult
    from thyroid_bench.models import ModelMeta
    from thyroid_bench.tasks import Task

__all__ = ["RunResult", "run", "run_dir_name", "read_checkpoint_metadata", "CHECKPOINT_FORMAT"]

CHECKPOINT_FORMAT = "thyroid-bench checkpoint v1"
#: What a run says of a split whose labels the dataset withholds.
WITHHELD_NOTE = ("labels withheld by the dataset's organisers: predicted, not scored here "
                 "(the organisers score it: thyroid-bench submit RUN_DIR --private-labels FILE)")


@dataclass
class RunResult:
    """What :func:`run` produced."""

    run_dir: Path
    entry: Entry
    metrics: dict[str, dict]


@dataclass(frozen=True)
class _Plan:
    """Everything a run settles before it writes anything: what trains, on what, and how."""

    model: str
    meta: ModelMeta
    task: Task
    proto: Protocol
    overrides: dict[str, Any]
    seed: int
    dev: torch.device
    accel: Accel
    dist: DistInfo
    input_size: int
    data_path: Path
    manifest: Manifest
    weights: str | os.PathLike | None
    require_pretrained: bool
    checkpoint: str | os.PathLike | None
    ckpt_meta: dict[str, str] | None
    eval_only: bool
    num_threads: int | None
    submitter: str | None
    bootstrap: int
    t_start: float
    data: DataPath

    @property
    def linear(self) -> bool:
        """A linear head on a frozen backbone: the protocol's choice, or the checkpoint's."""
        return self.proto.linear_probe or (self.ckpt_meta or {}).get("head") == "linear"


@dataclass(frozen=True)
class _Pretrained:
    """The weights the backbone started from, as the checkpoint, config and entry record them."""

    tag: str
    sha256: str | None


@dataclass
class _Trained:
    """Model selection and per-epoch history (empty for an evaluation-only run)."""

    selection: dict[str, Any] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)


@dataclass
class _Evaluation:
    """The evaluation splits scored: metrics, predictions files, ROC inputs, seconds taken."""

    metrics: dict[str, dict] = field(default_factory=dict)
    predictions: dict[str, PredictionsFile] = field(default_factory=dict)
    roc_inputs: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    seconds: float = 0.0


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


def _cpu_name() -> str:
    """The CPU model from /proc/cpuinfo where there is one, with the logical core count."""
    name = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{name} ({os.cpu_count()} logical cores)"


def _environment(device: Any, threads: int, amp: bool, world_size: int,
                 deterministic: bool) -> Environment:
    import timm
    import torch

    from thyroid_bench.version import __version__

    name = torch.cuda.get_device_name(device) if device.type == "cuda" else _cpu_name()
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
    stream: bool = False,
) -> RunResult | None:
    """Train ``model`` under ``protocol`` (default: ``paper`` on CUDA, ``quick`` on CPU) on the
    task of the dataset's manifest, evaluate on the task's evaluation splits, and write a
    complete run folder.

    ``epochs`` / ``batch_size`` override the protocol (recorded as overrides).
    ``checkpoint`` starts from a run's ``model.safetensors``; with ``eval_only``
    nothing is trained and the checkpoint's protocol, seed and input size are
    used. ``amp``, ``channels_last`` and ``compile`` choose how the device is
    used (:func:`thyroid_bench.harness.train.resolve_accel`), not what is computed; so does
    ``stream`` (read the splits batch by batch from a disk cache; without it, a run streams
    only when a split would not fit in memory: :mod:`thyroid_bench.harness.stream`).
    Raises :class:`ThyroidBenchError` subclasses for bad input, before
    writing anything; ``KeyboardInterrupt`` leaves the folder marked INCOMPLETE.
    Under a multi-process launcher, ranks other than 0 return ``None``.
    """
    from thyroid_bench.harness.distributed import init_distributed

    dist = init_distributed(device)
    try:
        plan = _plan(model, protocol=protocol, epochs=epochs, batch_size=batch_size, seed=seed,
                     device=device, dataset=dataset, home=home, weights=weights,
                     require_pretrained=require_pretrained, checkpoint=checkpoint,
                     eval_only=eval_only, num_threads=num_threads, submitter=submitter,
                     bootstrap=bootstrap, amp=amp, channels_last=channels_last, compile=compile,
                     dist=dist, stream=stream)
        return _run_planned(plan, out=out, runs_dir=runs_dir, progress=progress)
    finally:
        dist.close()


# --------------------------------------------------------------------------- checks (nothing written)
def _plan(model: str, *, protocol: str | None, epochs: int | None, batch_size: int | None,
          seed: int, device: str, dataset: str | os.PathLike | None, home: Path | None,
          weights: str | os.PathLike | None, require_pretrained: bool,
          checkpoint: str | os.PathLike | None, eval_only: bool, num_threads: int | None,
          submitter: str | None, bootstrap: int, amp: str, channels_last: str, compile: bool,
          dist: DistInfo, stream: bool = False) -> _Plan:
    """Check every input and settle protocol, task, model and input size; writes nothing."""
    from thyroid_bench.data.format import resolve_dataset
    from thyroid_bench.data.verify import verify_or_raise
    from thyroid_bench.harness.train import resolve_accel, resolve_device
    from thyroid_bench.models import describe_model
    from thyroid_bench.models.resolve import channel_kwargs, resolve_factory

    t_start = time.perf_counter()
    dev = resolve_device(device, dist)
    accel = resolve_accel(dev, amp=amp, channels_last=channels_last, compile=compile)
    ckpt_meta = _checked_checkpoint(model, checkpoint, eval_only, dist)
    if eval_only:
        assert ckpt_meta is not None
        proto, overrides, seed = _checkpoint_protocol(ckpt_meta)
    else:
        proto, overrides = _protocol(protocol, epochs, batch_size, dev.type)
    resolve_factory(model)  # an unknown model name fails before the dataset is read and verified
    data_path = resolve_dataset(dataset, home=home)
    manifest = verify_or_raise(data_path, consequence="nothing was trained")
    task = manifest.get_task()
    proto = proto.for_task(task)
    meta = describe_model(model, num_classes=task.num_classes, **channel_kwargs(task),
                          **({"dropout": proto.dropout} if proto.dropout else {}))
    _check_checkpoint_channels(checkpoint, ckpt_meta, meta.in_chans, task)
    _check_distributed(dist, proto)
    size = _input_size(proto, meta, ckpt_meta)
    return _Plan(model=model, meta=meta, task=task, proto=proto, overrides=overrides, seed=seed,
                 dev=dev, accel=accel, dist=dist, input_size=size,
                 data_path=data_path, manifest=manifest, weights=weights,
                 require_pretrained=require_pretrained, checkpoint=checkpoint, ckpt_meta=ckpt_meta,
                 eval_only=eval_only, num_threads=num_threads, submitter=submitter,
                 bootstrap=bootstrap, t_start=t_start,
                 data=_choose_data_path(manifest, task, size, eval_only, stream, dist))


def _choose_data_path(manifest: Manifest, task: Task, size: int, eval_only: bool, stream: bool,
                      dist: DistInfo) -> DataPath:
    """In memory or streamed (:func:`~thyroid_bench.harness.stream.choose_data_path`), by the
    splits the run loads."""
    from thyroid_bench.harness.stream import choose_data_path

    splits = (*(() if eval_only else (TRAIN_SPLIT,)), *task.eval_splits)
    return choose_data_path({s: manifest.splits[s].rows for s in splits}, task, size,
                            stream=stream, dist=dist)


def _checked_checkpoint(model: str, checkpoint: str | os.PathLike | None, eval_only: bool,
                        dist: DistInfo) -> dict[str, str] | None:
    """The checkpoint's metadata (``None`` without one), checked against the run's model."""
    if dist.enabled and eval_only:
        raise ThyroidBenchError("--eval-only runs in one process; launch it without torchrun")
    if eval_only and checkpoint is None:
        raise ThyroidBenchError("--eval-only needs --checkpoint PATH (a run's model.safetensors)")
    if checkpoint is None:
        return None
    ckpt_meta = read_checkpoint_metadata(checkpoint)
    if ckpt_meta.get("model") != model:
        raise ThyroidBenchError(f"--checkpoint {checkpoint} holds model {ckpt_meta.get('model')!r}, "
                                f"not {model!r}; pass --model {ckpt_meta.get('model')}")
    return ckpt_meta


def _check_checkpoint_channels(checkpoint: str | os.PathLike | None, ckpt_meta: dict[str, str] | None,
                               in_chans: int, task: Task) -> None:
    """A checkpoint of a run with other input channels (another task's views) cannot be loaded."""
    if ckpt_meta is None or ckpt_meta.get("in_chans") in (None, str(in_chans)):
        return
    views = len(task.image_columns)
    raise ThyroidBenchError(
        f"--checkpoint {checkpoint} was trained with {ckpt_meta['in_chans']} input channel(s) (on "
        f"dataset {ckpt_meta.get('dataset')!r}), but on this dataset (task {task.name}, {views} "
        f"view(s)) the model takes {in_chans}; use a checkpoint of a run on a {task.name} dataset")


def _checkpoint_protocol(ckpt_meta: dict[str, str]) -> tuple[Protocol, dict[str, Any], int]:
    """Protocol, overrides and seed a checkpoint was trained under (for an evaluation-only run)."""
    return (Protocol(**json.loads(ckpt_meta["protocol"])),
            json.loads(ckpt_meta.get("overrides", "{}")), int(ckpt_meta["seed"]))


def _protocol(name: str | None, epochs: int | None, batch_size: int | None,
              device_type: str) -> tuple[Protocol, dict[str, Any]]:
    """The named protocol (default per device) with the command line's overrides applied."""
    base = get_protocol(name or default_protocol_name(device_type))
    overrides = {k: v for k, v in {"epochs": epochs, "batch_size": batch_size}.items() if v is not None}
    return base.with_overrides(**overrides), overrides


def _input_size(proto: Protocol, meta: ModelMeta, ckpt_meta: dict[str, str] | None) -> int:
    """The checkpoint's input size, else the protocol's (or the model's native size) raised to
    the smallest the network accepts (inceptions: 75)."""
    if ckpt_meta:
        return int(ckpt_meta["input_size"])
    return max(proto.input_size or meta.input_size, meta.min_input_size)


def _check_distributed(dist: DistInfo, proto: Protocol) -> None:
    """Refuse what a multi-process group cannot do: an uneven batch split, linear probing."""
    if dist.enabled and proto.batch_size % dist.world_size:
        raise ThyroidBenchError(f"batch size {proto.batch_size} does not split evenly over "
                                f"{dist.world_size} processes; pass --batch-size a multiple of "
                                "the process count")
    if dist.enabled and proto.linear_probe:
        raise ThyroidBenchError(f"protocol {proto.name} trains a linear head on cached features "
                                "in one process; launch it without torchrun")


# --------------------------------------------------------------------------- the run folder
def _run_planned(plan: _Plan, *, out: Path | None, runs_dir: Path, progress: bool) -> RunResult | None:
    """Rank 0 runs in a new folder; the other ranks train their share and write nothing."""
    started = datetime.now(timezone.utc)
    run_dir = _open_run_dir(plan, out, runs_dir, started)
    if run_dir is None:  # a worker
        _run_in_folder(plan, run_dir=None, progress=False, log=lambda msg: None)
        return None
    return _run_marked_incomplete(plan, run_dir, started, progress)


def _open_run_dir(plan: _Plan, out: Path | None, runs_dir: Path, started: datetime) -> Path | None:
    """Rank 0 makes the run folder (``None`` on the other ranks); every rank learns whether it could."""
    dist = plan.dist
    run_dir = None
    try:
        if dist.is_main:
            run_dir = _make_run_dir(out, runs_dir, plan.model, plan.proto.slug, started)
    finally:  # the other ranks must not wait for a rank 0 that gave up
        ok = dist.all_ok(run_dir is not None or not dist.is_main)
    if not ok:
        raise ThyroidBenchError("rank 0 could not create the run folder (see its error); "
                                "nothing was trained")
    return run_dir


def _run_marked_incomplete(plan: _Plan, run_dir: Path, started: datetime,
                           progress: bool) -> RunResult | None:
    """Run in ``run_dir`` with an INCOMPLETE marker that says why, removed only on success."""
    incomplete = run_dir / "INCOMPLETE"
    incomplete.write_text(f"run started {started.isoformat()}; not finished\n", encoding="utf-8")
    log = _RunLog(run_dir / "train.log", echo=progress)
    try:
        result = _run_in_folder(plan, run_dir=run_dir, progress=progress, log=log)
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


def _run_in_folder(plan: _Plan, *, run_dir: Path | None, progress: bool, log: Log) -> RunResult | None:
    """Build, train (or load) and evaluate the network; write the folder. ``None`` on a worker."""
    from thyroid_bench.harness.train import place_model, set_determinism

    threads = set_determinism(plan.seed, plan.num_threads, plan.dev.type)
    _log_start(plan, run_dir, threads, log)
    net, pretrained = _build_network(plan, threads, log)
    if plan.checkpoint is not None:
        _load_checkpoint(net, plan, log)
    place_model(net, plan.dev, plan.accel)
    if plan.eval_only:
        assert plan.ckpt_meta is not None
        trained = _Trained(selection=json.loads(plan.ckpt_meta.get("selection", "{}")))
    else:
        trained = _train(plan, net, run_dir, progress, log)
        if trained is None:  # a worker has trained its share
            return None
        assert run_dir is not None
        _save_checkpoint(run_dir / "model.safetensors", plan, net, pretrained, trained)
    assert run_dir is not None
    evaluation = _evaluate_splits(plan, net, run_dir, progress, log)
    return _write_results(plan, run_dir, threads, pretrained, trained, evaluation, log)


def _log_start(plan: _Plan, run_dir: Path | None, threads: int, log: Log) -> None:
    proto, accel, dist, size = plan.proto, plan.accel, plan.dist, plan.input_size
    log(f"run {run_dir.name if run_dir else '(worker)'}: model {plan.model}, protocol {proto.label}"
        f"{' ' + json.dumps(plan.overrides) if plan.overrides else ''}, seed {plan.seed}, "
        f"device {plan.dev}{f' x {dist.world_size} processes' if dist.enabled else ''}, "
        f"{threads} thread(s), input {size}x{size}x{plan.meta.in_chans}, "
        f"amp {accel.amp or 'off'}, channels-last {'on' if accel.channels_last else 'off'}"
        f"{', torch.compile' if accel.compile else ''}")
    m = plan.manifest
    log(f"dataset {m.name} {m.version} fingerprint {m.fingerprint}, task {plan.task.name}")
    log(plan.data.describe())


# --------------------------------------------------------------------------- the network
def _build_network(plan: _Plan, threads: int, log: Log) -> tuple[torch.nn.Module, _Pretrained]:
    """The network with the task's classes, its backbone weights, and a linear head if probing."""
    if plan.ckpt_meta is not None:  # the checkpoint's weights replace these; it records its origin
        pretrained = _Pretrained(plan.ckpt_meta.get("pretrained", "none"),
                                 plan.ckpt_meta.get("pretrained_sha256") or None)
        net = _create(plan, pretrained=False)
    else:
        net, pretrained = _network_with_backbone_weights(plan, threads, log)
    if plan.linear:
        _attach_linear_head(net, plan)
    return net, pretrained


def _network_with_backbone_weights(plan: _Plan, threads: int,
                                   log: Log) -> tuple[torch.nn.Module, _Pretrained]:
    """Build with the protocol's pretrained weights; fall back to random initialisation (with
    one warning) when they cannot be loaded, unless they were required or a file was given."""
    from thyroid_bench.harness.train import set_determinism
    from thyroid_bench.models.weights import resolve_pretrained, unavailable_message

    choice = resolve_pretrained(plan.model, plan.meta.pretrained_tag, want=plan.proto.pretrained,
                                weights=plan.weights, require=plan.require_pretrained, warn=log)
    pretrained = _Pretrained(choice.tag, choice.sha256)
    try:
        net = _create(plan, pretrained=choice.pretrained,
                      **({"pretrained_file": choice.file} if choice.file else {}))
    except Exception as exc:  # noqa: BLE001 - timm/Hub errors vary; fall back as documented
        if not choice.pretrained or choice.origin == "file" or plan.require_pretrained:
            raise
        log(unavailable_message(plan.model, choice.tag, f"{type(exc).__name__}: {exc}"))
        pretrained = _Pretrained("none", None)
        set_determinism(plan.seed, threads, plan.dev.type)  # initialise as a run without weights
        net = _create(plan, pretrained=False)
    log(f"backbone weights: {pretrained.tag}")
    return net, pretrained


def _create(plan: _Plan, *, pretrained: bool, **kwargs: Any) -> torch.nn.Module:
    """The run's model with the task's classes and input channels (one per view when several)."""
    from thyroid_bench.models import create_model
    from thyroid_bench.models.resolve import channel_kwargs

    net, _ = create_model(plan.model, num_classes=plan.task.num_classes, pretrained=pretrained,
                          dropout=plan.proto.dropout, **channel_kwargs(plan.task), **kwargs)
    return net


def _attach_linear_head(net: torch.nn.Module, plan: _Plan) -> None:
    """Replace the model's head by one linear layer from its pooled features to the task's classes."""
    import torch

    if not (hasattr(net, "backbone") and hasattr(net, "head") and hasattr(net, "num_features")):
        raise ThyroidBenchError(f"protocol {plan.proto.name}: model {plan.model} has no backbone/head "
                                "split (attributes backbone, head, num_features); linear probing "
                                "needs one")
    net.head = torch.nn.Linear(net.num_features, plan.task.num_classes)


def _load_checkpoint(net: torch.nn.Module, plan: _Plan, log: Log) -> None:
    """Load the checkpoint's weights into ``net``, every tensor matching."""
    from safetensors.torch import load_file

    state = load_file(str(plan.checkpoint))
    try:
        net.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ThyroidBenchError(f"--checkpoint {plan.checkpoint} does not fit model {plan.model}: "
                                f"{exc}") from None
    log(f"loaded checkpoint {plan.checkpoint}")


def _save_checkpoint(path: Path, plan: _Plan, net: torch.nn.Module, pretrained: _Pretrained,
                     trained: _Trained) -> None:
    """The selected weights as safetensors, with what an evaluation-only run needs to repeat it."""
    from safetensors.torch import save_file

    state = {k: v.detach().to("cpu").contiguous() for k, v in net.state_dict().items()}
    m = plan.manifest
    save_file(state, str(path), metadata={
        "format": CHECKPOINT_FORMAT, "model": plan.model, "protocol": json.dumps(plan.proto.to_dict()),
        "overrides": json.dumps(plan.overrides), "seed": str(plan.seed),
        "input_size": str(plan.input_size), "in_chans": str(plan.meta.in_chans),
        "head": "linear" if plan.linear else "model",
        "pretrained": pretrained.tag, "pretrained_sha256": pretrained.sha256 or "",
        "selection": json.dumps(trained.selection), "dataset": m.name,
        "dataset_version": m.version, "dataset_fingerprint": m.fingerprint})


# --------------------------------------------------------------------------- training
def _train(plan: _Plan, net: torch.nn.Module, run_dir: Path | None, progress: bool,
           log: Log) -> _Trained | None:
    """Train on the train folds, select on the selection fold; ``None`` on a worker."""
    from thyroid_bench.harness.stream import open_split
    from thyroid_bench.harness.train import fit

    with open_split(plan.data_path, TRAIN_SPLIT, plan.input_size, plan.task, data=plan.data,
                    dist=plan.dist, progress=progress, log=log) as train_all:
        tr, val = _selection_split(train_all, plan, log)
        del train_all  # in memory, the whole split's tensor: the folds are copies of it
        if plan.linear:
            assert run_dir is not None
            res = _fit_linear_head(plan, net, tr, val, run_dir, progress, log)
        else:
            res = fit(net, plan.proto, tr, val, task=plan.task, device=plan.dev, seed=plan.seed,
                      in_chans=plan.meta.in_chans, log=log, progress=progress, accel=plan.accel,
                      dist=plan.dist)
    if not plan.linear and not plan.dist.is_main:
        return None
    proto = plan.proto
    return _Trained(history=res.history, selection={
        "fold": proto.selection_fold, "metric": proto.selection_metric, "best_epoch": res.best_epoch,
        "best_score": res.best_score, "epochs_run": res.epochs_run, "train_s": round(res.train_s, 1)})


def _selection_split(train_all: SplitTensors, plan: _Plan,
                     log: Log) -> tuple[SplitTensors, SplitTensors]:
    """The train split cut into the training folds and the protocol's selection fold."""
    fold = plan.proto.selection_fold
    val_mask = train_all.folds == fold
    if not val_mask.any() or val_mask.all():
        raise ThyroidBenchError(f"dataset {plan.data_path}: {TRAIN_SPLIT} needs rows in fold {fold} "
                                "(model selection) and in the other folds (training)")
    tr, val = train_all.subset(~val_mask), train_all.subset(val_mask)
    log(f"training on {len(tr)} images (train folds != {fold}), selecting on {len(val)} (fold {fold})")
    return tr, val


def _fit_linear_head(plan: _Plan, net: torch.nn.Module, tr: SplitTensors, val: SplitTensors,
                     run_dir: Path, progress: bool, log: Log) -> TrainResult:
    """Freeze the backbone, cache its features (features.safetensors), train the linear head."""
    from safetensors.torch import save_file

    from thyroid_bench.harness.train import extract_features, fit_linear_probe

    for p in net.backbone.parameters():
        p.requires_grad_(False)
    kw = dict(device=plan.dev, in_chans=plan.meta.in_chans, progress=progress, accel=plan.accel)
    f_tr = extract_features(net.backbone, tr.x, desc="features train", **kw)
    f_val = extract_features(net.backbone, val.x, desc=f"features fold{plan.proto.selection_fold}", **kw)
    save_file({"train": f_tr.contiguous(), "train_labels": tr.y.contiguous(),
               "selection": f_val.contiguous(), "selection_labels": val.y.contiguous()},
              str(run_dir / "features.safetensors"))
    net.head.to("cpu")
    res = fit_linear_probe(net.head, plan.proto, f_tr, tr.y, f_val, val.y, task=plan.task,
                           seed=plan.seed, log=log)
    net.head.to(plan.dev)
    return res


# --------------------------------------------------------------------------- evaluation and results
def _evaluate_splits(plan: _Plan, net: torch.nn.Module, run_dir: Path, progress: bool,
                     log: Log) -> _Evaluation:
    """Predict every evaluation split of the task, write its CSV, score the CSV; metrics.json."""
    t_eval = time.perf_counter()
    ev = _Evaluation()
    for split in plan.task.eval_splits:
        _evaluate_split(plan, net, split, run_dir, progress, ev)
        m = ev.metrics[split]
        log(f"{split}: n {ev.predictions[split].rows}  "
            + (WITHHELD_NOTE if is_withheld(m) else _figures_line(m, plan.task)))
    ev.seconds = time.perf_counter() - t_eval
    (run_dir / "metrics.json").write_text(json.dumps(ev.metrics, indent=2, allow_nan=False) + "\n",
                                          encoding="utf-8")
    return ev


def _figures_line(metrics: dict[str, Any], task: Task) -> str:
    """Accuracy, macro F1, the task's main score and the figures shown beside it, as far as
    the suite gives them (grade figures are undefined where grades are unknown)."""
    labels = {"accuracy": "accuracy", "macro_f1": "macro-F1"}
    names = dict.fromkeys(("accuracy", "macro_f1", task.main_score.metric, *task.shown_beside))
    return "  ".join(f"{labels.get(n, n)} {metrics[n]:.4f}" for n in names
                     if isinstance(metrics.get(n), (int, float)))


def _evaluate_split(plan: _Plan, net: torch.nn.Module, split: str, run_dir: Path, progress: bool,
                    ev: _Evaluation) -> None:
    """One split into ``ev``: predictions/<split>.csv, then its metrics from the file as written,
    so re-scoring the file gives them exactly. A split whose labels the dataset withholds is
    predicted (no label column) and not scored: its metrics are the withheld marker
    (:func:`~thyroid_bench.evaluation.withheld.withheld_metrics`)."""
    from thyroid_bench.evaluation.predictions import read_predictions, write_predictions
    from thyroid_bench.evaluation.suites import evaluate_task
    from thyroid_bench.harness.stream import open_split
    from thyroid_bench.harness.train import predict_proba

    with open_split(plan.data_path, split, plan.input_size, plan.task, data=plan.data,
                    progress=progress) as data:
        prob = predict_proba(net, data.x, device=plan.dev, in_chans=plan.meta.in_chans,
                             progress=progress, desc=f"evaluate {split}", accel=plan.accel)
    rel = f"predictions/{split}.csv"
    y_true = data.y.numpy()
    withheld = split in plan.manifest.withheld_splits
    write_predictions(run_dir / rel, plan.task, data.case_ids, prob, labels=None if withheld else y_true)
    preds = read_predictions(run_dir / rel, plan.task,
                             expected_case_ids=data.case_ids).align(data.case_ids)
    ev.predictions[split] = PredictionsFile(path=rel, sha256=sha256_file(run_dir / rel), rows=len(data))
    if withheld:
        ev.metrics[split] = withheld_metrics(len(data), bootstrap=plan.bootstrap)
        return
    # The model predicts classes only: the file has no uptake column, so uptake figures are
    # undefined; the dataset's values are still passed, as score and submit pass them.
    ev.metrics[split] = evaluate_task(plan.task, y_true, preds.probs, bootstrap=plan.bootstrap,
                                      seed=0, values=preds.values, true_values=data.values)
    ev.roc_inputs[split] = (y_true, preds.probs)


def _write_results(plan: _Plan, run_dir: Path, threads: int, pretrained: _Pretrained,
                   trained: _Trained, ev: _Evaluation, log: Log) -> RunResult:
    """config.json, report.md and figures, then entry.json last (a folder with it is finished)."""
    env = _environment(plan.dev, threads, plan.accel.amp is not None, plan.dist.world_size,
                       deterministic=plan.dev.type == "cpu" and not plan.dist.enabled
                       and not plan.accel.compile)
    finished = datetime.now(timezone.utc)
    wall = time.perf_counter() - plan.t_start
    config = _config(plan, run_dir, env, pretrained, trained, ev, wall)
    (run_dir / "config.json").write_text(json.dumps(config, indent=2, default=str) + "\n",
                                         encoding="utf-8")
    _write_report(run_dir, plan.task, ev.metrics, ev.roc_inputs, config, trained.history)
    entry = Entry(
        run_id=run_dir.name, task=plan.task.name, dataset=plan.manifest.dataset_ref(), model=plan.meta,
        protocol=ProtocolRecord(name=plan.proto.name, parameters=plan.proto.to_dict(),
                                overrides=plan.overrides),
        pretrained=pretrained.tag, pretrained_sha256=pretrained.sha256, seed=plan.seed,
        selection=trained.selection, metrics=ev.metrics, predictions=ev.predictions,
        environment=env, wall_time_s=round(wall, 1),
        submitter=plan.submitter or os.environ.get("THYROID_BENCH_SUBMITTER") or "anonymous",
        date=finished.replace(microsecond=0),
        checkpoint_sha256=sha256_file(plan.checkpoint if plan.eval_only and plan.checkpoint
                                      else run_dir / "model.safetensors"),
    )
    write_entry(run_dir / "entry.json", entry)
    log(f"finished in {wall:.0f} s (evaluation {ev.seconds:.0f} s): {run_dir}")
    return RunResult(run_dir=run_dir, entry=entry, metrics=ev.metrics)


def _config(plan: _Plan, run_dir: Path, env: Environment, pretrained: _Pretrained,
            trained: _Trained, ev: _Evaluation, wall: float) -> dict[str, Any]:
    """The run's full configuration, as config.json holds it."""
    return {
        "run_id": run_dir.name, "command": sys.argv if sys.argv and sys.argv[0] else None,
        "model": plan.meta.model_dump(mode="json"), "protocol": plan.proto.to_dict(),
        "overrides": plan.overrides, "eval_only": plan.eval_only,
        "checkpoint": str(plan.checkpoint) if plan.checkpoint else None,
        "seed": plan.seed, "input_size": plan.input_size, "in_chans": plan.meta.in_chans,
        "accel": plan.accel.to_dict(), "data_path": plan.data.to_dict(),
        "world_size": plan.dist.world_size,
        "pretrained": {"tag": pretrained.tag, "sha256": pretrained.sha256},
        "task": plan.task.name,
        "dataset": {**plan.manifest.dataset_ref().model_dump(exclude={"synthetic"}),
                    "path": str(plan.data_path)},
        "selection": trained.selection, "history": trained.history,
        "environment": env.model_dump(mode="json"),
        "eval_s": round(ev.seconds, 1), "wall_time_s": round(wall, 1),
    }


def _write_report(run_dir: Path, task: Task, metrics: dict, roc_inputs: dict, config: dict,
                  history: list) -> None:
    from thyroid_bench.evaluation.report import write_report

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
    withheld = [split for split, m in metrics.items() if is_withheld(m)]
    if withheld:
        sections["Withheld labels"] = f"{', '.join(withheld)}: {WITHHELD_NOTE}."
        metrics = {split: m for split, m in metrics.items() if split not in withheld}
    if history:
        keys = list(history[0])
        rows = ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        rows += ["| " + " | ".join(f"{v:.4g}" if isinstance(v, float) else str(v) for v in h.values())
                 + " |" for h in history]
        sections[f"Training (model selection on train fold {p['selection_fold']})"] = "\n".join(rows)
    write_report(run_dir, task, metrics, roc_inputs, title=f"{config['model']['name']} / "
                 f"{p['name']} / seed {config['seed']}", extra_sections=sections)
