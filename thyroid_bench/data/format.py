"""Dataset format v1: writer, reader, fingerprints and verifier.

A dataset version is a folder ``<home>/<name>/<version>/`` holding
``manifest.json``, a Hugging Face dataset card ``README.md``, parquet shards
``data/<split>-0000i-of-0000N.parquet`` and, for DICOM sources, ``rejected.csv``.
Plain ``datasets.load_dataset(folder)`` opens it; :func:`load_dataset` opens it
and checks its content fingerprints first.

Images are lossless 16-bit grayscale PNGs of the raw counts. Fingerprints hash
the decoded content (pixels, labels, ids, metadata, in case-id order), never
file bytes, so they survive re-compression and other pyarrow versions.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image

from thyroid_bench.errors import DatasetError, VerificationError
from thyroid_bench.schema import CLASS_NAMES, NUM_CLASSES, TASK, label_schema_dict

__all__ = [
    "FORMAT_VERSION",
    "SPLITS",
    "COLUMNS",
    "DEFAULT_DATASET",
    "ROWS_PER_SHARD",
    "default_home",
    "features",
    "encode_image",
    "decode_image",
    "check_name_version",
    "write_dataset",
    "resolve_dataset",
    "read_manifest",
    "read_split",
    "load_dataset",
    "split_fingerprint",
    "dataset_fingerprint",
    "VerifyReport",
    "verify_dataset",
    "dataset_info",
    "render_card",
]

FORMAT_VERSION = 1
SPLITS: tuple[str, ...] = ("train", "internal", "external")
DEFAULT_DATASET = "tsb-synthetic"
ROWS_PER_SHARD = 1000
# Column order of every shard, with the Hugging Face feature of each column.
COLUMNS: tuple[str, ...] = (
    "case_id", "patient_id", "image", "label", "center", "fold", "matrix",
    "pixel_spacing_mm", "total_counts", "acquisition_s", "sex", "age",
)
_META_COLUMNS = tuple(c for c in COLUMNS if c != "image")
_SEX_VALUES = ("F", "M", "unknown")
_SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")


def default_home() -> Path:
    """``$THYROID_BENCH_HOME`` if set, else ``~/.cache/thyroid-bench``."""
    env = os.environ.get("THYROID_BENCH_HOME")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "thyroid-bench"


def features():
    """The ``datasets.Features`` of format v1 (ClassLabel names in schema order, Image)."""
    from datasets import ClassLabel, Features, Image as HFImage, Value

    return Features({
        "case_id": Value("string"),
        "patient_id": Value("string"),
        "image": HFImage(),
        "label": ClassLabel(names=list(CLASS_NAMES)),
        "center": Value("string"),
        "fold": Value("int8"),
        "matrix": Value("int32"),
        "pixel_spacing_mm": Value("float64"),
        "total_counts": Value("int64"),
        "acquisition_s": Value("float64"),
        "sex": Value("string"),
        "age": Value("int32"),
    })


# --------------------------------------------------------------------------- images
def encode_image(counts: np.ndarray) -> bytes:
    """Encode a 2-D array of raw counts as a lossless 16-bit grayscale PNG."""
    arr = np.asarray(counts)
    if arr.ndim != 2:
        raise ValueError(f"an image must be 2-D, got shape {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() > 65535):
        raise ValueError(f"counts must lie in 0-65535 for a 16-bit PNG, got {arr.min()}-{arr.max()}")
    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(arr, dtype=np.uint16)).save(buf, format="PNG",
                                                                      compress_level=1)
    return buf.getvalue()


def decode_image(data: bytes) -> np.ndarray:
    """Decode a PNG written by :func:`encode_image` back to its uint16 counts."""
    with Image.open(io.BytesIO(data)) as im:
        if im.mode not in ("I;16", "I;16B", "I;16L", "I", "L"):
            raise ValueError(f"expected a 16-bit grayscale PNG, got mode {im.mode}")
        return np.asarray(im).astype(np.uint16, copy=False)


# --------------------------------------------------------------------------- fingerprints
def _canonical_meta(row: Mapping[str, Any]) -> bytes:
    meta = {}
    for col in _META_COLUMNS:
        value = row[col]
        if value is None or (isinstance(value, float) and np.isnan(value)):
            meta[col] = None
        elif col in ("pixel_spacing_mm", "acquisition_s"):
            meta[col] = repr(float(value))
        elif col in ("label", "fold", "matrix", "total_counts", "age"):
            meta[col] = int(value)
        else:
            meta[col] = str(value)
    return json.dumps(meta, sort_keys=True, separators=(",", ":")).encode()


def split_fingerprint(table: pd.DataFrame, images: Iterable[np.ndarray] | None = None) -> str:
    """SHA-256 over a split's decoded content, rows in case-id order.

    ``table`` has the format's columns, ``image`` as PNG bytes; ``images``
    (already decoded, in the table's row order) saves decoding twice.
    """
    decoded = list(images) if images is not None else [decode_image(b) for b in table["image"]]
    order = np.argsort(table["case_id"].to_numpy(dtype=str), kind="stable")
    records = table.to_dict("records")
    h = hashlib.sha256(b"thyroid-bench split fingerprint v1\n")
    for i in order:
        img = np.ascontiguousarray(decoded[i], dtype="<u2")
        h.update(_canonical_meta(records[i]))
        h.update(f"|{img.shape[0]}x{img.shape[1]}|".encode())
        h.update(img.tobytes())
    return h.hexdigest()


def dataset_fingerprint(split_fingerprints: Mapping[str, str]) -> str:
    """SHA-256 over the split fingerprints, in split order."""
    h = hashlib.sha256(b"thyroid-bench dataset fingerprint v1\n")
    for split in SPLITS:
        h.update(f"{split}:{split_fingerprints[split]}\n".encode())
    return h.hexdigest()


# --------------------------------------------------------------------------- writing
def check_name_version(name: str, version: str) -> None:
    """Raise :class:`DatasetError` unless ``name`` is a valid dataset name and ``version`` semver."""
    if not _NAME.match(name):
        raise DatasetError(f"dataset name {name!r} must be lower-case letters, digits, '.', '_' or '-'")
    if not _SEMVER.match(version):
        raise DatasetError(f"dataset version {version!r} is not semver MAJOR.MINOR.PATCH, e.g. 1.0.0")


def _check_row(split: str, i: int, row: Mapping[str, Any]) -> None:
    where = f"split {split!r}, row {i} (case_id {row.get('case_id')!r})"
    missing = [c for c in COLUMNS if c not in row]
    if missing:
        raise DatasetError(f"{where}: missing field(s) {missing}")
    if not 0 <= int(row["label"]) < NUM_CLASSES:
        raise DatasetError(f"{where}: label {row['label']!r} is not a class index 0-{NUM_CLASSES - 1}")
    fold = int(row["fold"])
    if (split == "train" and not 0 <= fold <= 4) or (split != "train" and fold != -1):
        raise DatasetError(f"{where}: fold {fold} invalid (train rows: 0-4; other splits: -1)")
    if row["sex"] not in _SEX_VALUES:
        raise DatasetError(f"{where}: sex {row['sex']!r} not one of {_SEX_VALUES}")


def _encode_split(split: str, rows: Iterable[Mapping[str, Any]], pool: ThreadPoolExecutor
                  ) -> tuple[pd.DataFrame, list[np.ndarray]]:
    rows = list(rows)
    for i, row in enumerate(rows):
        _check_row(split, i, row)
    images = [np.asarray(r["image"]) for r in rows]
    pngs = list(pool.map(encode_image, images))
    table = pd.DataFrame({c: [r[c] for r in rows] for c in _META_COLUMNS})
    table.insert(COLUMNS.index("image"), "image", pngs)
    table["total_counts"] = [int(img.sum(dtype=np.int64)) for img in images]
    table["matrix"] = [int(img.shape[0]) for img in images]
    return table, images


def _arrow_table(table: pd.DataFrame) -> pa.Table:
    feats = features()
    columns = {}
    for col in COLUMNS:
        if col == "image":
            columns[col] = [{"bytes": b, "path": None} for b in table[col]]
        elif col == "age":
            columns[col] = [None if pd.isna(v) else int(v) for v in table[col]]
        else:
            columns[col] = table[col].tolist()
    return pa.Table.from_pydict(columns, schema=feats.arrow_schema)


def _write_shards(table: pd.DataFrame, split: str, data_dir: Path, rows_per_shard: int) -> list[str]:
    n_shards = max(1, -(-len(table) // rows_per_shard))
    names = []
    for k in range(n_shards):
        part = table.iloc[k * rows_per_shard:(k + 1) * rows_per_shard]
        name = f"{split}-{k:05d}-of-{n_shards:05d}.parquet"
        pq.write_table(_arrow_table(part), data_dir / name, compression="zstd")
        names.append(f"data/{name}")
    return names


def write_dataset(
    name: str,
    version: str,
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    *,
    home: Path | None = None,
    root: Path | None = None,
    provenance: Mapping[str, Any] | None = None,
    licence: str = "other",
    card: str | Callable[[dict[str, Any]], str] | None = None,
    synthetic: bool = False,
    extra_files: Mapping[str, bytes] | None = None,
    force: bool = False,
    rows_per_shard: int = ROWS_PER_SHARD,
) -> Path:
    """Write a dataset version atomically and return its folder.

    The version is built in a hidden temporary folder beside its final place
    and renamed into place only once complete, so an interrupted write never
    leaves a folder that looks finished; a rerun cleans up and succeeds.
    ``root`` is the exact target folder; otherwise ``<home>/<name>/<version>``.
    ``card`` is the dataset card's markdown body, or a function of the finished
    manifest returning it; YAML front matter is added from the manifest.
    """
    check_name_version(name, version)
    unknown = set(splits) - set(SPLITS)
    if unknown or set(splits) != set(SPLITS):
        raise DatasetError(f"splits must be exactly {SPLITS}, got {sorted(splits)}")
    target = Path(root) if root is not None else (home or default_home()) / name / version
    if target.exists() and not force:
        raise DatasetError(f"{target} already exists; pass force=True (--force) to rebuild it")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".tmp-{target.name}-*"):
        shutil.rmtree(stale, ignore_errors=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{target.name}-", dir=target.parent))
    try:
        (tmp / "data").mkdir()
        split_meta: dict[str, Any] = {}
        fingerprints: dict[str, str] = {}
        with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
            encoded = {split: _encode_split(split, splits[split], pool) for split in SPLITS}
        # Leakage is refused before any shard is written.
        _check_no_leakage({split: table for split, (table, _) in encoded.items()}, where=str(target))
        for split, (table, images) in encoded.items():
            files = _write_shards(table, split, tmp / "data", rows_per_shard)
            fingerprints[split] = split_fingerprint(table, images)
            split_meta[split] = _split_summary(table, files, fingerprints[split])
        manifest = {
            "format_version": FORMAT_VERSION,
            "name": name,
            "version": version,
            "task": TASK,
            "label_schema": label_schema_dict(),
            "synthetic": bool(synthetic),
            "licence": licence,
            "fingerprint": dataset_fingerprint(fingerprints),
            "splits": split_meta,
            "provenance": dict(provenance or {}),
            "created_by": f"thyroid-bench {_package_version()}",
            "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        }
        for rel, content in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            (tmp / rel).write_bytes(content)
        body = card(manifest) if callable(card) else (card or "")
        (tmp / "README.md").write_text(render_card(manifest, body), encoding="utf-8")
        # The manifest is written last: a folder without it is never a dataset.
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
        _replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return target


def _replace_dir(tmp: Path, target: Path) -> None:
    if target.exists():
        old = target.parent / f".old-{target.name}-{os.getpid()}"
        os.replace(target, old)
        os.replace(tmp, target)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.replace(tmp, target)


def _split_summary(table: pd.DataFrame, files: list[str], fingerprint: str) -> dict[str, Any]:
    labels = table["label"].astype(int)
    return {
        "rows": int(len(table)),
        "class_counts": {n: int((labels == i).sum()) for i, n in enumerate(CLASS_NAMES)},
        "center_counts": {str(k): int(v) for k, v in sorted(table["center"].value_counts().items())},
        "files": files,
        "fingerprint": fingerprint,
    }


def _package_version() -> str:
    from thyroid_bench import __version__

    return __version__


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


def read_manifest(path: Path) -> dict[str, Any]:
    """Read and structurally check ``manifest.json`` of a dataset folder."""
    file = Path(path) / "manifest.json"
    try:
        manifest = json.loads(file.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise DatasetError(f"{file} is missing: {path} is not a complete dataset version; "
                           "rebuild it with `thyroid-bench prepare`") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{file} is not valid JSON ({exc}); rebuild the dataset") from None
    required = ("format_version", "name", "version", "task", "label_schema", "fingerprint", "splits")
    missing = [k for k in required if k not in manifest]
    if missing:
        raise DatasetError(f"{file}: missing key(s) {missing}")
    if manifest["format_version"] != FORMAT_VERSION:
        raise DatasetError(f"{file}: format_version {manifest['format_version']!r} is not supported "
                           f"(this thyroid-bench reads {FORMAT_VERSION}); upgrade thyroid-bench")
    return manifest


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


def load_dataset(name_or_path: str | os.PathLike | None = None, *, home: Path | None = None,
                 verify: bool = True):
    """Open a dataset version with Hugging Face ``datasets``; verify fingerprints first."""
    import datasets

    path = resolve_dataset(name_or_path, home=home)
    if verify:
        report = verify_dataset(path)
        if not report.ok:
            raise VerificationError(f"{path} failed verification:\n  - " + "\n  - ".join(report.problems)
                                    + "\nrebuild it with `thyroid-bench prepare --force`")
    return datasets.load_dataset(str(path))


# --------------------------------------------------------------------------- verification
@dataclass
class VerifyReport:
    """What :func:`verify_dataset` found: problems make it fail, notes inform."""

    path: Path
    name: str = "?"
    version: str = "?"
    fingerprint: str | None = None
    official: bool | None = None
    rows: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def render(self) -> str:
        """A one-screen summary for the terminal."""
        lines = [f"dataset   {self.name} {self.version}", f"path      {self.path}"]
        if self.fingerprint:
            lines.append(f"fingerprint {self.fingerprint}")
        if self.rows:
            lines.append("rows      " + ", ".join(f"{s} {n}" for s, n in self.rows.items()))
        if self.official is True:
            lines.append(f"official  {self.name} {self.version}: fingerprint matches the pinned one")
        elif self.official is False:
            lines.append(f"NOT official: fingerprint differs from the pinned {self.name} {self.version}")
        lines += [f"note      {n}" for n in self.notes]
        if self.ok:
            lines.append("result    OK: manifest, schema, counts, images, fingerprints and split "
                         "isolation all check out")
        else:
            lines.append(f"result    FAILED ({len(self.problems)} problem(s)):")
            lines += [f"  - {p}" for p in self.problems]
        return "\n".join(lines)


def verify_dataset(path: Path) -> VerifyReport:
    """Check a dataset folder completely; never raises for content faults, reports them.

    Checks the manifest and label schema, every shard's columns, that class
    counts equal the manifest, every label is in the schema, every image
    decodes and matches its ``matrix`` and ``total_counts``, the content
    fingerprints, and that no case, patient or identical image is in two splits.
    """
    path = Path(path)
    report = VerifyReport(path=path)
    try:
        manifest = read_manifest(path)
    except DatasetError as exc:
        report.problems.append(str(exc))
        return report
    report.name, report.version = manifest["name"], manifest["version"]
    if manifest["label_schema"] != label_schema_dict():
        report.problems.append("manifest label_schema differs from label schema v1 "
                               f"({', '.join(CLASS_NAMES)})")
    tables: dict[str, pd.DataFrame] = {}
    fingerprints: dict[str, str] = {}
    image_hashes: dict[str, set[str]] = {}
    for split in SPLITS:
        meta = manifest["splits"].get(split)
        if meta is None:
            report.problems.append(f"manifest has no split {split!r}")
            continue
        try:
            table = read_split(path, split)
        except DatasetError as exc:
            report.problems.append(str(exc))
            continue
        if list(table.columns) != list(COLUMNS):
            report.problems.append(f"split {split}: columns {list(table.columns)} differ from "
                                   f"format v1 {list(COLUMNS)}")
            continue
        tables[split] = table
        report.rows[split] = len(table)
        _check_split(split, table, meta, report)
        images = _decode_all(split, table, report)
        if images is None:
            continue
        image_hashes[split] = {hashlib.sha256(np.ascontiguousarray(im, "<u2").tobytes()).hexdigest()
                               for im in images}
        fingerprints[split] = split_fingerprint(table, images)
        if fingerprints[split] != meta.get("fingerprint"):
            report.problems.append(f"split {split}: content fingerprint {fingerprints[split][:16]}... "
                                   f"differs from the manifest's {str(meta.get('fingerprint'))[:16]}...: "
                                   "the data changed after it was written")
    if len(fingerprints) == len(SPLITS):
        report.fingerprint = dataset_fingerprint(fingerprints)
        if report.fingerprint != manifest["fingerprint"]:
            report.problems.append("dataset fingerprint differs from the manifest's")
    if len(tables) == len(SPLITS):
        try:
            _check_no_leakage(tables, where=str(path))
        except VerificationError as exc:
            report.problems.append(str(exc))
        for a_i, a in enumerate(SPLITS):
            for b in SPLITS[a_i + 1:]:
                shared = image_hashes.get(a, set()) & image_hashes.get(b, set())
                if shared:
                    report.problems.append(f"{len(shared)} identical image(s) in both {a} and {b}")
    from thyroid_bench.data.official import pinned_fingerprint

    pinned = pinned_fingerprint(report.name, report.version)
    if pinned is not None:
        report.official = report.fingerprint == pinned
    return report


def _check_split(split: str, table: pd.DataFrame, meta: Mapping[str, Any], report: VerifyReport) -> None:
    if len(table) != meta.get("rows"):
        report.problems.append(f"split {split}: {len(table)} rows, manifest says {meta.get('rows')}")
    labels = table["label"]
    bad = table.loc[(labels < 0) | (labels >= NUM_CLASSES), "case_id"].tolist()
    if bad:
        report.problems.append(f"split {split}: label outside the schema for case(s) {bad[:5]}")
    counts = {n: int((labels == i).sum()) for i, n in enumerate(CLASS_NAMES)}
    if counts != meta.get("class_counts"):
        report.problems.append(f"split {split}: class counts {counts} differ from the manifest's "
                               f"{meta.get('class_counts')}")
    dup = table.loc[table["case_id"].duplicated(), "case_id"].tolist()
    if dup:
        report.problems.append(f"split {split}: duplicated case_id(s) {dup[:5]}")
    folds = table["fold"]
    if split == "train" and not folds.between(0, 4).all():
        report.problems.append("split train: fold outside 0-4")
    if split != "train" and not (folds == -1).all():
        report.problems.append(f"split {split}: fold must be -1 outside train")


def _decode_all(split: str, table: pd.DataFrame, report: VerifyReport) -> list[np.ndarray] | None:
    images = []
    for case_id, data, matrix, total in zip(table["case_id"], table["image"], table["matrix"],
                                            table["total_counts"]):
        try:
            img = decode_image(data)
        except Exception as exc:  # noqa: BLE001 - any decoder failure is a finding
            report.problems.append(f"split {split}: image of case {case_id} does not decode ({exc})")
            return None
        if img.shape != (matrix, matrix):
            report.problems.append(f"split {split}: case {case_id} image {img.shape} but matrix {matrix}")
        if int(img.sum(dtype=np.int64)) != int(total):
            report.problems.append(f"split {split}: case {case_id} pixel sum {int(img.sum())} != "
                                   f"total_counts {total}")
        images.append(img)
    return images


def _check_no_leakage(tables: Mapping[str, pd.DataFrame], where: str) -> None:
    """Raise if a case or a patient appears in two splits."""
    for column in ("case_id", "patient_id"):
        seen: dict[str, str] = {}
        for split in SPLITS:
            for value in pd.unique(tables[split][column]):
                other = seen.get(value)
                if other is not None and other != split:
                    raise VerificationError(f"{where}: {column} {value!r} is in both {other} and "
                                            f"{split}: splits must not share {column.replace('_id', '')}s")
                seen[value] = split


# --------------------------------------------------------------------------- info and card
def dataset_info(path: Path) -> str:
    """Counts per split x class x centre, as a text table."""
    manifest = read_manifest(path)
    frames = []
    for split in SPLITS:
        t = read_split(path, split, columns=["label", "center"])
        t["split"] = split
        frames.append(t)
    df = pd.concat(frames, ignore_index=True)
    df["class"] = pd.Categorical([CLASS_NAMES[i] for i in df["label"]], categories=CLASS_NAMES)
    df["split"] = pd.Categorical(df["split"], categories=SPLITS)
    table = pd.crosstab([df["split"], df["center"]], df["class"], margins=True, margins_name="total",
                        dropna=False)
    table = table[(table["total"] > 0)]
    head = (f"{manifest['name']} {manifest['version']}"
            f"{' (synthetic phantom study)' if manifest.get('synthetic') else ''}\n"
            f"fingerprint {manifest['fingerprint']}\n")
    return head + table.to_string()


def _size_category(n: int) -> str:
    for upper, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K")):
        if n < upper:
            return label
    return "100K<n<1M"


def render_card(manifest: Mapping[str, Any], body: str) -> str:
    """A Hugging Face dataset card: YAML front matter from the manifest, then ``body``."""
    names = "\n".join(f"          '{i}': {n}" for i, n in enumerate(CLASS_NAMES))
    data_files = "\n".join(f"  - split: {s}\n    path: data/{s}-*.parquet" for s in SPLITS)
    simple = {"case_id": "string", "patient_id": "string", "center": "string", "fold": "int8",
              "matrix": "int32", "pixel_spacing_mm": "float64", "total_counts": "int64",
              "acquisition_s": "float64", "sex": "string", "age": "int32"}
    feats = []
    for col in COLUMNS:
        if col == "image":
            feats.append("  - name: image\n    dtype: image")
        elif col == "label":
            feats.append(f"  - name: label\n    dtype:\n      class_label:\n        names:\n{names}")
        else:
            feats.append(f"  - name: {col}\n    dtype: {simple[col]}")
    tags = ["medical", "nuclear-medicine", "scintigraphy", "thyroid"]
    if manifest.get("synthetic"):
        tags.append("synthetic")
    front = "\n".join([
        "---",
        f"license: {manifest.get('licence', 'other')}",
        f"pretty_name: {manifest['name']} {manifest['version']}",
        "task_categories:\n- image-classification",
        "tags:\n" + "\n".join(f"- {t}" for t in tags),
        f"size_categories:\n- {_size_category(sum(manifest['splits'][s]['rows'] for s in SPLITS))}",
        "configs:\n- config_name: default\n  data_files:\n" + data_files,
        "dataset_info:\n  features:\n" + "\n".join(feats),
        "---",
    ])
    return front + "\n\n" + body.strip() + "\n"
