"""The leaderboard: check a run's entry, store it, group seeds, rank, render.

A leaderboard is a folder (``leaderboard/`` in the repository)::

    leaderboard/
      README.md  index.html          rendered tables (never edited by hand)
      schema/entry-v1.json           the published JSON Schema of an entry
      entries/<task>/<dataset>@<version>/
        dataset.json                 name, version, fingerprint of the dataset version
        labels/{internal,external}.csv   case_id,label: the truth the entries are scored on
        <entry id>/entry.json        the entry exactly as submitted (bytes unchanged)
        <entry id>/predictions/{internal,external}.csv

:func:`submit` accepts a run folder only if every check passes (see :func:`check_run`);
nothing is written otherwise. The labels are stored beside the entries so the page can
be re-rendered, significance included, without the dataset at hand.

Grouping and ranking (:func:`build_board`): the entries of one task and dataset
version with the same model, protocol (name and overrides) and pretrained weights
form one row, with mean and sample standard deviation (ddof = 1) over the seeds.
Rows are ranked by the primary metric, mean external macro F1 (the external centre is
never trained on: it is the generalisation test). Each row's confidence intervals are
those of its *median seed* (the seed whose external macro F1 is the median, the lower
one for an even count); the same entry represents the row in the paired bootstrap
(:func:`thyroid_bench.metrics.paired_bootstrap`, external split, 1000 resamples,
seed 0) against the row above it. A row not significantly different (p >= 0.05) from
the row above shares its rank and is marked ``≈``.
"""

from __future__ import annotations

import csv
import json
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

import numpy as np

from thyroid_bench.atomic import atomic_write_text
from thyroid_bench.entry import EVAL_SPLITS, Entry, EntryError, read_entry, sha256_file
from thyroid_bench.errors import DatasetError, PredictionsError, ThyroidBenchError
from thyroid_bench.metrics import ECE_BINS, OVERALL_FIGURES, PER_CLASS_FIGURES, compare, evaluate, gap
from thyroid_bench.predictions import read_predictions
from thyroid_bench.schema import CLASS_NAMES, parse_label

__all__ = [
    "DEFAULT_LEADERBOARD",
    "PRIMARY_METRIC",
    "PRIMARY_SPLIT",
    "MIN_BOOTSTRAP_RESAMPLES",
    "CI_LEVEL",
    "RANK_RESAMPLES",
    "RANK_SEED",
    "SIGNIFICANCE",
    "METRIC_TOLERANCE",
    "SubmissionError",
    "LeaderboardError",
    "HubError",
    "CheckedRun",
    "StoredEntry",
    "Stat",
    "Group",
    "Section",
    "Board",
    "SubmitResult",
    "protocol_label",
    "entry_id",
    "first_difference",
    "check_run",
    "submit",
    "load_entries",
    "build_board",
    "render_leaderboard",
    "entry_json_schema",
    "push_to_hub",
]

#: Default leaderboard folder, relative to the working directory.
DEFAULT_LEADERBOARD = Path("leaderboard")
#: The figure rows are ranked by, and the split it is taken on.
PRIMARY_METRIC = "macro_f1"
PRIMARY_SPLIT = "external"
#: Entries must carry bootstrap intervals of at least this many resamples, at this level.
MIN_BOOTSTRAP_RESAMPLES = 1000
CI_LEVEL = 0.95
#: Paired bootstrap of adjacent rows: resamples, seed, significance level.
RANK_RESAMPLES = 1000
RANK_SEED = 0
SIGNIFICANCE = 0.05
#: A claimed figure equals its recomputed value within this (absolute and relative) tolerance.
METRIC_TOLERANCE = 1e-9

_ENTRIES = "entries"
_SLUG = re.compile(r"[^A-Za-z0-9_.]+")


# --------------------------------------------------------------------------- errors
class SubmissionError(ThyroidBenchError):
    """A run folder refused by the leaderboard; ``check`` names the check that failed."""

    def __init__(self, run_dir: str | os.PathLike, check: str, reason: str) -> None:
        self.run_dir = Path(run_dir)
        self.check = check
        self.reason = reason
        super().__init__(f"{run_dir}: rejected by check '{check}': {reason}")


class LeaderboardError(ThyroidBenchError):
    """A leaderboard folder whose stored entries are unreadable or inconsistent."""


class HubError(ThyroidBenchError):
    """Opening the pull request on the Hugging Face Hub failed (no token, unreachable, refused)."""


