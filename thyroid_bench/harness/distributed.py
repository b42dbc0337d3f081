"""Data-parallel training under ``torchrun`` / ``accelerate launch`` (DistributedDataParallel).

Both launchers start one process per device and describe the group in the
environment (``WORLD_SIZE``, ``RANK``, ``LOCAL_RANK``, ``MASTER_ADDR``,
``MASTER_PORT``). :func:`init_distributed` reads it: with ``WORLD_SIZE`` above 1
it joins the process group (NCCL on CUDA, gloo on the CPU) and every process
trains on its share of each batch; rank 0 alone validates, evaluates and writes
the run folder. Without a launcher it returns a one-process group and touches
nothing.

What the group computes: every rank holds the whole training split (in memory, or in
its own streaming cache, whose shards the ranks prepare between them:
:mod:`thyroid_bench.harness.stream`) and draws the same shuffling, augmentation
and mix-up from the seed for the protocol's whole batch, then trains on its
contiguous slice of it. Gradients are averaged
over the ranks, so each step is the single-process step on that batch, except
that batch normalisation sees per-rank statistics (no SyncBatchNorm), as is
usual for DistributedDataParallel. The protocol's batch size is the global
batch and must divide evenly across the ranks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from thyroid_bench.errors import ThyroidBenchError

__all__ = ["DistInfo", "init_distributed", "SINGLE"]


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits in the launcher's group."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    #: True when this call joined the process group (and so must leave it).
    owns_group: bool = False

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that validates, evaluates and writes files."""
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    def all_ok(self, ok: bool) -> bool:
        """True on every rank when ``ok`` is true on every rank (one collective call)."""
        if not self.enabled:
            return ok
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if ok else 0], dtype=torch.int64, device=_collective_device())
        dist.all_reduce(flag, op=dist.ReduceOp.MIN)
        return bool(flag.item())

    def broadcast_flag(self, value: bool) -> bool:
        """Rank 0's ``value``, on every rank."""
        if not self.enabled:
            return value
        import torch
        import torch.distributed as dist

        flag = torch.tensor([1 if value else 0], dtype=torch.int64, device=_collective_device())
        dist.broadcast(flag, src=0)
        return bool(flag.item())

    def broadcast_tensor(self, tensor: Any, src: int) -> Any:
        """Rank ``src``'s ``tensor`` (a CPU tensor of the same shape and dtype on every rank),
        on every rank, on the CPU (sent through the GPU under NCCL)."""
        if not self.enabled:
            return tensor
        import torch.distributed as dist

        buf = tensor.to(_collective_device())
        dist.broadcast(buf, src=src)
        return buf.to("cpu")

    def close(self) -> None:
        """Leave the process group if :func:`init_distributed` joined it."""
        if self.owns_group:
            import torch.distributed as dist

            if dist.is_initialized():
                dist.destroy_process_group()


SINGLE = DistInfo()


def _collective_device() -> str:
    import torch.distributed as dist

    return "cuda" if dist.get_backend() == "nccl" else "cpu"


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ThyroidBenchError(f"environment variable {name}={raw!r} is not an integer; it is set "
                                "by torchrun / accelerate launch, so unset it or relaunch") from None


def init_distributed(device: str = "auto") -> DistInfo:
    """Join the launcher's process group, or return :data:`SINGLE` when not launched by one.

    ``device`` is the ``--device`` value: NCCL is used when the run goes to
    CUDA, gloo otherwise (also for ``--device cpu`` on a GPU machine).
    """
    world = _env_int("WORLD_SIZE", 1)
    if world <= 1:
        return SINGLE
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    import torch
    import torch.distributed as dist

    if dist.is_initialized():  # the caller set the group up already (e.g. accelerate, a notebook)
        return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank)
    missing = [v for v in ("MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise ThyroidBenchError(f"WORLD_SIZE={world} but {', '.join(missing)} not set: launch "
                                "multi-process runs with torchrun or accelerate launch")
    cuda = device != "cpu" and torch.cuda.is_available()
    if cuda:
        torch.cuda.set_device(local_rank)
    dist.init_process_group(backend="nccl" if cuda else "gloo", rank=rank, world_size=world)
    return DistInfo(rank=rank, world_size=world, local_rank=local_rank, owns_group=True)
