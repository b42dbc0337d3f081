"""``thyroid-bench prepare --source hub``: pull a published dataset version from the Hub.

A dataset version published on the Hugging Face Hub is the same folder as a
local one (manifest, card, parquet shards). It is downloaded beside its final
place, verified, and only then renamed into ``<home>/<name>/<version>``.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from thyroid_bench.atomic import make_temp_dir
from thyroid_bench.data.format import default_home
from thyroid_bench.data.verify import verify_or_raise
from thyroid_bench.errors import DatasetError

__all__ = ["prepare_hub", "hub_errors", "token_api"]


def prepare_hub(repo_id: str, *, revision: str | None = None, home: Path | None = None,
                force: bool = False, task: str | None = None) -> Path:
    """Download, verify and install a dataset version from a Hub dataset repository.

    With ``task``, the version must be a dataset of that task, or nothing is installed.
    """
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    home = Path(home) if home is not None else default_home()
    home.mkdir(parents=True, exist_ok=True)
    tmp = make_temp_dir(".tmp-hub-", home)
    try:
        try:
            snapshot_download(repo_id=repo_id, repo_type="dataset", revision=revision,
                              local_dir=tmp, allow_patterns=["manifest.json", "README.md",
                                                             "data/*.parquet", "rejected.csv"])
        except (LocalEntryNotFoundError, HfHubHTTPError, OSError) as exc:
            raise DatasetError(
                f"could not download dataset repository {repo_id!r} from the Hugging Face Hub "
                f"({type(exc).__name__}: {exc}); check the network and the repository id, or "
                "download the folder yourself and pass its path to thyroid-bench commands"
            ) from None
        shutil.rmtree(tmp / ".cache", ignore_errors=True)  # huggingface_hub's own bookkeeping
        manifest = verify_or_raise(tmp, what=repo_id, consequence="nothing was installed")
        if task is not None and manifest.task != task:
            raise DatasetError(f"{repo_id} holds {manifest.name} {manifest.version}, a dataset of task "
                               f"{manifest.task}, not {task}; nothing was installed")
        target = home / manifest.name / manifest.version
        if target.exists() and not force:
            raise DatasetError(f"{target} already exists; pass --force to replace it")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
        return target
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def token_api() -> Any | None:
    """A ``huggingface_hub.HfApi`` with the user's token (``hf auth login`` or ``HF_TOKEN``), or
    ``None`` when there is none: the writer of ``publish`` and ``submit --hub``."""
    from huggingface_hub import HfApi, get_token

    token = get_token()
    return HfApi(token=token) if token else None


def hub_errors() -> tuple[type[BaseException], ...]:
    """What ``huggingface_hub`` and its HTTP client (httpx2, httpx or requests, whichever the
    installed version uses) raise when the Hub refuses or cannot be reached: the exceptions a
    command turns into one line."""
    errors: list[type[BaseException]] = [OSError, ValueError, TimeoutError]
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"),
                         ("requests", "RequestException")):
        try:
            errors.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            pass
    return tuple(errors)
