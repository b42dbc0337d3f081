"""Dataset format v1: the writer, the dataset resolver, the loader and `info`.

A dataset version is a folder ``<home>/<name>/<version>/`` holding
``manifest.json``, a Hugging Face dataset card ``README.md``, parquet shards
``data/<split>-0000i-of-0000N.parquet`` and, for DICOM sources, ``rejected.csv``.
Plain ``datasets.load_dataset(folder)`` opens it; :func:`load_dataset` opens it
and checks its content fingerprints first.

Images are lossless 16-bit grayscale PNGs of the raw counts
(:mod:`thyroid_bench.data.images`). Fingerprints (:mod:`thyroid_bench.data.fingerprint`)
hash the decoded content, never file bytes. :mod:`thyroid_bench.data.verify` checks a
folder; :mod:`thyroid_bench.data.manifest` reads and writes its manifest;
:mod:`thyroid_bench.data.card` writes its dataset card. The label column's classes come
from the dataset's task (:mod:`thyroid_bench.tasks`).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from thyroid_bench.atomic import make_temp_dir
from thyroid_bench.data import private
from thyroid_bench.data.card import render_card
from thyroid_bench.data.columns import (
    COLUMNS,
    extra_float_columns,
    extra_float_ok,
    extra_float_rule,
    extra_image_columns,
    image_columns,
    meta_columns,
    optional_columns_in,
    with_optional,
)
from thyroid_bench.data.fingerprint import SplitHasher, dataset_fingerprint, in_case_order
from thyroid_bench.data.images import encode_image
from thyroid_bench.data.isolation import dataset_near_duplicates
from thyroid_bench.data.lock import version_lock
from thyroid_bench.data.manifest import (
    DATASET_NAME_PATTERN,
    FORMAT_VERSION,
    Manifest,
    SplitMeta,
    class_counts,
    read_manifest,
    write_manifest,
)
from thyroid_bench.data.shards import features, read_split, shard_count, shard_name
from thyroid_bench.data.shards import write_shard as _write_shard
from thyroid_bench.data.sizes import absent_class_warnings, check_split_sizes, size_problems
from thyroid_bench.data.split_rows import SplitRows, as_split_rows
from thyroid_bench.data.verify import check_no_leakage, verify_or_raise
from thyroid_bench.errors import DatasetError, os_error_line
from thyroid_bench.tasks import DEFAULT_TASK, NO_FOLD, SPLITS, TRAIN_SPLIT, UNKNOWN_GRADE, Task, get_task
from thyroid_bench.version import __version__

__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "COLUMNS",
    "DEFAULT_DATASET",
    "ROWS_PER_SHARD",
    "default_home",
    "features",
    "check_name_version",
    "write_dataset",
    "resolve_dataset",
    "read_manifest",
    "read_split",
    "load_dataset",
    "dataset_info",
    "known_datasets",
]

#: The default task's default dataset (``tsb-synthetic``), what commands use without one.
DEFAULT_DATASET: str = get_task(DEFAULT_TASK).datasets[0]
ROWS_PER_SHARD = 1000
#: Rows whose images are drawn from a source, checked and encoded at a time (their decoded
#: images are what the writer holds beyond one shard's PNGs).
_ENCODE_BATCH = 64
_SEX_VALUES = ("F", "M", "unknown")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_NAME = re.compile(DATASET_NAME_PATTERN)
_WRITE_ADVICE = {
    errno.ENOSPC: "the disk is full; free space there or pass another --home (the previous "
                  "version, if any, is left as it was)",
    errno.EACCES: "your account may not write there; make the dataset home writable or pass "
                  "another --home",
    errno.EROFS: "that file system is read-only; pass another --home",
}


def default_home() -> Path:
    """``$THYROID_BENCH_HOME`` if set, else ``~/.cache/thyroid-bench``."""
    env = os.environ.get("THYROID_BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thyroid-bench"


def check_name_version(name: str, version: str) -> None:
    """Raise :class:`DatasetError` unless ``name`` is a valid dataset name and ``version`` semver."""
    if not _NAME.match(name):
        raise DatasetError(f"dataset name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    if not _SEMVER.match(version):
        raise DatasetError(f"dataset version {version!r} is not semver MAJOR.MINOR.PATCH, e.g. 1.0.0")


def _check_row(split: str, i: int, row: Mapping[str, Any], task: Task) -> None:
    where = f"split {split!r}, row {i} (case_id {row.get('case_id')!r})"
    missing = [c for c in task.columns if c not in row]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {missing} (task {task.name} has the "
                           f"columns {list(task.columns)})")
    label = int(row["label"])
    if label == UNKNOWN_GRADE and task.detection is None:
        raise DatasetError(f"{where}: label {UNKNOWN_GRADE} ('present, grade unknown') needs a task "
                           f"with a detection reading; task {task.name} has none")
    if not (0 <= label < task.num_classes or label == UNKNOWN_GRADE):
        raise DatasetError(f"{where}: label {row['label']!r} is not a class index "
                           f"0-{task.num_classes - 1} of task {task.name}")
    fold = int(row["fold"])
    if (split == TRAIN_SPLIT and not 0 <= fold < task.folds) or (split != TRAIN_SPLIT and fold != NO_FOLD):
        raise DatasetError(f"{where}: fold {fold} invalid (train rows: 0-{task.folds - 1}; "
                           f"other splits: {NO_FOLD})")
    if row["sex"] not in _SEX_VALUES:
        raise DatasetError(f"{where}: sex {row['sex']!r} not one of {_SEX_VALUES}")
    _check_extras(where, row, task)


def _check_extras(where: str, row: Mapping[str, Any], task: Task) -> None:
    """An extra image is a 2-D integer array of ``image``'s shape; an extra float is finite and
    in its column's range (:func:`~thyroid_bench.data.columns.extra_float_ok`), or None."""
    shape = np.shape(row["image"])
    for col in extra_image_columns(task):
        img = np.asarray(row[col])
        if img.ndim != 2 or img.shape != shape or not np.issubdtype(img.dtype, np.integer):
            raise DatasetError(f"{where}: {col} must be a 2-D uint16 array of counts shaped like "
                               f"image {shape}, got {img.dtype} {img.shape}")
    for col in extra_float_columns(task):
        value = row[col]
        if value is None:
            continue
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise DatasetError(f"{where}: {col} {value!r} is not a number (or None)") from None
        if not extra_float_ok(col, number):
            raise DatasetError(f"{where}: {col} {value!r} must be {extra_float_rule(col)} (or None "
                               "when not measured)")


