"""Rows of a float32 array kept in a file and read on demand: a streamed split's images.

:class:`DiskRows` stands where an in-memory split holds its N x V x S x S tensor: ``x[idx]``
(a batch by index, as training draws it from the global permutation) and ``x[a:b]`` (a slice,
as prediction walks a split) return the same tensors the in-memory tensor would, read from the
file with plain positioned reads into a fresh buffer. It never maps the file into memory: pages
touched through a memory map count in the process's resident memory, plain reads go through
the page cache, which the system reclaims, so memory stays one batch whatever the split's size.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from thyroid_bench.errors import ThyroidBenchError, os_error_line

__all__ = ["DiskRows"]


class DiskRows:
    """``n`` rows of float32, each of shape ``row_shape``, stored back to back in ``file``.

    ``rows`` maps this view's positions to rows of the file (a subset, e.g. the training folds);
    ``device`` is where the batches go (``to``). The file is opened per read and never written.
    """

    def __init__(self, file: str | os.PathLike, n: int, row_shape: tuple[int, ...],
                 rows: np.ndarray | None = None, device: torch.device | str = "cpu") -> None:
        self.file, self.n, self.row_shape = Path(file), int(n), tuple(int(d) for d in row_shape)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.device = torch.device(device)
        self.row_bytes = 4 * int(np.prod(self.row_shape, dtype=np.int64))

    def __len__(self) -> int:
        return self.n if self.rows is None else len(self.rows)

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    def subset(self, positions: np.ndarray) -> DiskRows:
        """The rows at ``positions`` of this view, in that order (nothing is read)."""
        positions = np.asarray(positions, dtype=np.int64)
        return DiskRows(self.file, self.n, self.row_shape, self._file_rows(positions), self.device)

    def to(self, device: torch.device | str, non_blocking: bool = False) -> DiskRows:
        """The same rows, delivered on ``device``."""
        return DiskRows(self.file, self.n, self.row_shape, self.rows, device)

    def __getitem__(self, index: int | slice | np.ndarray | torch.Tensor | list[int]) -> torch.Tensor:
        """A batch: rows ``index`` (a slice, an int, or integer positions) as one tensor."""
        if isinstance(index, slice):
            positions = np.arange(len(self), dtype=np.int64)[index]
        elif isinstance(index, (int, np.integer)):
            return self[np.array([index])][0]
        elif isinstance(index, torch.Tensor):
            positions = index.detach().to("cpu", torch.int64).numpy()
        else:
            positions = np.asarray(index, dtype=np.int64)
        x = torch.from_numpy(self.read(positions))
        return x if self.device.type == "cpu" else x.to(self.device, non_blocking=True)

    def read(self, positions: np.ndarray) -> np.ndarray:
        """Rows at ``positions`` (of this view) as a float32 array, in the order given.

        Each run of consecutive file rows is one read; rows come in file order and are put
        back in the order asked for."""
        positions = np.asarray(positions, dtype=np.int64)
        if positions.size and (positions.min() < -len(self) or positions.max() >= len(self)):
            raise IndexError(f"row positions outside 0-{len(self) - 1}")
        wanted = self._file_rows(positions % max(1, len(self)))
        unique, inverse = np.unique(wanted, return_inverse=True)
        out = np.empty((len(unique), *self.row_shape), dtype=np.float32)
        breaks = np.flatnonzero(np.diff(unique) != 1) + 1
        try:
            with open(self.file, "rb", buffering=0) as f:
                for run_start, run in zip(np.r_[0, breaks], np.split(unique, breaks)):
                    if len(run):
                        self._read_run(f, int(run[0]), out[run_start:run_start + len(run)])
        except OSError as exc:
            raise ThyroidBenchError(os_error_line(exc, "reading the streaming cache")) from None
        if len(unique) == len(wanted) and np.array_equal(unique, wanted):
            return out
        return out[inverse.reshape(-1)]

    def _file_rows(self, positions: np.ndarray) -> np.ndarray:
        return positions if self.rows is None else self.rows[positions]

    def _read_run(self, f, first: int, buf: np.ndarray) -> None:
        """Fill ``buf`` (consecutive rows) from file row ``first`` on."""
        view = memoryview(buf).cast("B")
        f.seek(first * self.row_bytes)
        done = 0
        while done < len(view):
            got = f.readinto(view[done:])
            if not got:
                raise ThyroidBenchError(f"the streaming cache {self.file} is cut short: row "
                                        f"{first + done // self.row_bytes} is missing; something "
                                        "truncated it while the run used it: run again")
            done += got
