"""Which way a run feeds its model (in memory or streamed), and the streamed split's disk cache.

In memory (:func:`~thyroid_bench.harness.preprocess.load_split`), a split is one float32
tensor N x V x S x S. Streamed, the same tensor is written once to a file in a temporary
folder and each batch is read from it by its rows (:class:`~thyroid_bench.harness.rows.
DiskRows`), so memory holds a batch, not the split, and does not grow with the archive. Both
paths are built from the same chunks (:func:`~thyroid_bench.harness.preprocess.
prepared_chunks`) and give training and prediction the same tensors, batch by batch, so a run
computes the same on either (tested); the path is how the device is fed, recorded in
``config.json`` (``data_path``), not part of the protocol or the entry.

A run streams with ``run --stream``, and on its own when the in-memory path's peak (the largest
split it loads, the train split counted twice since its folds are copies, times the run's
processes on this machine: :func:`memory_peak`) would take more than :data:`MEMORY_FRACTION` of
the memory available (``MemAvailable``); the log says which path it took and why. The cache is written by a torch ``DataLoader`` whose workers each prepare
whole parquet shards (as many workers as the run has CPU threads; none, in the process itself,
with one thread). Under ``torchrun`` each process prepares its own shards (shard ``k`` on rank
``k mod world size``) and the processes then exchange them over the process group, so every
process ends with the whole split in its own cache and reads its batches from it as the
in-memory path does (the same shuffling and augmentation on every rank). The cache lives in
``$TMPDIR`` (else the system's temporary folder), is checked for room before anything is
written, and is removed when the split is no longer needed, also on error or Ctrl-C.
"""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from thyroid_bench.errors import DatasetError, ThyroidBenchError, os_error_line
from thyroid_bench.harness.distributed import SINGLE, DistInfo
from thyroid_bench.harness.preprocess import SplitTensors, load_split, prepared_chunks, split_records
from thyroid_bench.harness.rows import DiskRows
from thyroid_bench.tasks import TRAIN_SPLIT, Task

__all__ = ["MEMORY_FRACTION", "DataPath", "available_memory", "split_bytes", "cache_root",
           "local_processes", "memory_peak", "choose_data_path", "owned_shards", "stream_split", "open_split"]

#: The in-memory path is taken while the largest split's tensor needs at most this share of the
#: memory available; the rest is left to the model, its optimiser and the batches.
MEMORY_FRACTION = 0.5
#: Rows sent at a time when the processes of a group exchange their shards.
EXCHANGE_ROWS = 64
_PREFIX = "thyroid-bench-stream-"


def _gb(n: float) -> str:
    return f"{n / 1e9:.2f} GB" if n >= 1e8 else f"{n / 1e6:.1f} MB"


@dataclass(frozen=True)
class DataPath:
    """How the run feeds its model: ``stream`` (a disk cache, batch by batch) or in memory,
    and why (``reason``: the option given, or the sizes that decided)."""

    stream: bool
    reason: str

    @property
    def name(self) -> str:
        return "stream" if self.stream else "memory"

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.name, "reason": self.reason}

    def describe(self) -> str:
        """The log line that says which path the run takes and why."""
        how = ("streamed from a disk cache, batch by batch" if self.stream
               else "in memory, one tensor per split")
        return f"data: {how} ({self.reason})"


def available_memory() -> int | None:
    """Bytes of memory available to a new allocation without swapping (Linux ``MemAvailable``;
    elsewhere the free physical pages), or ``None`` where the system does not say."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def split_bytes(rows: int, views: int, size: int) -> int:
    """Bytes of a split's float32 tensor (rows x views x size x size), in memory or in the cache."""
    return int(rows) * int(views) * int(size) * int(size) * 4


def cache_root() -> Path:
    """Where streaming caches go: ``$TMPDIR`` when set (never silently elsewhere), else the
    system's temporary folder."""
    return Path(os.environ.get("TMPDIR") or tempfile.gettempdir())


