"""A preview grid of example images: rows are the task's classes, columns the two centres.

For a task with several image columns (``residual-tissue``: anterior and posterior) each
example shows every view side by side, labelled by its column. Each image is shown on its own linear scale from 0 to its maximum count, in
inverted grey (high counts dark), the way planar scintigrams are usually
printed. The figure says "synthetic" in its title when the images come from
the synthetic reference cohort.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from thyroid_bench.tasks import Task, TaskClass

__all__ = ["render_preview", "preview_size_px", "CELL_INCH", "DPI"]

#: Size of one image cell (inches) and the figure's resolution.
CELL_INCH = 1.6
DPI = 100
_LEFT_INCH = 1.5  # row labels
_TOP_INCH = 0.9  # title and column headers
_CENTERS = ("center1", "center2")


def preview_size_px(per_cell: int, num_classes: int, views: int = 1) -> tuple[int, int]:
    """(width, height) in pixels of the preview PNG for ``per_cell`` examples per class and
    centre, ``views`` images per example, and a task of ``num_classes`` classes (one row each)."""
    cols = len(_CENTERS) * per_cell * views
    return (round((_LEFT_INCH + cols * CELL_INCH) * DPI),
            round((_TOP_INCH + num_classes * CELL_INCH) * DPI))


@dataclass(frozen=True)
class _Source:
    """Where the preview's images come from: rows per split, a name for the title, whether
    they are synthetic, and the task whose classes are the grid's rows."""

    rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]]
    name: str
    synthetic: bool
    task: Task

    @property
    def views(self) -> tuple[str, ...]:
        """The image columns shown per example (the task's model input)."""
        return self.task.image_columns


class _Shards:
    """Reads a dataset's image columns a shard at a time, keeping every image column of the last
    shard read (a two-view example reads its shard once, not once per view): a preview shows a
    few dozen of a dataset's images, and only their shards are read. A shard that cannot be
    read is a :class:`~thyroid_bench.errors.DatasetError` naming it
    (:func:`~thyroid_bench.data.shards.shard_error`)."""

    def __init__(self, columns: Sequence[str]) -> None:
        self._columns = list(columns)
        self._shard: Path | None = None
        self._images: dict[str, list] = {}

    def image(self, shard: Path, row: int, column: str) -> np.ndarray:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from thyroid_bench.data.images import decode_image
        from thyroid_bench.data.shards import image_bytes, shard_error

        if self._shard != shard:
            try:
                table = pq.read_table(shard, columns=self._columns)
            except (pa.ArrowException, OSError) as exc:
                raise shard_error(shard, exc) from None
            self._images = {c: image_bytes(table.column(c)) for c in self._columns}
            self._shard = shard
        return decode_image(self._images[column][row])


@dataclass(frozen=True)
class _ShardImage:
    """One stored image, decoded when it is drawn (``np.asarray``)."""

    shards: _Shards
    shard: Path
    row: int
    column: str

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        image = self.shards.image(self.shard, self.row, self.column)
        return image if dtype is None else image.astype(dtype)


def _from_dataset(path: Path, task: Task | None) -> _Source:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from thyroid_bench.data.manifest import read_manifest
    from thyroid_bench.data.shards import shard_error, shard_files

    manifest = read_manifest(path)
    task = task or manifest.get_task()
    shards = _Shards(task.image_columns)
    out: dict[str, list[dict[str, Any]]] = {}
    for split in (s for s in manifest.splits if s not in manifest.withheld_splits):  # labels withheld
        out[split] = []
        for shard in shard_files(path, split):
            try:
                frame = pq.read_table(shard, columns=["label", "center"]).to_pandas()
            except (pa.ArrowException, OSError) as exc:
                raise shard_error(shard, exc) from None
            out[split] += [{**{c: _ShardImage(shards, shard, i, c) for c in task.image_columns},
                            "label": int(frame["label"][i]), "center": str(frame["center"][i])}
                           for i in range(len(frame))]
    return _Source(out, f"{manifest.name} {manifest.version}", manifest.synthetic, task)


def _from_generator(rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]] | None, per_cell: int,
                    synthetic: bool, task: Task | None) -> _Source:
    """In-memory generator rows, or ``per_cell`` cases per class generated with the official
    seed by the synthetic cohort of ``task`` (default: tsb-synthetic's)."""
    from thyroid_bench.data.synthetic import generator, residual

    module = next((m for m in (generator, residual) if task is not None and m.TASK.name == task.name),
                  generator)
    if rows_by_split is None:
        counts = (per_cell,) * module.TASK.num_classes
        rows_by_split = {s: module.generate_split(s, counts=counts, progress=False)
                         for s in module.TASK.eval_splits}
    return _Source(rows_by_split, f"{module.NAME} {module.VERSION}", synthetic, task or module.TASK)