# --------------------------------------------------------------------------- names
def _slug(text: str) -> str:
    return _SLUG.sub("-", text.replace(".py:", "-").replace(":", "-")).strip("-.") or "x"


def protocol_label(entry: Entry) -> str:
    """The protocol as shown and grouped: its name, plus its overrides if any.

    ``quick`` and ``quick`` with ``epochs=1`` are different experiments, so they are
    different rows (and a seed of each is not a duplicate of the other).
    """
    if not entry.protocol.overrides:
        return entry.protocol.name
    parts = ", ".join(f"{k}={_compact(v)}" for k, v in sorted(entry.protocol.overrides.items()))
    return f"{entry.protocol.name} ({parts})"


def _compact(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def entry_id(entry: Entry, entry_sha256: str) -> str:
    """``<model>-<protocol>-seed<seed>-<first 8 hex of the entry file's SHA-256>``."""
    return f"{_slug(entry.model.name)}-{_slug(protocol_label(entry))}-seed{entry.seed}-{entry_sha256[:8]}"


def _section_rel(entry: Entry) -> PurePosixPath:
    return PurePosixPath(_ENTRIES, _slug(entry.task), f"{entry.dataset.name}@{entry.dataset.version}")


def _duplicate_key(entry: Entry) -> tuple:
    return (entry.task, entry.dataset.name, entry.dataset.version, entry.model.name,
            protocol_label(entry), entry.seed)


def _describe_key(key: tuple) -> str:
    task, name, version, model, protocol, seed = key
    return f"model {model}, protocol {protocol}, seed {seed} on {name}@{version} (task {task})"


# --------------------------------------------------------------------------- comparison
def first_difference(claimed: Any, recomputed: Any, path: str = "",
                     tol: float = METRIC_TOLERANCE) -> tuple[str, Any, Any] | None:
    """The first place two JSON-like values differ, as (path, claimed, recomputed), or None.

    Dicts must have the same keys, lists the same length; numbers are equal within
    ``tol`` (absolute or relative), booleans, strings and ``None`` exactly.
    """
    if isinstance(recomputed, Mapping):
        if not isinstance(claimed, Mapping):
            return path, claimed, "an object"
        for key in recomputed:
            if key not in claimed:
                return f"{path}.{key}", "<missing>", recomputed[key]
        for key in claimed:
            if key not in recomputed:
                return f"{path}.{key}", claimed[key], "<not a figure of metrics.evaluate>"
        for key in recomputed:
            diff = first_difference(claimed[key], recomputed[key], f"{path}.{key}", tol)
            if diff:
                return diff
        return None
    if isinstance(recomputed, (list, tuple)):
        if not isinstance(claimed, (list, tuple)) or len(claimed) != len(recomputed):
            return path, claimed, list(recomputed)
        for i, (a, b) in enumerate(zip(claimed, recomputed)):
            diff = first_difference(a, b, f"{path}[{i}]", tol)
            if diff:
                return diff
        return None
    if recomputed is None or isinstance(recomputed, (bool, str)) or isinstance(claimed, bool):
        return None if (type(claimed) is type(recomputed) and claimed == recomputed) else (
            path, claimed, recomputed)
    if isinstance(recomputed, (int, float)) and isinstance(claimed, (int, float)):
        a, b = float(claimed), float(recomputed)
        if math.isfinite(a) and math.isclose(a, b, rel_tol=tol, abs_tol=tol):
            return None
    return path, claimed, recomputed


# --------------------------------------------------------------------------- datasets
@dataclass
class _Truth:
    """The evaluation splits' labels of one dataset version, as the checks need them."""

    name: str
    version: str
    fingerprint: str
    synthetic: bool
    task: str
    labels: dict[str, dict[str, int]]  # split -> case_id -> class index


def _load_truth(run_dir: Path, entry: Entry, home: Path | None) -> _Truth:
    """Find the entry's dataset version locally, check its fingerprint, verify it, read labels."""
    from thyroid_bench.data import official
    from thyroid_bench.data.format import read_manifest, read_split, resolve_dataset, verify_dataset

    ds = entry.dataset
    where = f"{ds.name}@{ds.version}"
    pin = official.pinned_fingerprint(ds.name, ds.version)
    if pin is not None and ds.fingerprint != pin:
        raise SubmissionError(run_dir, "dataset fingerprint",
                              f"the entry claims fingerprint {ds.fingerprint} for {where}, but the "
                              f"official {where} is pinned at {pin}: the run used another build of it")
    try:
        folder = resolve_dataset(where, home=home)
    except DatasetError:
        if pin is not None:
            raise SubmissionError(
                run_dir, "dataset present",
                f"{where} is an official version (fingerprint {pin[:12]}...), but its labels are "
                "needed to recompute the metrics and it is not in the dataset home "
                f"({home or 'the default home'}); prepare it with `thyroid-bench prepare` "
                "(or pass --home)") from None
        raise SubmissionError(
            run_dir, "dataset fingerprint",
            f"unknown dataset fingerprint {ds.fingerprint} of {where}: it is not a pinned official "
            f"version and no {where} is present in the dataset home ({home or 'the default home'}); "
            "put the dataset version there (thyroid-bench prepare ...) or pass --home") from None
    manifest = read_manifest(folder)
    if (manifest["name"], manifest["version"]) != (ds.name, ds.version):
        raise SubmissionError(run_dir, "dataset fingerprint",
                              f"{folder} holds {manifest['name']}@{manifest['version']}, not {where}")
    if manifest["fingerprint"] != ds.fingerprint:
        raise SubmissionError(
            run_dir, "dataset fingerprint",
            f"unknown dataset fingerprint {ds.fingerprint}: the local {where} ({folder}) has "
            f"fingerprint {manifest['fingerprint']}; the run used another build of the dataset")
    if manifest["task"] != entry.task:
        raise SubmissionError(run_dir, "task", f"the entry's task {entry.task!r} is not the task "
                              f"{manifest['task']!r} of {where}")
    report = verify_dataset(folder)
    if not report.ok:
        raise SubmissionError(run_dir, "dataset verification",
                              f"{folder} fails verification, so its labels cannot be trusted:\n"
                              f"{report.render()}")
    labels = {}
    for split in EVAL_SPLITS:
        table = read_split(folder, split, columns=["case_id", "label"])
        labels[split] = {str(c): int(y) for c, y in zip(table["case_id"], table["label"])}
    return _Truth(ds.name, ds.version, manifest["fingerprint"], bool(manifest.get("synthetic")),
                  manifest["task"], labels)


# --------------------------------------------------------------------------- checks
@dataclass
class CheckedRun:
    """A run folder that passed every check, ready to be stored."""

    run_dir: Path
    entry: Entry
    entry_sha256: str
    entry_id: str
    section: PurePosixPath  # entries/<task>/<dataset>@<version>
    truth: _Truth


def _predictions_file(run_dir: Path, split: str, rel: str) -> Path:
    p = PurePosixPath(rel)
    if p.is_absolute() or ".." in p.parts or "\\" in rel or not p.parts or p.parts[0] != "predictions":
        raise SubmissionError(run_dir, "predictions path",
                              f"predictions.{split}.path {rel!r} must be a relative path under "
                              "predictions/ (e.g. predictions/external.csv)")
    return run_dir.joinpath(*p.parts)


def check_run(
    run_dir: str | os.PathLike,
    *,
    home: Path | None = None,
    existing: Iterable[Entry] = (),
    _truth_cache: dict[tuple[str, str], _Truth] | None = None,
) -> CheckedRun:
    """Run every leaderboard check on a run folder; raise :class:`SubmissionError` on the first failure.

    In order: ``schema`` (entry.json is a valid schema-v1 entry, unknown fields
    refused), ``splits`` (metrics and predictions for exactly internal and external),
    ``duplicate`` (no entry in ``existing`` with the same task, dataset name@version,
    model, protocol and seed), ``dataset fingerprint`` / ``dataset present`` /
    ``dataset verification`` (a pinned official version, or a local version with the
    same fingerprint; the local data must verify), ``dataset synthetic`` (the entry's
    synthetic flag is the manifest's), ``predictions hash`` (each file's
    SHA-256 is the entry's), ``predictions`` (the file covers exactly the split's cases,
    every row a probability vector; its optional label column agrees with the dataset),
    ``bootstrap`` (intervals of at least 1000 resamples at 95%) and ``metrics`` (every
    figure recomputed with :func:`thyroid_bench.metrics.evaluate` under the entry's
    bootstrap settings equals the claimed one within 1e-9).
    """
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise SubmissionError(run_dir, "run folder", "no such folder; give a run folder made by "
                              "`thyroid-bench run` (it holds entry.json and predictions/)")
    entry_path = run_dir / "entry.json"
    try:
        entry = read_entry(entry_path)
    except EntryError as exc:
        hint = " (the run did not finish: INCOMPLETE is present)" if (run_dir / "INCOMPLETE").exists() else ""
        raise SubmissionError(run_dir, "schema", f"{exc}{hint}") from None
    entry_sha = sha256_file(entry_path)

    for what, keys in (("metrics", entry.metrics), ("predictions", entry.predictions)):
        if set(keys) != set(EVAL_SPLITS):
            raise SubmissionError(run_dir, "splits", f"the entry's {what} cover {sorted(keys)}; a "
                                  f"leaderboard entry needs exactly {list(EVAL_SPLITS)}")

    key = _duplicate_key(entry)
    for other in existing:
        if _duplicate_key(other) == key:
            raise SubmissionError(run_dir, "duplicate",
                                  f"the leaderboard already has an entry for {_describe_key(key)} "
                                  f"(run {other.run_id}); use another seed, or remove the old entry")

    cache = {} if _truth_cache is None else _truth_cache
    ck = (entry.dataset.name, entry.dataset.version)
    truth = cache.get(ck)
    if truth is None or truth.fingerprint != entry.dataset.fingerprint:
        truth = _load_truth(run_dir, entry, home)
        cache[ck] = truth
    if entry.dataset.synthetic != truth.synthetic:
        raise SubmissionError(run_dir, "dataset synthetic",
                              f"the entry says synthetic={entry.dataset.synthetic}, the manifest of "
                              f"{truth.name}@{truth.version} says synthetic={truth.synthetic}")

    files = {split: _predictions_file(run_dir, split, entry.predictions[split].path)
             for split in EVAL_SPLITS}
    for split, path in files.items():
        if not path.is_file():
            raise SubmissionError(run_dir, "predictions hash", f"{path} (predictions.{split}) is missing")
        digest = sha256_file(path)
        if digest != entry.predictions[split].sha256:
            raise SubmissionError(run_dir, "predictions hash",
                                  f"{path} has SHA-256 {digest}, but the entry records "
                                  f"{entry.predictions[split].sha256}: the file changed after the run")

    for split in EVAL_SPLITS:
        truth_split = truth.labels[split]
        try:
            preds = read_predictions(files[split], expected_case_ids=list(truth_split))
        except PredictionsError as exc:
            raise SubmissionError(run_dir, "predictions",
                                  f"split {split} of {truth.name}@{truth.version}: {exc}") from None
        if len(preds) != entry.predictions[split].rows:
            raise SubmissionError(run_dir, "predictions",
                                  f"{files[split]} has {len(preds)} rows, the entry records "
                                  f"{entry.predictions[split].rows}")
        preds, y_true, mismatch = preds.against(truth_split)
        if mismatch.size:
            i = int(mismatch[0])
            raise SubmissionError(run_dir, "predictions",
                                  f"{files[split]}: the label column says {CLASS_NAMES[preds.labels[i]]} "
                                  f"for case {preds.case_ids[i]!r}, the dataset says {CLASS_NAMES[y_true[i]]}")
        claimed = entry.metrics[split]
        boot = claimed.get("bootstrap")
        if (not isinstance(boot, Mapping) or not isinstance(boot.get("resamples"), int)
                or not isinstance(boot.get("seed"), int) or not isinstance(boot.get("level"), (int, float))):
            raise SubmissionError(run_dir, "bootstrap",
                                  f"metrics.{split}.bootstrap must record resamples, seed and level "
                                  f"(as metrics.evaluate writes them), got {boot!r}")
        if boot["resamples"] < MIN_BOOTSTRAP_RESAMPLES or not math.isclose(boot["level"], CI_LEVEL):
            raise SubmissionError(
                run_dir, "bootstrap",
                f"metrics.{split} has {boot['resamples']} bootstrap resamples at level {boot['level']}; "
                f"the leaderboard shows {CI_LEVEL:.0%} intervals of at least {MIN_BOOTSTRAP_RESAMPLES} "
                f"resamples: re-run with --bootstrap {MIN_BOOTSTRAP_RESAMPLES}")
        ece_bins = claimed.get("ece_bins", ECE_BINS)
        if isinstance(ece_bins, bool) or not isinstance(ece_bins, int) or ece_bins < 1:
            raise SubmissionError(run_dir, "metrics", f"metrics.{split}.ece_bins = {ece_bins!r} "
                                  "is not a positive integer")
        recomputed = evaluate(y_true, preds.probs, CLASS_NAMES, bootstrap=boot["resamples"],
                              seed=boot["seed"], ci=float(boot["level"]), ece_bins=ece_bins)
        diff = first_difference(claimed, recomputed, f"metrics.{split}")
        if diff:
            where, a, b = diff
            raise SubmissionError(run_dir, "metrics",
                                  f"{where}: the entry claims {a!r}, recomputed from {files[split].name} "
                                  f"and the dataset's labels it is {b!r}")

    return CheckedRun(run_dir, entry, entry_sha, entry_id(entry, entry_sha), _section_rel(entry), truth)


# --------------------------------------------------------------------------- storage
@dataclass
class StoredEntry:
    """An entry on the leaderboard: the validated entry and where its files are."""

    entry: Entry
    entry_id: str
    folder: Path           # the folder holding entry.json (may be a staging folder)
    rel: PurePosixPath     # its path relative to the leaderboard folder

    def predictions_path(self, split: str) -> Path:
        """The stored predictions CSV of ``split``."""
        return self.folder.joinpath(*PurePosixPath(self.entry.predictions[split].path).parts)


def _read_labels(section_dir: Path) -> dict[str, dict[str, int]] | None:
    out = {}
    for split in EVAL_SPLITS:
        path = section_dir / "labels" / f"{split}.csv"
        if not path.is_file():
            return None
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.DictReader(f))
        try:
            out[split] = {r["case_id"]: parse_label(r["label"]) for r in rows}
        except (KeyError, ValueError) as exc:
            raise LeaderboardError(f"{path}: not a case_id,label file ({exc})") from None
    return out


