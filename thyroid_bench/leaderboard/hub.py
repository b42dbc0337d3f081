"""Results on the Hugging Face Hub: a pull request with new entries (:func:`push_to_hub`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from thyroid_bench.data.hub import hub_errors, token_api
from thyroid_bench.leaderboard.errors import HubError
from thyroid_bench.leaderboard.reproduce import RECORD_FILE
from thyroid_bench.leaderboard.store import StoredEntry
from thyroid_bench.leaderboard.withheld import SCORES_FILE

__all__ = ["push_to_hub"]


def push_to_hub(entries: Sequence[StoredEntry], repo_id: str, *, api: Any = None,
                commit_message: str | None = None) -> str | None:
    """Open a pull request on Hub dataset repository ``repo_id`` adding these entries.

    Each entry's ``entry.json`` and the predictions of its task's evaluation splits go
    under the leaderboard's relative layout (``entries/<task>/<dataset>@<version>/<entry
    id>/...``). ``api`` defaults to ``huggingface_hub.HfApi`` with the stored token.
    Returns the pull request's URL. Raises :class:`HubError` with what to do when there
    is no token or the Hub is unreachable or refuses.
    """
    api = _default_api(repo_id) if api is None else api
    ids = ", ".join(s.entry_id for s in entries)
    message = commit_message or f"Add leaderboard entr{'y' if len(entries) == 1 else 'ies'} {ids}"
    try:
        info = api.create_commit(repo_id=repo_id, repo_type="dataset", operations=_operations(entries),
                                 commit_message=message, create_pr=True)
    except hub_errors() as exc:
        raise HubError(f"could not open a pull request on Hub dataset repository {repo_id!r}: "
                       f"{type(exc).__name__}: {exc}. Check the network, that the repository "
                       "exists and that your token (hf auth login / HF_TOKEN) may write to it; "
                       "nothing was added to the local leaderboard") from None
    return getattr(info, "pr_url", None)


def _default_api(repo_id: str) -> Any:
    api = token_api()
    if api is None:
        raise HubError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN "
                       f"(a token with write access to {repo_id}) and submit again")
    return api


def _operations(entries: Sequence[StoredEntry]) -> list:
    """One file addition per entry.json, predictions file and reproduction record."""
    from huggingface_hub import CommitOperationAdd

    operations = []
    for stored in entries:
        operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/entry.json",
                                             path_or_fileobj=str(stored.folder / "entry.json")))
        for split in stored.task.eval_splits:
            rel = stored.entry.predictions[split].path
            operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/{rel}",
                                                 path_or_fileobj=str(stored.predictions_path(split))))
        if (stored.folder / RECORD_FILE).is_file():  # a passed reproduction (submit --reproduce)
            operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/{RECORD_FILE}",
                                                 path_or_fileobj=str(stored.folder / RECORD_FILE)))
        if (stored.folder / SCORES_FILE).is_file():  # withheld splits' figures (submit --private-labels)
            operations.append(CommitOperationAdd(path_in_repo=f"{stored.rel}/{SCORES_FILE}",
                                                 path_or_fileobj=str(stored.folder / SCORES_FILE)))
    return operations