def _encode_batch(rows: Sequence[Mapping[str, Any]], pool: ThreadPoolExecutor, task: Task,
                  hasher: SplitHasher, withheld: bool = False) -> dict[str, list[Any]]:
    """Encode a batch of checked rows: every column of the task (image columns as PNG bytes,
    ``total_counts`` and ``matrix`` from the image); each row goes into ``hasher`` with its
    decoded images. A ``withheld`` split's labels are left out
    (:func:`~thyroid_bench.data.private.public_rows`)."""
    rows = private.public_rows(rows, task) if withheld else rows
    columns = {c: [r[c] for r in rows] for c in meta_columns(task)}
    for col in extra_float_columns(task):
        columns[col] = [None if v is None else float(v) for v in columns[col]]
    images = {col: [np.asarray(r[col]) for r in rows] for col in image_columns(task)}
    columns["total_counts"] = [int(img.sum(dtype=np.int64)) for img in images["image"]]
    columns["matrix"] = [int(img.shape[0]) for img in images["image"]]
    pngs = {col: list(pool.map(encode_image, arrays)) for col, arrays in images.items()}
    for i in range(len(rows)):
        hasher.add({c: values[i] for c, values in columns.items()},
                   {col: arrays[i] for col, arrays in images.items()},
                   {col: encoded[i] for col, encoded in pngs.items()})
    return columns | pngs