def _write_section_files(target: Path, truth: _Truth) -> None:
    (target / "labels").mkdir(parents=True, exist_ok=True)
    info = {"name": truth.name, "version": truth.version, "fingerprint": truth.fingerprint,
            "synthetic": truth.synthetic, "task": truth.task,
            "splits": {s: {"rows": len(truth.labels[s])} for s in EVAL_SPLITS}}
    (target / "dataset.json").write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
    for split in EVAL_SPLITS:
        with open(target / "labels" / f"{split}.csv", "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f, lineterminator="\n")
            w.writerow(["case_id", "label"])
            for cid in sorted(truth.labels[split]):
                w.writerow([cid, CLASS_NAMES[truth.labels[split][cid]]])


def load_entries(leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD, *,
                 check_hashes: bool = True) -> list[StoredEntry]:
    """Every entry stored under ``<leaderboard>/entries``, sorted by path.

    With ``check_hashes``, each stored predictions file must still have the SHA-256 its
    entry records (:class:`LeaderboardError` otherwise: the folder was edited by hand).
    """
    root = Path(leaderboard)
    out = []
    for path in sorted((root / _ENTRIES).glob("*/*/*/entry.json")):
        try:
            entry = read_entry(path)
        except EntryError as exc:
            raise LeaderboardError(f"stored entry unreadable: {exc}") from None
        folder = path.parent
        stored = StoredEntry(entry, folder.name, folder,
                             PurePosixPath(folder.relative_to(root).as_posix()))
        if check_hashes:
            for split, pf in entry.predictions.items():
                p = stored.predictions_path(split)
                if not p.is_file() or sha256_file(p) != pf.sha256:
                    raise LeaderboardError(f"{p}: missing or changed since it was submitted (its "
                                           "SHA-256 is not the entry's); restore it from git")
        out.append(stored)
    return out


@dataclass
class SubmitResult:
    """What :func:`submit` added: entry ids, their folders, and the Hub pull request if any."""

    entry_ids: list[str]
    paths: list[Path]
    pr_url: str | None = None


def _stage(checked: Sequence[CheckedRun], staging: Path, root: Path) -> list[tuple[Path, Path]]:
    """Copy entries (and new dataset sections) under ``staging``; return (staged, final) moves."""
    moves: list[tuple[Path, Path]] = []
    new_sections: set[PurePosixPath] = set()
    for c in checked:
        final_section = root.joinpath(*c.section.parts)
        if not (final_section / "dataset.json").is_file() and c.section not in new_sections:
            staged_section = staging / "sections" / f"{len(new_sections)}"
            _write_section_files(staged_section, c.truth)
            new_sections.add(c.section)
            for item in sorted(staged_section.iterdir()):
                moves.append((item, final_section / item.name))
        dest = staging / "entries" / c.entry_id
        (dest / "predictions").mkdir(parents=True)
        shutil.copyfile(c.run_dir / "entry.json", dest / "entry.json")
        for split in EVAL_SPLITS:
            rel = PurePosixPath(c.entry.predictions[split].path)
            (dest.joinpath(*rel.parts)).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(c.run_dir.joinpath(*rel.parts), dest.joinpath(*rel.parts))
        moves.append((dest, final_section / c.entry_id))
    return moves


def submit(
    run_dirs: str | os.PathLike | Sequence[str | os.PathLike],
    *,
    leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD,
    home: Path | None = None,
    hub: str | None = None,
    hub_api: Any = None,
    render: bool = True,
) -> SubmitResult:
    """Check run folders and add them to the leaderboard, then re-render it.

    Every run is checked (:func:`check_run`, against the stored entries and the other
    runs of the call) before anything is written: one refusal and nothing changes.
    Accepted entries are staged in a temporary folder inside the leaderboard and
    renamed into ``entries/<task>/<dataset>@<version>/<entry id>/``; README.md,
    index.html and schema/entry-v1.json are then rewritten atomically. With ``hub``
    (a Hub dataset repository id), a pull request with the new entries is opened
    first (``hub_api``: a stand-in for ``huggingface_hub.HfApi``, for tests).
    """
    runs = [run_dirs] if isinstance(run_dirs, (str, os.PathLike)) else list(run_dirs)
    if not runs:
        raise ThyroidBenchError("submit needs at least one run folder")
    root = Path(leaderboard)
    existing = load_entries(root) if (root / _ENTRIES).is_dir() else []
    seen = [s.entry for s in existing]
    cache: dict[tuple[str, str], _Truth] = {}
    checked: list[CheckedRun] = []
    for run in runs:
        c = check_run(run, home=home, existing=seen, _truth_cache=cache)
        stored_info = root.joinpath(*c.section.parts) / "dataset.json"
        if stored_info.is_file():
            fp = json.loads(stored_info.read_text(encoding="utf-8")).get("fingerprint")
            if fp != c.truth.fingerprint:
                raise SubmissionError(run, "dataset fingerprint",
                                      f"the leaderboard's {c.truth.name}@{c.truth.version} has "
                                      f"fingerprint {fp}, this entry's is {c.truth.fingerprint}: "
                                      "two different builds cannot share a version")
        checked.append(c)
        seen.append(c.entry)

    root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=root))
    try:
        moves = _stage(checked, staging, root)
        staged = [StoredEntry(c.entry, c.entry_id, staging / "entries" / c.entry_id,
                              c.section / c.entry_id) for c in checked]
        pr_url = None
        if hub:
            pr_url = push_to_hub(staged, hub, api=hub_api)
        for src, dst in moves:
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.replace(src, dst)
        if render:
            render_leaderboard(root)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return SubmitResult([c.entry_id for c in checked],
                        [root.joinpath(*c.section.parts, c.entry_id) for c in checked], pr_url)