def _pick(rows: Sequence[Mapping[str, Any]], per_cell: int, views: tuple[str, ...],
          rng: np.random.Generator) -> dict[tuple[int, str], list[list[np.ndarray]]]:
    """``per_cell`` examples per (class, centre), each a list of its views."""
    cells: dict[tuple[int, str], list[int]] = {}
    for i, r in enumerate(rows):
        cells.setdefault((int(r["label"]), str(r["center"])), []).append(i)
    picked = {}
    for key, idx in cells.items():
        take = rng.permutation(len(idx))[:per_cell]
        picked[key] = [[np.asarray(rows[idx[t]][v]) for v in views] for t in sorted(take)]
    return picked


def render_preview(rows_by_split: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
                   out: Path | str | None = None, *, dataset_path: Path | None = None,
                   per_cell: int = 3, seed: int = 0, title: str | None = None,
                   synthetic: bool = True, task: Task | None = None) -> Path:
    """Write a PNG grid of ``per_cell`` example images per class (rows) and centre (columns).

    The images come from ``rows_by_split`` (rows as :func:`generate_split`
    returns them), else from the dataset folder ``dataset_path``, else from a
    small cohort generated on the spot with the official seed. ``seed`` picks
    the examples. The title says "SYNTHETIC" when ``synthetic`` (in-memory rows)
    or the dataset's manifest says so. Rows are the classes of ``task`` (default: the
    dataset's task, else the synthetic generator's). Returns ``out``.
    """
    if out is None:
        raise ValueError("render_preview needs `out`, the PNG file to write")
    if per_cell < 1:
        raise ValueError(f"per_cell must be at least 1, got {per_cell}")
    if rows_by_split is None and dataset_path is not None:
        source = _from_dataset(Path(dataset_path), task)
    else:
        source = _from_generator(rows_by_split, per_cell, synthetic, task)
    rows = [r for split_rows in source.rows_by_split.values() for r in split_rows]
    picked = _pick(rows, per_cell, source.views, np.random.default_rng(seed))
    if title is None:
        title = (f"{source.name}: SYNTHETIC phantoms, not patient data" if source.synthetic
                 else source.name)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _draw(out, source, rows, picked, per_cell, title)
    return out


@dataclass(frozen=True)
class _Grid:
    """The figure's geometry in figure fractions."""

    per_cell: int
    views: int
    w_cell: float
    h_cell: float
    left: float
    top: float


def _draw(out: Path, source: _Source, rows: Sequence[Mapping[str, Any]],
          picked: dict[tuple[int, str], list[list[np.ndarray]]], per_cell: int, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    nv = len(source.views)
    width, height = preview_size_px(per_cell, source.task.num_classes, nv)
    fig = plt.figure(figsize=(width / DPI, height / DPI), dpi=DPI)
    grid = _Grid(per_cell, nv, CELL_INCH * DPI / width, CELL_INCH * DPI / height,
                 _LEFT_INCH * DPI / width, 1.0 - _TOP_INCH * DPI / height)
    fig.text(0.5, 1.0 - 0.25 * _TOP_INCH * DPI / height, title, ha="center", va="center",
             fontsize=11, weight="bold", color="darkred" if source.synthetic else "black")
    for c, center in enumerate(_CENTERS):
        example = next((r for r in rows if r["center"] == center), None)
        shape = "" if example is None else f" ({np.asarray(example['image']).shape[1]}x" \
                                              f"{np.asarray(example['image']).shape[0]})"
        views = "" if nv == 1 else "\n" + " | ".join(source.views)
        fig.text(grid.left + (c + 0.5) * per_cell * nv * grid.w_cell,
                 grid.top + 0.3 * (1.0 - grid.top), f"{center}{shape}{views}", ha="center",
                 va="center", fontsize=9 if nv == 1 else 7)
    for cls in source.task.classes:
        _class_row(fig, grid, source.task, cls, picked)
    fig.savefig(out, dpi=DPI, format="png")
    plt.close(fig)


def _class_row(fig: Any, grid: _Grid, task: Task, cls: TaskClass,
               picked: dict[tuple[int, str], list[list[np.ndarray]]]) -> None:
    """The class's row: its label, then its examples per centre (every view of each) or "none"."""
    k = cls.index
    y = grid.top - (k + 1) * grid.h_cell
    code = f"{task.class_code(k)}\n" if cls.code else ""
    fig.text(0.5 * grid.left, y + 0.5 * grid.h_cell, f"{code}{cls.name.replace('_', ' ')}",
             ha="center", va="center", fontsize=8)
    for c, center in enumerate(_CENTERS):
        examples = picked.get((k, center), [])
        for m in range(grid.per_cell * grid.views):
            col = (c * grid.per_cell) * grid.views + m
            ax = fig.add_axes((grid.left + col * grid.w_cell + 0.03 * grid.w_cell,
                               y + 0.03 * grid.h_cell, 0.94 * grid.w_cell, 0.94 * grid.h_cell))
            ax.set_xticks([])
            ax.set_yticks([])
            example, view = divmod(m, grid.views)
            if example < len(examples):
                img = examples[example][view]
                ax.imshow(img, cmap="gray_r", vmin=0, vmax=max(int(img.max()), 1),
                          interpolation="nearest")
            else:
                ax.text(0.5, 0.5, "none", ha="center", va="center", fontsize=7,
                        transform=ax.transAxes, color="grey")