def write_dataset(
    name: str,
    version: str,
    splits: Mapping[str, SplitRows | Iterable[Mapping[str, Any]]],
    *,
    task: Task | str = DEFAULT_TASK,
    home: Path | None = None,
    root: Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    licence: str = "other",
    card: str | Callable[[Manifest], str] | None = None,
    synthetic: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
    force: bool = False,
    rows_per_shard: int = ROWS_PER_SHARD,
    private_labels: Sequence[str] = (),
    labels_file: Path | None = None,
) -> Path:
    """Write a dataset version of ``task`` atomically and return its folder.

    The version is built in a hidden temporary folder beside its final place
    and renamed into place only once complete, so an interrupted write never
    leaves a folder that looks finished; a rerun cleans up and succeeds.
    ``root`` is the exact target folder; otherwise ``<home>/<name>/<version>``.
    ``card`` is the dataset card's markdown body, or a function of the finished
    manifest returning it; YAML front matter is added from the manifest. Rows may carry an
    optional column (:data:`~thyroid_bench.data.columns.OPTIONAL_COLUMNS`, e.g. ``study_id``)
    when every row has it; the manifest then lists it. ``private_labels`` (evaluation splits)
    withholds those splits' labels (:mod:`thyroid_bench.data.private`): their rows are published
    with label -1 and no regression value, and their labels go to the organisers' labels file
    ``labels_file`` (default ``<home>/private/<name>@<version>/labels.csv``; required with
    ``root``), outside the folder.

    Each split is a list of rows (dicts with every column, images as 2-D uint16 arrays) or a
    :class:`~thyroid_bench.data.split_rows.SplitRows` (the rows' other columns, and their
    images as an iterable drawn from a batch at a time). The writer holds one shard's PNGs and
    a batch of images, never a split's: a source that yields its images lazily (the synthetic
    generators, a DICOM archive) is written in memory that does not grow with it.
    """
    task = get_task(task) if isinstance(task, str) else task
    check_name_version(name, version)
    if set(splits) != set(SPLITS):
        raise DatasetError(f"splits must be exactly {SPLITS}, got {sorted(splits)}")
    sources = {split: as_split_rows(splits[split], image_columns(task)) for split in SPLITS}
    splits = {split: sources[split].meta for split in SPLITS}  # compact: no images
    check_split_sizes(splits, task, what=f"dataset {name} {version}")  # no empty split or fold
    optional = optional_columns_in(splits)  # e.g. study_id: every row has it, or none
    target = Path(root) if root is not None else (home or default_home()) / name / version
    if target.exists() and not force:
        raise DatasetError(f"{target} already exists; pass force=True (--force) to rebuild it")
    hidden = private.private_splits(private_labels, task) if private_labels else ()
    if hidden:
        if labels_file is None and root is not None:
            raise DatasetError(f"withheld labels of {', '.join(hidden)} need a labels_file when the "
                               f"dataset's folder ({root}) is given rather than a home")
        labels_file = private.check_labels_path(labels_file or private.default_labels_path(
            target.parent.parent, name, version), target)
    with _writing(target, force) as tmp:
        split_meta = _write_splits(sources, with_optional(task, optional), tmp, rows_per_shard,
                                   where=str(target), withheld=hidden)
        withheld = private.withheld_labels(splits, hidden, task) if hidden else None
        manifest = Manifest(
            name=name, version=version, task=task.name, label_schema=task.label_schema(),
            synthetic=bool(synthetic), licence=licence,
            fingerprint=dataset_fingerprint({s: m.fingerprint for s, m in split_meta.items()}),
            splits=split_meta, provenance=private.redact_provenance(provenance or {}, splits, hidden),
            created_by=f"thyroid-bench {__version__}",
            created_utc=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            optional_columns=list(optional),
            private_labels=withheld.record() if withheld else None,
        )
        for rel, content in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(content)
        body = card(manifest) if callable(card) else (card or "")
        (tmp / "README.md").write_text(render_card(manifest, body), encoding="utf-8")
        write_manifest(tmp, manifest)  # last: a folder without it is never a dataset
        if withheld:  # before the folder moves in: no published version without its labels file
            private.write_labels_file(labels_file, withheld.content)
    return target


