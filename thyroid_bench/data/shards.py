"""Parquet shards of dataset format v1: the Hugging Face features, writing and reading a split.

Shards are ``data/<split>-0000i-of-0000N.parquet`` with the task's columns in order
(format v1's, then the task's extra columns); the ``label`` column is a ClassLabel with the
task's class names (-1, Hugging Face's "no label", for a present case of unknown grade),
``image`` and every extra image column an Image holding the PNG bytes, a float extra column a
``float64`` value (null when missing), so plain ``datasets.load_dataset(folder)`` opens them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thyroid_bench.data.columns import extra_float_columns, image_columns, value_dtype
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import DEFAULT_TASK, SPLITS, Task, get_task

__all__ = ["features", "shard_count", "shard_name", "write_shard", "shard_files",
           "shard_error", "open_shard", "image_bytes", "image_fields", "read_split"]


def features(task: Task | str = DEFAULT_TASK):
    """The ``datasets.Features`` of format v1 for ``task``: its columns in shard order, the label a
    ClassLabel (names in class order), every image column an Image, the rest ``Value``s."""
    from datasets import ClassLabel, Features, Image as HFImage, Value

    task = get_task(task) if isinstance(task, str) else task
    images = set(image_columns(task))
    feats = {}
    for col in task.columns:
        if col in images:
            feats[col] = HFImage()
        elif col == "label":
            feats[col] = ClassLabel(names=list(task.class_names))
        else:
            feats[col] = Value(value_dtype(task, col))
    return Features(feats)


# --------------------------------------------------------------------------- writing
def _arrow_table(table: pd.DataFrame, task: Task) -> pa.Table:
    feats = features(task)
    images, floats = set(image_columns(task)), set(extra_float_columns(task))
    columns = {}
    for col in task.columns:
        if col in images:
            columns[col] = [{"bytes": b, "path": None} for b in table[col]]
        elif col == "age":
            columns[col] = [None if pd.isna(v) else int(v) for v in table[col]]
        elif col in floats:
            columns[col] = [None if v is None or pd.isna(v) else float(v) for v in table[col]]
        else:
            columns[col] = table[col].tolist()
    return pa.Table.from_pydict(columns, schema=feats.arrow_schema)


def shard_count(rows: int, rows_per_shard: int) -> int:
    """How many shards a split of ``rows`` rows takes (one, empty, for no rows)."""
    return max(1, -(-rows // rows_per_shard))


def shard_name(split: str, k: int, n_shards: int) -> str:
    """The file name of shard ``k`` of ``n_shards`` of ``split``."""
    return f"{split}-{k:05d}-of-{n_shards:05d}.parquet"


def write_shard(table: pd.DataFrame, path: Path, task: Task) -> None:
    """Write one shard: ``table`` (the task's columns, images as PNG bytes) at ``path``."""
    pq.write_table(_arrow_table(table, task), path, compression="zstd")


def image_fields(schema: pa.Schema) -> list[str]:
    """The columns of a shard that hold Hugging Face Images (structs with ``bytes``)."""
    return [f.name for f in schema if pa.types.is_struct(f.type)
            and {f.type.field(i).name for i in range(f.type.num_fields)} >= {"bytes"}]


def shard_files(path: Path, split: str) -> list[Path]:
    """The shards of ``split`` in the dataset folder ``path``, in file order;
    :class:`DatasetError` for an unknown split or when it has none."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    files = sorted((Path(path) / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise DatasetError(f"{Path(path) / 'data'} has no {split}-*.parquet shard")
    return files


def shard_error(file: Path, exc: BaseException) -> DatasetError:
    """The error of a shard that cannot be read: it names the file and what to do."""
    return DatasetError(f"{file}: cannot read parquet shard ({exc}); the file is corrupt or "
                        "truncated: rebuild the dataset with `thyroid-bench prepare --force`")


def open_shard(file: Path) -> pq.ParquetFile:
    """A shard opened for reading (its footer read and checked); :func:`shard_error` if not."""
    try:
        return pq.ParquetFile(file)
    except (pa.ArrowException, OSError) as exc:
        raise shard_error(file, exc) from None


def image_bytes(column: pa.Array | pa.ChunkedArray) -> list[bytes | None]:
    """A Hugging Face Image column's PNG bytes (None where a value is null)."""
    if pa.types.is_struct(column.type):
        column = column.combine_chunks() if isinstance(column, pa.ChunkedArray) else column
        return column.field("bytes").to_pylist()
    return column.to_pylist()


def read_split(path: Path, split: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one split's shards as a DataFrame (every image column as PNG bytes), in file order.

    Image columns are found from the shard's schema (a struct of ``bytes`` and ``path``), so
    the reader needs no task; a float column's nulls read as NaN.
    """
    frames = []
    for f in shard_files(path, split):
        try:
            t = pq.read_table(f, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise shard_error(f, exc) from None
        frame = t.to_pandas()
        for col in image_fields(t.schema):
            frame[col] = [v["bytes"] if isinstance(v, dict) else v for v in frame[col]]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
