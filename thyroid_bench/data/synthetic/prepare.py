"""``thyroid-bench prepare`` for the synthetic reference cohort: generate, write, check.

The physics and readers live in :mod:`thyroid_bench.data.synthetic.generator`; this module
turns a generated cohort into a dataset version (format v1) with its card, and
compares the result with the fingerprint pinned for the official release.
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path
from typing import Any

from thyroid_bench.data.card import synthetic_card
from thyroid_bench.data.format import default_home, write_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.synthetic import generator as synthetic

__all__ = ["prepare_synthetic", "synthetic_name"]

LICENCE = "cc-by-4.0"


def synthetic_name(seed: int | None) -> str:
    """``tsb-synthetic`` for the official seed, ``tsb-synthetic-seed<N>`` for any other."""
    if seed is None or seed == synthetic.OFFICIAL_SEED:
        return synthetic.NAME
    return f"{synthetic.NAME}-seed{seed}"


def prepare_synthetic(
    home: Path | None = None,
    seed: int | None = None,
    *,
    force: bool = False,
    preview: Path | None = None,
    counts: dict[str, tuple[int, ...]] | None = None,
    progress: bool = True,
    workers: int | None = None,
) -> Path:
    """Build tsb-synthetic 1.0.0 (or a seeded variant) under ``home`` and return its folder.

    An existing complete version is kept unless ``force``. ``counts`` (per
    split, in class order) builds a smaller unofficial variant, for tests.
    ``preview`` also writes a PNG grid of example images per class and centre.
    ``workers`` processes render the phantoms (default: every core); the images do
    not depend on it.
    """
    seed = synthetic.OFFICIAL_SEED if seed is None else seed
    name = synthetic_name(seed) if counts is None else f"{synthetic_name(seed)}-mini"
    home = Path(home) if home is not None else default_home()
    target = home / name / synthetic.VERSION
    if (target / "manifest.json").is_file() and not force:
        _say(f"{name} {synthetic.VERSION} already prepared at {target} (use --force to rebuild)",
             progress)
    else:
        start = time.perf_counter()
        workers = max(1, int(workers or os.cpu_count() or 1))
        _say(f"generating {name} {synthetic.VERSION} (seed {seed}): phantoms, collimator blur, "
             f"Poisson noise, three simulated readers ({workers} process(es))", progress)
        cohort = synthetic.generate_cohort(seed, counts=counts, progress=progress, workers=workers)
        _say("writing 16-bit PNGs, parquet shards, manifest and card", progress)
        write_dataset(
            name, synthetic.VERSION, cohort, home=home, provenance=_provenance(seed, counts),
            task=synthetic.TASK, licence=LICENCE, card=synthetic_card, synthetic=True, force=force,
        )
        _say(f"built in {time.perf_counter() - start:.1f} s", progress)
    _check_official(target, progress)
    if preview is not None:
        from thyroid_bench.data.preview import render_preview

        render_preview(None, Path(preview), dataset_path=target)
        _say(f"preview written to {preview}", progress)
    return target


def _provenance(seed: int, counts: dict | None) -> dict[str, Any]:
    import numpy
    import scipy

    prov = dict(synthetic.provenance(seed))
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
