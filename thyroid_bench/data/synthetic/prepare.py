"""``thyroid-bench prepare`` for the synthetic cohorts: generate, write, check.

Two cohorts, one per task: ``tsb-synthetic`` (four-pattern; physics and readers in
:mod:`thyroid_bench.data.synthetic.generator`) and ``tsb-residual`` (residual-tissue;
:mod:`thyroid_bench.data.synthetic.residual`). :data:`COHORTS` is the table that names each
cohort's generator module and card; this module turns a generated cohort into a dataset
version (format v1) with its card, and compares the result with the fingerprint pinned for
the official release.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from thyroid_bench.data import private
from thyroid_bench.data.card import residual_card, synthetic_card
from thyroid_bench.data.format import default_home, write_dataset
from thyroid_bench.data.manifest import Manifest, read_manifest
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.synthetic import generator, residual
from thyroid_bench.data.synthetic import generator as synthetic  # noqa: F401  (tsb-synthetic, its old name here)
from thyroid_bench.errors import DatasetError

__all__ = ["COHORTS", "Cohort", "DEFAULT_COHORT", "cohort_for_task", "prepare_synthetic",
           "synthetic_name"]

LICENCE = "cc-by-4.0"


@dataclass(frozen=True)
class Cohort:
    """A synthetic cohort: its generator module (``NAME``, ``VERSION``, ``OFFICIAL_SEED``,
    ``TASK``, ``generate_cohort``, ``cohort_rows``, ``provenance``) and its card body."""

    module: ModuleType
    card: Callable[[Manifest], str]


#: The synthetic cohorts by dataset name.
COHORTS: dict[str, Cohort] = {
    generator.NAME: Cohort(generator, synthetic_card),
    residual.NAME: Cohort(residual, residual_card),
}
DEFAULT_COHORT = generator.NAME


def cohort_for_task(task: str) -> str:
    """The synthetic cohort that serves ``task`` (a registered task's name)."""
    for name, cohort in COHORTS.items():
        if cohort.module.TASK.name == task:
            return name
    raise DatasetError(f"no synthetic cohort serves task {task}; synthetic cohorts: "
                       + ", ".join(f"{n} ({c.module.TASK.name})" for n, c in COHORTS.items()))


def _cohort(dataset: str) -> Cohort:
    if dataset not in COHORTS:
        raise DatasetError(f"{dataset!r} is not a synthetic cohort; expected one of "
                           f"{', '.join(COHORTS)}")
    return COHORTS[dataset]


def synthetic_name(seed: int | None, dataset: str = DEFAULT_COHORT) -> str:
    """``<cohort>`` (e.g. ``tsb-synthetic``) for its official seed, ``<cohort>-seed<N>`` for
    any other."""
    module = _cohort(dataset).module
    if seed is None or seed == module.OFFICIAL_SEED:
        return module.NAME
    return f"{module.NAME}-seed{seed}"


def prepare_synthetic(
    home: Path | None = None,
    seed: int | None = None,
    *,
    force: bool = False,
    preview: Path | None = None,
    counts: dict[str, tuple[int, ...]] | None = None,
    progress: bool = True,
    workers: int | None = None,
    dataset: str = DEFAULT_COHORT,
    private_labels: str | Sequence[str] | None = None,
    labels_file: Path | None = None,
) -> Path:
    """Build the synthetic cohort ``dataset`` (default tsb-synthetic 1.0.0; or tsb-residual),
    or a seeded variant, under ``home`` and return its folder.

    An existing complete version is kept unless ``force``. ``counts`` (per
    split, in class order) builds a smaller unofficial variant, for tests.
    ``preview`` also writes a PNG grid of example images per class and centre.
    ``workers`` processes render the phantoms (default: every core); the images do
    not depend on it. ``private_labels`` (evaluation splits, e.g. ``"external"``) withholds
    their labels (:mod:`thyroid_bench.data.private`): an unofficial variant named
    ``<cohort>-private``, its labels in the organisers' file ``labels_file`` (default
    ``<home>/private/<name>@<version>/labels.csv``).
    """
    cohort = _cohort(dataset)
    module = cohort.module
    seed = module.OFFICIAL_SEED if seed is None else seed
    withheld = private.private_splits(private_labels, module.TASK)
    name = synthetic_name(seed, dataset) + ("" if counts is None else "-mini")
    name = private.private_name(name) if withheld else name
    home = Path(home) if home is not None else default_home()
    if withheld:
        labels_file = labels_file or private.default_labels_path(home, name, module.VERSION)
    target = home / name / module.VERSION
    if withheld:  # checked before any phantom is rendered
        private.check_labels_path(labels_file, target)
    if (target / "manifest.json").is_file() and not force:
        _say(f"{name} {module.VERSION} already prepared at {target} (use --force to rebuild)",
             progress)
    else:
        start = time.perf_counter()
        workers = max(1, int(workers or os.cpu_count() or 1))
        _say(f"generating {name} {module.VERSION} (seed {seed}): phantoms, collimator blur, "
             f"Poisson noise, three simulated readers ({workers} process(es))", progress)
        # Sampled and read now, rendered as the writer draws each shard's images: the cohort is
        # never in memory whole.
        splits = module.cohort_rows(seed, counts=counts, progress=progress, workers=workers)
        _say("rendering and writing 16-bit PNGs, parquet shards, manifest and card", progress)
        write_dataset(
            name, module.VERSION, splits, home=home, provenance=_provenance(module, seed, counts),
            task=module.TASK, licence=LICENCE, card=cohort.card, synthetic=True, force=force,
            private_labels=withheld, labels_file=labels_file,
        )
        _say(f"built in {time.perf_counter() - start:.1f} s", progress)
    _check_official(target, progress)
    if withheld:
        _say(private.labels_message(labels_file, withheld), progress)
    if preview is not None:
        from thyroid_bench.data.preview import render_preview

        render_preview(None, Path(preview), dataset_path=target)
        _say(f"preview written to {preview}", progress)
    return target


def _provenance(module: ModuleType, seed: int, counts: dict | None) -> dict[str, Any]:
    import numpy
    import scipy

    prov = dict(module.provenance(seed))
    # The phantoms depend on numpy's generators and scipy's filters: record which built them.
    prov["built_with"] = {"numpy": numpy.__version__, "scipy": scipy.__version__}
    if counts is not None:
        prov["counts_override"] = {k: list(v) for k, v in counts.items()}
    return prov


def _check_official(target: Path, progress: bool) -> None:
    manifest = read_manifest(target)
    pinned = pinned_fingerprint(manifest.name, manifest.version)
    if pinned is None:
        return
    if manifest.fingerprint == pinned:
        _say(f"fingerprint {pinned[:16]}... matches the official {manifest.name} "
             f"{manifest.version}", progress)
    else:
        print(f"warning: {target} has fingerprint {manifest.fingerprint[:16]}..., not the "
              f"official {pinned[:16]}...: results on it are not comparable with the "
              "leaderboard (different numpy/scipy versions can change the phantoms); "
              "report this with `pip freeze`", file=sys.stderr)


def _say(message: str, progress: bool) -> None:
    if progress:
        print(message, file=sys.stderr)