# --------------------------------------------------------------------------- hub
def push_to_hub(entries: Sequence[StoredEntry], repo_id: str, *, api: Any = None,
                commit_message: str | None = None) -> str | None:
    """Open a pull request on Hub dataset repository ``repo_id`` adding these entries.

    Each entry's ``entry.json`` and predictions go under the leaderboard's relative
    layout (``entries/<task>/<dataset>@<version>/<entry id>/...``). ``api`` defaults
    to ``huggingface_hub.HfApi`` with the stored token. Returns the pull request's URL.
    Raises :class:`HubError` with what to do when there is no token or the Hub is
    unreachable or refuses.
    """
    from huggingface_hub import CommitOperationAdd

    if api is None:
        from huggingface_hub import HfApi, get_token

        token = get_token()
        if not token:
            raise HubError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN "
                           f"(a token with write access to {repo_id}) and submit again")
        api = HfApi(token=token)
    operations = []
    for stored in entries:
        operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/entry.json",
                                             path_or_fileobj=str(stored.folder / "entry.json")))
        for split in EVAL_SPLITS:
            rel = stored.entry.predictions[split].path
            operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/{rel}",
                                                 path_or_fileobj=str(stored.predictions_path(split))))
    ids = ", ".join(s.entry_id for s in entries)
    message = commit_message or f"Add leaderboard entr{'y' if len(entries) == 1 else 'ies'} {ids}"
    try:
        info = api.create_commit(repo_id=repo_id, repo_type="dataset", operations=operations,
                                 commit_message=message, create_pr=True)
    except _hub_errors() as exc:
        raise HubError(f"could not open a pull request on Hub dataset repository {repo_id!r}: "
                       f"{type(exc).__name__}: {exc}. Check the network, that the repository "
                       "exists and that your token (hf auth login / HF_TOKEN) may write to it; "
                       "nothing was added to the local leaderboard") from None
    return getattr(info, "pr_url", None)