@contextmanager
def _writing(target: Path, force: bool) -> Iterator[Path]:
    """A new temporary folder beside ``target`` for the block, renamed to ``target`` when the
    block completes and removed when it fails; all under the version's writer lock
    (:func:`~thyroid_bench.data.lock.version_lock`), which also makes it safe to remove the
    temporary folders of earlier runs (their writers are dead). An operating-system error
    becomes one line naming the path and what to do."""
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with version_lock(target):
            if target.exists() and not force:  # written by the run this one waited for
                raise DatasetError(f"{target} already exists; pass force=True (--force) to "
                                   "rebuild it")
            for stale in target.parent.glob(f".tmp-{target.name}-*"):
                shutil.rmtree(stale, ignore_errors=True)
            tmp = make_temp_dir(f".tmp-{target.name}-", target.parent)
            try:
                yield tmp
                _replace_dir(tmp, target)
            except BaseException:
                shutil.rmtree(tmp, ignore_errors=True)
                raise
    except OSError as exc:
        advice = _WRITE_ADVICE.get(exc.errno or 0)
        raise DatasetError(os_error_line(exc, f"could not write dataset {target}", advice)) from None


def _write_splits(sources: Mapping[str, SplitRows], task: Task, folder: Path, rows_per_shard: int,
                  where: str, withheld: Sequence[str] = ()) -> dict[str, SplitMeta]:
    """Check the rows (all of them first when they are in memory), refuse leakage, then write
    each split shard by shard; return each split's summary (a withheld split's class counts
    are withheld too: empty)."""
    (folder / "data").mkdir()
    for split in SPLITS:
        if sources[split].in_memory:
            for i, row in enumerate(sources[split].rows()):
                _check_row(split, i, row, task)
    ids = [c for c in ("case_id", "patient_id", "study_id") if c in task.columns]
    # Leakage is refused before any shard is written.
    check_no_leakage({split: pd.DataFrame({c: [m.get(c) for m in sources[split].meta] for c in ids})
                      for split in SPLITS}, where=where)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return {split: _write_split(split, sources[split], task, folder, rows_per_shard, pool,
                                    split in withheld) for split in SPLITS}


def _write_split(split: str, source: SplitRows, task: Task, folder: Path, rows_per_shard: int,
                 pool: ThreadPoolExecutor, withheld: bool) -> SplitMeta:
    """Write one split: rows drawn from ``source`` a batch at a time (checked here unless they
    were before), encoded, hashed in case-id order (:class:`~thyroid_bench.data.fingerprint.
    SplitHasher`, spilling to ``folder`` when the rows come in another order) and written a
    shard at a time, so memory holds one shard's PNGs and one batch's images."""
    n_shards = shard_count(len(source), rows_per_shard)
    files: list[str] = []
    buffer: dict[str, list[Any]] = {c: [] for c in task.columns}
    with SplitHasher(task, ordered=in_case_order(m.get("case_id") for m in source.meta),
                     spill_dir=folder, rows=len(source),
                     advice="use --home on a disk with room (about the dataset's size)") as hasher:
        for start, rows in source.batches(_ENCODE_BATCH, split):
            if not source.in_memory:
                for i, row in enumerate(rows):
                    _check_row(split, start + i, row, task)
            for col, values in _encode_batch(rows, pool, task, hasher, withheld).items():
                buffer[col] += values
            while len(buffer["case_id"]) >= rows_per_shard or (
                    start + len(rows) == len(source) and (buffer["case_id"] or not files)):
                files.append(_flush_shard(buffer, split, len(files), n_shards, folder, rows_per_shard,
                                          task))
        fingerprint = hasher.hexdigest()
    meta = _split_summary(pd.DataFrame({c: [m[c] for m in source.meta] for c in ("label", "center")}),
                          files, fingerprint, task)
    if withheld:
        meta.class_counts = {}
    return meta