def local_processes() -> int:
    """The run's processes on this machine (``LOCAL_WORLD_SIZE``, set by ``torchrun`` and
    ``accelerate launch``; 1 without a launcher): each holds its own copy of a split."""
    try:
        return max(1, int(os.environ.get("LOCAL_WORLD_SIZE") or 1))
    except ValueError:
        return 1


def memory_peak(rows: Mapping[str, int], task: Task, size: int, processes: int = 1) -> tuple[int, str]:
    """Bytes the in-memory path holds at its peak on this machine, and how that was counted:
    the split loaded (``rows``: split -> rows) that needs most, the train split counted twice
    (its training and selection folds are copies of it, made while it is held:
    ``harness/run.py`` ``_selection_split``), times the run's ``processes`` on this machine."""
    views = len(task.image_columns)
    peaks = {s: split_bytes(n, views, size) * (2 if s == TRAIN_SPLIT else 1) for s, n in rows.items()}
    split = max(peaks, key=lambda s: peaks[s])
    how = f"{split} split {_gb(split_bytes(rows[split], views, size))}"
    if split == TRAIN_SPLIT:
        how += " x2 (its folds are copies)"
    if processes > 1:
        how += f" x{processes} processes on this machine"
    return peaks[split] * processes, how


def choose_data_path(rows: Mapping[str, int], task: Task, size: int, *, stream: bool,
                     dist: DistInfo = SINGLE) -> DataPath:
    """The data path of a run that loads splits of ``rows`` (split -> rows): streamed on
    ``stream`` or when the in-memory path's peak on this machine (:func:`memory_peak`, with
    :func:`local_processes`) would take more than :data:`MEMORY_FRACTION` of the memory
    available, on any machine of the group (a collective call under a launcher); checks the
    cache's room (a copy of the largest split per process on this machine) when streaming."""
    processes = local_processes()
    if stream:
        path = DataPath(True, "--stream")
    else:
        need, how = memory_peak(rows, task, size, processes)
        avail = available_memory()
        fits = avail is None or need <= MEMORY_FRACTION * avail
        fits_everywhere = dist.all_ok(fits)
        if avail is None:
            path = DataPath(not fits_everywhere, f"in-memory peak {_gb(need)}: {how}; this system "
                            "does not report its available memory")
        else:
            verdict = "within" if fits else "over"
            path = DataPath(not fits_everywhere, f"in-memory peak {_gb(need)}: {how}, {verdict} "
                            f"{MEMORY_FRACTION:.0%} of {_gb(avail)} available"
                            + ("" if fits or not fits_everywhere else "; another process lacks room"))
    if path.stream:
        check_cache_room(split_bytes(max(rows.values()), len(task.image_columns), size) * processes,
                         processes)
    return path


def check_cache_room(need: int, processes: int = 1) -> None:
    """Refuse, before anything is written, a cache folder that cannot be written or is too full
    (``need``: bytes for all the run's ``processes`` on this machine, a cache each)."""
    root = cache_root()
    advice = "set TMPDIR to a writable folder with room, or run without --stream"
    try:
        os.rmdir(tempfile.mkdtemp(prefix=_PREFIX, dir=root))
        free = shutil.disk_usage(root).free
    except OSError as exc:
        raise ThyroidBenchError(os_error_line(exc, "streaming cache folder", advice)) from None
    if free < need:
        each = f" ({processes} processes on this machine, a cache each)" if processes > 1 else ""
        raise ThyroidBenchError(f"streaming cache folder {root}: {_gb(free)} free, the largest "
                                f"split's cache needs {_gb(need)}{each}; {advice}")


def owned_shards(n_shards: int, dist: DistInfo = SINGLE) -> list[int]:
    """The shards this process prepares: shard ``k`` belongs to rank ``k mod world size``."""
    return list(range(dist.rank, n_shards, dist.world_size))