def _hub_errors() -> tuple[type[BaseException], ...]:
    errors: list[type[BaseException]] = [OSError, ValueError, TimeoutError]
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"),
                         ("requests", "RequestException")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)


# --------------------------------------------------------------------------- grouping
@dataclass
class Stat:
    """Mean and sample standard deviation (ddof = 1) of one figure over a row's seeds."""

    mean: float | None
    sd: float | None
    n: int

    @classmethod
    def of(cls, values: Iterable[float | None]) -> Stat:
        """Mean and sd over the defined values (``None`` skipped); sd needs two of them."""
        v = np.array([x for x in values if x is not None], dtype=np.float64)
        if v.size == 0:
            return cls(None, None, 0)
        return cls(float(v.mean()), float(v.std(ddof=1)) if v.size > 1 else None, int(v.size))


@dataclass
class Group:
    """One row: the seeds of one model, protocol and pretrained weights on one dataset version."""

    model: str
    protocol: str
    pretrained: str
    entries: list[StoredEntry]                 # sorted by seed
    representative: StoredEntry                # the median seed (primary metric)
    stats: dict[str, dict[str, Stat]]          # split -> figure path -> Stat
    gap: dict[str, Stat]                       # figure -> Stat of internal - external
    rank: int = 0
    tied_with_above: bool = False
    vs_above: dict | None = None               # paired_bootstrap result against the row above

    @property
    def seeds(self) -> list[int]:
        return [s.entry.seed for s in self.entries]

    @property
    def primary(self) -> float | None:
        return self.stats[PRIMARY_SPLIT][PRIMARY_METRIC].mean

    def ci(self, split: str, figure: str) -> list[float] | None:
        """The representative (median-seed) entry's bootstrap CI of a figure."""
        return self.representative.entry.metrics[split].get("ci", {}).get(figure)


