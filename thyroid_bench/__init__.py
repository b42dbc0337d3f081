"""thyroid-bench: benchmark datasets, baselines and leaderboard for thyroid scintigraphy.

``thyroid_bench.load_dataset(name_or_path)`` opens a dataset version in format v1
and verifies its fingerprint; the ``thyroid-bench`` command line wraps the rest.
"""

from __future__ import annotations

from thyroid_bench.version import __version__

__all__ = ["__version__", "load_dataset"]


def load_dataset(name_or_path=None, *, home=None, verify: bool = True):
    """Load a dataset version as a ``datasets.DatasetDict`` (train / internal / external).

    ``name_or_path`` is a folder, a name (newest version under the home) or
    ``name@version``; ``None`` means the default ``tsb-synthetic``. With
    ``verify`` (the default) the content fingerprints are recomputed and must
    equal the manifest's, else :class:`thyroid_bench.errors.VerificationError`.
    """
    from thyroid_bench.data.format import load_dataset as _load

    return _load(name_or_path, home=home, verify=verify)