def _flush_shard(buffer: dict[str, list[Any]], split: str, k: int, n_shards: int, folder: Path,
                 rows_per_shard: int, task: Task) -> str:
    """Write the first ``rows_per_shard`` rows of ``buffer`` (column -> values) as shard ``k``
    and drop them from it; return the shard's path in the version folder."""
    name = shard_name(split, k, n_shards)
    table = pd.DataFrame({c: values[:rows_per_shard] for c, values in buffer.items()})
    _write_shard(table, folder / "data" / name, task)
    for values in buffer.values():
        del values[:rows_per_shard]
    return f"data/{name}"


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        old = target.parent / f".old-{target.name}-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _split_summary(table: pd.DataFrame, files: list[str], fingerprint: str, task: Task) -> SplitMeta:
    return SplitMeta(
        rows=int(len(table)),
        class_counts=class_counts(table["label"], task),
        center_counts={str(k): int(v) for k, v in sorted(table["center"].value_counts().items())},
        files=files,
        fingerprint=fingerprint,
    )


# --------------------------------------------------------------------------- reading
def _is_dataset_dir(path: Path) -> bool:
    return (path / "manifest.json").is_file()


def _semver_key(v: str) -> tuple[int, ...]:
    return tuple(int(x) for x in v.split("."))


def resolve_dataset(name_or_path: str | os.PathLike | None = None, home: Path | None = None) -> Path:
    """Find a dataset version folder: a path, ``name@version``, or a name (newest version).

    ``None`` means the default dataset ``tsb-synthetic``.
    """
    spec = DEFAULT_DATASET if name_or_path is None else str(name_or_path)
    path = Path(spec).expanduser()
    if _is_dataset_dir(path):
        return path
    if path.is_dir() and not any(ch in spec for ch in "@"):
        if any(_is_dataset_dir(p) for p in path.iterdir() if p.is_dir()):
            return _newest(path, spec)
        if os.sep in spec or spec.startswith("."):
            raise DatasetError(f"{path} is not a dataset version folder (no manifest.json); "
                               "point at <name>/<version>/ or run `thyroid-bench prepare`")
    base = home or default_home()
    name, _, version = spec.partition("@")
    if version:
        candidate = base / name / version
        if _is_dataset_dir(candidate):
            return candidate
        raise DatasetError(f"dataset {name} version {version} not found at {candidate}; "
                           f"available: {', '.join(_available(base / name)) or 'none'}")
    if (base / name).is_dir():
        return _newest(base / name, spec)
    hint = ("run `thyroid-bench prepare` to build it" if name == DEFAULT_DATASET
            else "build it with `thyroid-bench prepare` or pass the dataset folder")
    raise DatasetError(f"dataset {spec!r} not found under {base}; {hint}")


def known_datasets(home: Path | None = None) -> dict[str, list[str]]:
    """Task name -> datasets known for it: each task's own, the pinned official versions, and
    every complete version in the dataset home (as ``<folder>@<version>``, what commands take).

    A prepared version whose task is not registered is listed under that task's name too.
    """
    from thyroid_bench.data.official import OFFICIAL_FINGERPRINTS
    from thyroid_bench.tasks import list_tasks

    known: dict[str, list[str]] = {
        t.name: [f"{d} (default)" if i == 0 else d for i, d in enumerate(t.datasets)] for t in list_tasks()}
    for name, version in OFFICIAL_FINGERPRINTS:
        for task in list_tasks():
            if name in task.datasets:
                known[task.name].append(f"{name}@{version} (official)")
    base = home or default_home()
    for folder in sorted(p.parent for p in base.glob("*/*/manifest.json")) if base.is_dir() else []:
        try:
            task = read_manifest(folder).task
        except DatasetError:
            task = "?"  # unreadable: `thyroid-bench verify` says why
        known.setdefault(task, []).append(f"{folder.parent.name}@{folder.name} (prepared)")
    return known