@dataclass
class Section:
    """The ranked rows of one task and dataset version."""

    task: str
    dataset: str
    version: str
    fingerprint: str
    synthetic: bool
    n_cases: dict[str, int]
    groups: list[Group]
    rel: PurePosixPath

    @property
    def title(self) -> str:
        return f"{self.task} · {self.dataset} {self.version}"


@dataclass
class Board:
    """The whole leaderboard: one section per task and dataset version."""

    sections: list[Section] = field(default_factory=list)


def _figure_paths() -> list[str]:
    """Per-split figure paths aggregated over seeds: the overall ones, then per class."""
    return list(OVERALL_FIGURES) + [f"per_class.{c}.{f}" for c in CLASS_NAMES for f in PER_CLASS_FIGURES]


def _get(metrics: Mapping, path: str) -> Any:
    cur: Any = metrics
    for part in path.split("."):
        if not isinstance(cur, Mapping) or part not in cur:
            return None
        cur = cur[part]
    return cur


def _median_entry(entries: Sequence[StoredEntry]) -> StoredEntry:
    """The entry whose primary metric is the median (the lower middle for an even count)."""
    def key(s: StoredEntry) -> tuple:
        v = s.entry.metrics[PRIMARY_SPLIT].get(PRIMARY_METRIC)
        return (-math.inf if v is None else v, s.entry.seed)

    ordered = sorted(entries, key=key)
    return ordered[(len(ordered) - 1) // 2]


def _group(entries: Sequence[StoredEntry]) -> Group:
    first = entries[0].entry
    entries = sorted(entries, key=lambda s: (s.entry.seed, s.entry_id))
    stats = {split: {path: Stat.of(_get(s.entry.metrics[split], path) for s in entries)
                     for path in _figure_paths()} for split in EVAL_SPLITS}
    gaps = [gap(s.entry.metrics["internal"], s.entry.metrics["external"]) for s in entries]
    gap_stats = {fig: Stat.of(g[fig] for g in gaps) for fig in OVERALL_FIGURES}
    return Group(first.model.name, protocol_label(first), first.pretrained, list(entries),
                 _median_entry(entries), stats, gap_stats)


def _aligned_external(stored: StoredEntry, labels: Mapping[str, int]) -> np.ndarray:
    order = sorted(labels)
    return read_predictions(stored.predictions_path(PRIMARY_SPLIT),
                            expected_case_ids=order).align(order).probs


def _rank(groups: list[Group], labels: Mapping[str, dict[str, int]] | None) -> None:
    """Order by mean primary metric; compare adjacent rows by the paired bootstrap."""
    groups.sort(key=lambda g: (-(g.primary if g.primary is not None else -math.inf),
                               g.model, g.protocol, g.pretrained))
    y = probs = None
    if labels is not None:
        truth = labels[PRIMARY_SPLIT]
        order = sorted(truth)
        y = np.array([truth[c] for c in order], dtype=np.int64)
        probs = [_aligned_external(g.representative, truth) for g in groups]
    for i, g in enumerate(groups):
        g.rank, g.tied_with_above, g.vs_above = i + 1, False, None
        if i == 0 or y is None:
            continue
        above = groups[i - 1]
        result = compare(y, probs[i], probs[i - 1], metrics=[PRIMARY_METRIC],
                         resamples=RANK_RESAMPLES, seed=RANK_SEED, alpha=SIGNIFICANCE,
                         class_names=CLASS_NAMES)[PRIMARY_METRIC]
        g.vs_above = result
        if result["significant"] is False:
            g.rank, g.tied_with_above = above.rank, True


def build_board(entries: Sequence[StoredEntry], leaderboard: str | os.PathLike | None = None) -> Board:
    """Group entries into rows, rank them per task and dataset version (see module doc).

    Labels for the paired bootstrap come from ``<leaderboard>/entries/.../labels/``;
    a section without them is ranked by the mean alone (no significance marks).
    """
    by_section: dict[tuple, list[StoredEntry]] = {}
    for s in entries:
        e = s.entry
        key = (e.task, e.dataset.name, e.dataset.version, e.dataset.fingerprint)
        by_section.setdefault(key, []).append(s)
    board = Board()
    for (task, name, version, fp), members in sorted(
            by_section.items(), key=lambda kv: (kv[0][0], kv[0][1], _version_key(kv[0][2]))):
        rel = _section_rel(members[0].entry)
        labels = None if leaderboard is None else _read_labels(Path(leaderboard).joinpath(*rel.parts))
        rows: dict[tuple, list[StoredEntry]] = {}
        for s in members:
            rows.setdefault((s.entry.model.name, protocol_label(s.entry), s.entry.pretrained), []).append(s)
        groups = [_group(v) for v in rows.values()]
        _rank(groups, labels)
        n_cases = {split: members[0].entry.predictions[split].rows for split in EVAL_SPLITS}
        board.sections.append(Section(task, name, version, fp, members[0].entry.dataset.synthetic,
                                      n_cases, groups, rel))
    return board


def _version_key(v: str) -> tuple[int, ...]:
    return tuple(-int(x) for x in v.split("."))  # newest version first


# --------------------------------------------------------------------------- rendering
def entry_json_schema() -> str:
    """The published JSON Schema of entry v1 (``leaderboard/schema/entry-v1.json``), as text."""
    return json.dumps(Entry.model_json_schema(), indent=2, ensure_ascii=False) + "\n"


def render_leaderboard(
    leaderboard: str | os.PathLike = DEFAULT_LEADERBOARD,
    *,
    html_out: str | os.PathLike | None = None,
    write: bool = True,
) -> Board:
    """Build the board from the stored entries and (re)write its rendered files.

    With ``write``: ``<leaderboard>/README.md``, ``index.html`` and
    ``schema/entry-v1.json``. ``html_out`` writes the HTML page there as well.
    Returns the :class:`Board`.
    """
    from thyroid_bench.leaderboard_render import render_html, render_markdown

    root = Path(leaderboard)
    board = build_board(load_entries(root), root)
    if write or html_out is not None:
        html = render_html(board)
    if write:
        atomic_write_text(root / "schema" / "entry-v1.json", entry_json_schema())
        atomic_write_text(root / "README.md", render_markdown(board))
        atomic_write_text(root / "index.html", html)
    if html_out is not None:
        atomic_write_text(Path(html_out), html)
    return board