# --------------------------------------------------------------------------- building the cache
class _ShardJobs(torch.utils.data.Dataset):
    """One item per shard: prepare its images chunk by chunk and write them at their rows of the
    cache file. Returns ``(rows written, error line or None)``: an error travels back as a line,
    not as a worker's traceback."""

    def __init__(self, file: Path, jobs: Sequence[tuple[Path, int]], task: Task, size: int) -> None:
        self.file, self.jobs, self.task, self.size = file, list(jobs), task, size
        self.row_bytes = split_bytes(1, len(task.image_columns), size)

    def __len__(self) -> int:
        return len(self.jobs)

    def __getitem__(self, i: int) -> tuple[int, str | None]:
        shard, first = self.jobs[i]
        rows = 0
        try:
            with open(self.file, "r+b", buffering=0) as f:
                for start, chunk in prepared_chunks(shard, self.task, self.size):
                    _write_at(f, (first + start) * self.row_bytes, chunk.numpy())
                    rows = start + len(chunk)
        except (OSError, ThyroidBenchError) as exc:
            return rows, str(_cache_error(exc))
        return rows, None


def _as_is(item: Any) -> Any:
    return item


def _write_at(f: Any, offset: int, array: np.ndarray) -> None:
    view = memoryview(np.ascontiguousarray(array)).cast("B")
    f.seek(offset)
    done = 0
    while done < len(view):
        done += f.write(view[done:])


def _fill(file: Path, jobs: _ShardJobs, counts: Sequence[int], progress: bool) -> None:
    """Prepare this process's shards into ``file`` with a DataLoader (one worker per CPU thread
    of the run, at most one per shard; with one thread, in this process)."""
    from tqdm.auto import tqdm

    threads = torch.get_num_threads()
    workers = min(len(jobs), threads) if threads > 1 else 0
    # The loader's own generator: drawing its workers' seed from torch's global one would shift
    # the run's random stream (dropout, ...) away from the in-memory path's.
    loader = torch.utils.data.DataLoader(jobs, batch_size=None, num_workers=workers,
                                         collate_fn=_as_is, generator=torch.Generator())
    for (shard, _), want, (rows, error) in zip(jobs.jobs, counts, tqdm(
            loader, total=len(jobs), desc=f"cache {file.stem}", unit="shard",
            disable=not progress, leave=False)):
        if error:
            raise ThyroidBenchError(error)
        if rows != want:
            raise DatasetError(f"{shard}: {rows} images for {want} rows; verify the dataset "
                               "(`thyroid-bench verify`) and rebuild it")


def _exchange(file: Path, bounds: np.ndarray, row_shape: tuple[int, ...],
              dist: DistInfo) -> ThyroidBenchError | None:
    """Every process sends the shards it prepared and writes the others' into its cache, shard
    by shard, :data:`EXCHANGE_ROWS` rows at a time (memory: one such piece). A process that
    fails to read or write keeps taking part in every broadcast (zeros sent, nothing written),
    so no other waits on it for ever, and returns its error for the group to agree on."""
    rows = DiskRows(file, int(bounds[-1]), row_shape)
    error: ThyroidBenchError | None = None
    with open(file, "r+b", buffering=0) as f:
        for k in range(len(bounds) - 1):
            owner = k % dist.world_size
            for a in range(int(bounds[k]), int(bounds[k + 1]), EXCHANGE_ROWS):
                b = min(a + EXCHANGE_ROWS, int(bounds[k + 1]))
                piece = torch.zeros((b - a, *row_shape), dtype=torch.float32)
                try:
                    if dist.rank == owner and error is None:
                        piece = torch.from_numpy(rows.read(np.arange(a, b)))
                except (OSError, ThyroidBenchError) as exc:
                    error = _cache_error(exc)
                piece = dist.broadcast_tensor(piece, src=owner)
                try:
                    if dist.rank != owner and error is None:
                        _write_at(f, a * rows.row_bytes, piece.numpy())
                except OSError as exc:
                    error = _cache_error(exc)
    return error