def _available(folder: Path) -> list[str]:
    if not folder.is_dir():
        return []
    versions = [p.name for p in folder.iterdir() if _SEMVER.match(p.name) and _is_dataset_dir(p)]
    return sorted(versions, key=_semver_key)


def _newest(folder: Path, spec: str) -> Path:
    versions = _available(folder)
    if not versions:
        raise DatasetError(f"no complete version of {spec!r} in {folder} (an interrupted prepare "
                           "leaves none); run `thyroid-bench prepare` again")
    return folder / versions[-1]


def load_dataset(name_or_path: str | os.PathLike | None = None, *, home: Path | None = None,
                 verify: bool = True):
    """Open a dataset version with Hugging Face ``datasets``; verify fingerprints first."""
    import datasets

    path = resolve_dataset(name_or_path, home=home)
    if verify:
        verify_or_raise(path, consequence="it was not loaded")
    return datasets.load_dataset(str(path))


def dataset_info(path: Path) -> str:
    """Counts per split x class x centre, as a text table (labels -1 under the task's present
    label, e.g. ``present``, when there are any; a withheld split's rows under ``withheld``),
    then warnings: an empty split or train fold (:func:`~thyroid_bench.data.sizes.size_problems`),
    an evaluation split without a case of some class, near-duplicate images across splits
    (:mod:`thyroid_bench.data.isolation`)."""
    manifest = read_manifest(path)
    task = manifest.get_task()
    frames = []
    for split in SPLITS:
        t = read_split(path, split, columns=["label", "center", "fold"])
        t["split"] = split
        frames.append(t)
    df = pd.concat(frames, ignore_index=True)
    warnings = _info_warnings(df, manifest, task)
    withheld = df["split"].isin(manifest.withheld_splits)  # their labels: a "withheld" column
    names = list(task.class_names)
    if (df.loc[~withheld, "label"] == UNKNOWN_GRADE).any():  # names[-1] is then the present label
        names.append(task.detection.present_label if task.detection else "unknown")
    shown = [*names, *(["withheld"] if withheld.any() else [])]
    df["class"] = pd.Categorical(["withheld" if w else names[i] for i, w in zip(df["label"], withheld)],
                                 categories=shown)
    df["split"] = pd.Categorical(df["split"], categories=SPLITS)
    table = pd.crosstab([df["split"], df["center"]], df["class"], margins=True, margins_name="total",
                        dropna=False)
    table = table[(table["total"] > 0)]
    head = (f"{manifest.name} {manifest.version}"
            f"{' (synthetic phantom study)' if manifest.synthetic else ''}\n"
            f"task {manifest.task}\nfingerprint {manifest.fingerprint}\n")
    warnings += [w for w in [dataset_near_duplicates(path)] if w]
    return head + table.to_string() + "".join(f"\nWARNING {w}" for w in warnings)


def _info_warnings(df: pd.DataFrame, manifest: Manifest, task: Task) -> list[str]:
    """An empty split or train fold, and evaluation splits without a case of some class."""
    train = df.loc[df["split"] == TRAIN_SPLIT, "fold"]
    rows = {s: int((df["split"] == s).sum()) for s in SPLITS}
    return [*size_problems(rows, {int(k): int(v) for k, v in train.value_counts().items()}, task),
            *absent_class_warnings({s: m.class_counts for s, m in manifest.splits.items()}, task,
                                   skip=manifest.withheld_splits)]
