"""Parquet shards of dataset format v1: the Hugging Face features, writing and reading a split.

Shards are ``data/<split>-0000i-of-0000N.parquet`` with the format's columns in order; the
``label`` column is a ClassLabel with the task's class names, ``image`` an Image holding
the PNG bytes, so plain ``datasets.load_dataset(folder)`` opens them.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from thyroid_bench.data.columns import COLUMNS, VALUE_DTYPES
from thyroid_bench.errors import DatasetError
from thyroid_bench.tasks import DEFAULT_TASK, SPLITS, Task, get_task

__all__ = ["features", "write_shards", "read_split"]


def features(task: Task | str = DEFAULT_TASK):
    """The ``datasets.Features`` of format v1 for ``task`` (ClassLabel names in class order, Image)."""
    from datasets import ClassLabel, Features, Image as HFImage, Value

    task = get_task(task) if isinstance(task, str) else task
    feats = {}
    for col in COLUMNS:
        if col == "image":
            feats[col] = HFImage()
        elif col == "label":
            feats[col] = ClassLabel(names=list(task.class_names))
        else:
            feats[col] = Value(VALUE_DTYPES[col])
    return Features(feats)


# --------------------------------------------------------------------------- writing
def _arrow_table(table: pd.DataFrame, task: Task) -> pa.Table:
    feats = features(task)
    columns = {}
    for col in COLUMNS:
        if col == "image":
            columns[col] = [{"bytes": b, "path": None} for b in table[col]]
        elif col == "age":
            columns[col] = [None if pd.isna(v) else int(v) for v in table[col]]
        else:
            columns[col] = table[col].tolist()
    return pa.Table.from_pydict(columns, schema=feats.arrow_schema)


def write_shards(table: pd.DataFrame, split: str, data_dir: Path, rows_per_shard: int,
                  task: Task) -> list[str]:
    n_shards = max(1, -(-len(table) // rows_per_shard))
    names = []
    for k in range(n_shards):
        part = table.iloc[k * rows_per_shard:(k + 1) * rows_per_shard]
        name = f"{split}-{k:05d}-of-{n_shards:05d}.parquet"
        pq.write_table(_arrow_table(part, task), data_dir / name, compression="zstd")
        names.append(f"data/{name}")
    return names


def read_split(path: Path, split: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one split's shards as a DataFrame (``image`` as PNG bytes), in file order."""
    if split not in SPLITS:
        raise DatasetError(f"unknown split {split!r}; expected one of {SPLITS}")
    files = sorted((Path(path) / "data").glob(f"{split}-*.parquet"))
    if not files:
        raise DatasetError(f"{Path(path) / 'data'} has no {split}-*.parquet shard")
    frames = []
    for f in files:
        try:
            t = pq.read_table(f, columns=columns)
        except (pa.ArrowException, OSError) as exc:
            raise DatasetError(f"{f}: cannot read parquet shard ({exc}); the file is corrupt or "
                               "truncated: rebuild the dataset with `thyroid-bench prepare --force`") from None
        frame = t.to_pandas()
        if "image" in frame.columns:
            frame["image"] = [v["bytes"] if isinstance(v, dict) else v for v in frame["image"]]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
