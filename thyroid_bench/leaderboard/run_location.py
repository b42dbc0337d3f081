"""Where a run folder is: a local folder, or a folder of a Hugging Face Hub repository.

Checkpoints stay out of the leaderboard and out of git; a reproduction reads them from the
run folder, which may be kept on the Hub. A Hub location is written the way
``huggingface_hub``'s own file system (``HfFileSystem``) writes paths::

    hf://[datasets/|models/|spaces/]ORG/REPO[@REVISION]/PATH/TO/RUN

the repository type before its id (a model repository when none is given), a branch, tag or
commit after ``@``, then the run folder's path inside the repository (none: the repository
root is the run folder). Only the files a reproduction reads are downloaded, with
``huggingface_hub.snapshot_download`` and a pattern per file: ``config.json``,
``entry.json``, ``predictions/*.csv`` and, to evaluate, ``model.safetensors``; never a
pickle, nothing else of the repository.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from thyroid_bench.leaderboard.errors import ReproductionError

__all__ = ["HUB_SCHEME", "RUN_FILES", "CHECKPOINT_FILE", "HubLocation", "is_hub_location",
           "parse_hub_location", "download", "fetch_run_folder"]

HUB_SCHEME = "hf://"
#: The small files of a run folder a reproduction reads (patterns relative to the folder).
RUN_FILES = ("config.json", "entry.json", "predictions/*.csv")
#: The checkpoint, downloaded only to evaluate.
CHECKPOINT_FILE = "model.safetensors"

_REPO_TYPES = {"datasets": "dataset", "models": "model", "spaces": "space"}
_PART = r"[A-Za-z0-9][A-Za-z0-9._-]{0,95}"
_LOCATION = re.compile(rf"^(?:(?P<type>datasets|models|spaces)/)?(?P<repo>{_PART}/{_PART})"
                       rf"(?:@(?P<rev>[A-Za-z0-9._-]{{1,128}}))?(?P<path>(?:/{_PART})*)/?$")


@dataclass(frozen=True)
class HubLocation:
    """A folder of a Hub repository: repository id and type, revision, path inside it."""

    repo_id: str
    repo_type: str = "model"
    revision: str | None = None
    path: str = ""  # POSIX, no leading or trailing slash; "" for the repository root

    def __str__(self) -> str:
        kind = "" if self.repo_type == "model" else f"{self.repo_type}s/"
        rev = f"@{self.revision}" if self.revision else ""
        return f"{HUB_SCHEME}{kind}{self.repo_id}{rev}{'/' + self.path if self.path else ''}"

    def child(self, rel: str) -> HubLocation:
        """The folder ``rel`` (POSIX) below this one."""
        path = "/".join(p for p in (self.path, rel.strip("/")) if p)
        return HubLocation(self.repo_id, self.repo_type, self.revision, path)


def is_hub_location(location: str | os.PathLike) -> bool:
    """Whether ``location`` is written as a Hub location (``hf://...``)."""
    return isinstance(location, str) and location.startswith(HUB_SCHEME)


def parse_hub_location(text: str) -> HubLocation:
    """``hf://[datasets/|models/|spaces/]ORG/REPO[@REVISION][/PATH]`` (:class:`ReproductionError`
    saying how to write one otherwise)."""
    m = _LOCATION.match(text[len(HUB_SCHEME):]) if is_hub_location(text) else None
    if m is None:
        raise ReproductionError(f"{text!r} is not a Hub location; write hf://ORG/REPO/path/to/run "
                                "(a model repository), hf://datasets/ORG/REPO@REVISION/path/to/run "
                                "(a dataset repository at a branch, tag or commit), or a local "
                                "folder")
    return HubLocation(m["repo"], _REPO_TYPES[m["type"] or "models"], m["rev"],
                       m["path"].strip("/"))


def download(location: HubLocation, dest: Path, patterns: Sequence[str]) -> Path:
    """Download the files of ``location`` matching ``patterns`` (relative to its folder, as
    ``snapshot_download`` matches them) into ``dest``; returns the folder's local copy."""
    from huggingface_hub import snapshot_download
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError

    prefix = f"{location.path}/" if location.path else ""
    try:
        snapshot_download(repo_id=location.repo_id, repo_type=location.repo_type,
                          revision=location.revision, local_dir=dest,
                          allow_patterns=[prefix + p for p in patterns])
    except (LocalEntryNotFoundError, HfHubHTTPError, OSError, ValueError) as exc:
        raise ReproductionError(f"could not download {location} from the Hugging Face Hub "
                                f"({type(exc).__name__}: {exc}); check the network and the "
                                "location, or download the run folder and give its path") from None
    shutil.rmtree(dest / ".cache", ignore_errors=True)  # huggingface_hub's own bookkeeping
    return dest.joinpath(*location.path.split("/")) if location.path else dest


def fetch_run_folder(location: str | os.PathLike, dest: Path, *, checkpoint: bool = True) -> Path:
    """The run folder at ``location`` as a local folder: a local one as it is, a Hub one
    downloaded into ``dest`` (its config, entry and predictions, and with ``checkpoint``
    its ``model.safetensors``)."""
    if not is_hub_location(location):
        folder = Path(location)
        if not folder.is_dir():
            raise ReproductionError(f"{folder}: no such run folder")
        return folder
    hub = parse_hub_location(str(location))
    folder = download(hub, dest, [*RUN_FILES, *((CHECKPOINT_FILE,) if checkpoint else ())])
    if not folder.is_dir():
        raise ReproductionError(f"{hub}: no run folder there (no config.json, entry.json or "
                                "model.safetensors in the repository at that path)")
    return folder