def _cache_error(exc: OSError | ThyroidBenchError) -> ThyroidBenchError:
    if isinstance(exc, ThyroidBenchError):
        return exc
    return ThyroidBenchError(os_error_line(exc, "writing the streaming cache",
                                           "free space there or set TMPDIR to a folder with room"))


def _allocate(file: Path, size: int) -> None:
    """Create ``file`` with ``size`` bytes reserved on disk (``posix_fallocate`` where the
    system has it), so a full disk shows now, before the processes agree to go on, not in the
    middle of an exchange; elsewhere the file is only extended (sparse)."""
    with open(file, "wb") as f:
        if size and hasattr(os, "posix_fallocate"):
            try:
                os.posix_fallocate(f.fileno(), 0, size)
                return
            except OSError as exc:
                if exc.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                    raise OSError(exc.errno, exc.strerror, str(file)) from None
        f.truncate(size)


def stream_split(path: Path, split: str, size: int, task: Task, folder: Path, *,
                 dist: DistInfo = SINGLE, progress: bool = True,
                 log: Callable[[str], None] | None = None) -> SplitTensors:
    """A split whose images are a cache file in ``folder`` (:class:`DiskRows`), with the same
    values, labels and order as :func:`~thyroid_bench.harness.preprocess.load_split` gives."""
    from thyroid_bench.data.shards import open_shard, shard_files

    out = split_records(path, split, task)
    shards = shard_files(path, split)
    counts = [open_shard(s).metadata.num_rows for s in shards]  # footers only
    bounds = np.cumsum([0, *counts])
    if bounds[-1] != len(out):
        raise DatasetError(f"dataset {path}: {split}'s shards hold {bounds[-1]} rows of images for "
                           f"{len(out)} rows; verify the dataset (`thyroid-bench verify`) and rebuild it")
    row_shape = (len(task.image_columns), size, size)
    file = folder / f"{split}.f32"
    mine = owned_shards(len(shards), dist)
    error: ThyroidBenchError | None = None
    try:
        _allocate(file, split_bytes(len(out), *row_shape[:2]))
        _fill(file, _ShardJobs(file, [(shards[k], int(bounds[k])) for k in mine], task, size),
              [counts[k] for k in mine], progress and dist.is_main)
    except (OSError, ThyroidBenchError) as exc:
        error = _cache_error(exc)
    if not dist.all_ok(error is None):
        raise error or ThyroidBenchError("another process could not build its part of the "
                                         "streaming cache (see its error)")
    if dist.enabled:
        error = _exchange(file, bounds, row_shape, dist)
        if not dist.all_ok(error is None):
            raise error or ThyroidBenchError("another process could not receive its part of the "
                                             "streaming cache (see its error)")
    if log:
        log(f"stream {split}: {len(out)} images, {_gb(split_bytes(len(out), *row_shape[:2]))} "
            f"cached in {folder}" + (f"; this process prepared {len(mine)} of its {len(shards)} "
                                     f"shards, {dist.world_size - 1} other process(es) the rest, "
                                     "exchanged over the process group" if dist.enabled else ""))
    out.x = DiskRows(file, len(out), row_shape)
    return out


@contextmanager
def open_split(path: Path, split: str, size: int, task: Task, *, data: DataPath,
               dist: DistInfo = SINGLE, progress: bool = True,
               log: Callable[[str], None] | None = None) -> Iterator[SplitTensors]:
    """A split by the run's data path: in memory (:func:`load_split`), or streamed from a cache
    folder made for it and removed on leaving the block, whatever happens inside."""
    if not data.stream:
        yield load_split(path, split, size, task, progress=progress)
        return
    try:
        folder = Path(tempfile.mkdtemp(prefix=_PREFIX, dir=cache_root()))
    except OSError as exc:
        raise ThyroidBenchError(os_error_line(exc, "streaming cache folder", "set TMPDIR to a "
                                              "writable folder with room, or run without --stream")) from None
    try:
        yield stream_split(path, split, size, task, folder, dist=dist, progress=progress, log=log)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
