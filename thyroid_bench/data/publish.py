"""``thyroid-bench publish``: put a verified dataset version on the Hugging Face Hub.

What is uploaded is the version folder, exactly: the card (``README.md``), ``manifest.json``,
the shards the manifest lists and, for a DICOM build, ``rejected.csv``, under the same names,
in one commit (all files or none). The card is the one file whose bytes differ: the published
card (:func:`~thyroid_bench.data.card.published_card`) adds how to load the version from its
repository and, for gated access, the access terms in its front matter. The content
fingerprint covers the shards' decoded content, not the card, so ``prepare --source hub`` then
``verify`` give the fingerprint the folder has here.

Nothing reaches the Hub unless, in this order:

1. the folder holds the dataset's files and nothing else (:func:`dataset_files`): a note, an
   editor's backup, a link or a temporary file is refused by name, as ``verify`` never read it;
2. ``verify`` passes, and a version named like a released one has its pinned fingerprint;
3. a last de-identification scan finds no identifier of the archive in any text that would be
   published (:func:`scan_for_identifiers` over :func:`~thyroid_bench.data.texts.folder_texts`:
   the card, manifest, ``rejected.csv``, column names, metadata, string cells and PNG text
   chunks of every shard, the file names; and what the published card adds: the repository's
   name and branch, the access terms). The index is the one
   ``prepare --source dicom`` kept beside the key file
   (:mod:`~thyroid_bench.data.dicom.identifier_index`), so a DICOM build needs ``--key-file``.
   A synthetic version holds no patient data and has no index: publish says so and goes on;
   so it does, saying so, for a version not built from an archive by thyroid-bench. A finding
   is named by file and line (or column and row), never by the identifier;
4. every file is byte for byte the one verified (its SHA-256 before verification equals the
   one uploaded).

Then, on the Hub: the dataset repository is created if missing (``--private``: private, made
so if it exists; otherwise a new repository gets its owner's default visibility and an existing
one keeps its own), gated access with manual approval is turned on before any file goes up
(``--gated TEXT``), the branch is created from the default branch if missing (``--revision``),
and one commit adds the files and removes the dataset files of an earlier version that this one
does not have (other shard counts, a ``rejected.csv``); other files of the repository stay. A
failure is one line saying what was done on the Hub so far; the commit is atomic, so no file
was uploaded.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from thyroid_bench.data.card import gated_text_problem, published_card
from thyroid_bench.data.dicom.deid import key_id
from thyroid_bench.data.dicom.identifier_index import (
    KeyedIdentifierIndex,
    identifier_index_path,
    read_identifier_index,
)
from thyroid_bench.data.format import resolve_dataset
from thyroid_bench.data.hub import hub_errors, token_api
from thyroid_bench.data.manifest import Manifest, read_manifest
from thyroid_bench.data.official import pinned_fingerprint
from thyroid_bench.data.texts import Text, folder_texts
from thyroid_bench.data.verify import verify_or_raise
from thyroid_bench.errors import DatasetError, os_error_line, printable
from thyroid_bench.hashing import sha256_file

__all__ = ["PublishError", "PublishResult", "publish_dataset", "check_publish_options",
           "dataset_files", "identifier_index_for", "scan_for_identifiers"]

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}/[A-Za-z0-9][A-Za-z0-9._-]{0,95}$")
_REVISION = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/-]{0,99}$")
_CARD, _MANIFEST, _REJECTED = "README.md", "manifest.json", "rejected.csv"
_NOTHING = "nothing was uploaded"
_MAX_LISTED = 10


class PublishError(DatasetError):
    """Publishing was refused or failed; the message says what was done on the Hub, if anything."""


@dataclass(frozen=True)
class PublishResult:
    """What :func:`publish_dataset` did."""

    repo_id: str
    revision: str | None
    url: str
    commit_url: str | None
    files: tuple[str, ...]  # uploaded, paths in the repository
    removed: tuple[str, ...]  # dataset files of an earlier version removed from the repository
    fingerprint: str
    scan: str  # what the identifier scan covered, or why there was none


def publish_dataset(dataset: str | os.PathLike, repo_id: str, *, private: bool = False,
                    revision: str | None = None, gated: str | None = None,
                    key_file: Path | None = None, home: Path | None = None, api: Any = None,
                    progress: Callable[[str], None] | None = None,
                    public: bool = False) -> PublishResult:
    """Verify, scan and upload dataset version ``dataset`` (name, ``name@version`` or folder)
    to Hub dataset repository ``repo_id`` (module docstring). A version that is not synthetic
    goes up private or gated unless ``public`` says it may be open to all. ``api`` stands in for
    ``huggingface_hub.HfApi`` (tests); ``progress`` receives one line per step."""
    say = progress or (lambda line: None)
    check_publish_options(repo_id, revision, gated)
    path = resolve_dataset(dataset, home=home)
    manifest = read_manifest(path)
    index, scope = identifier_index_for(manifest, key_file)
    _check_visibility(manifest, private=private, gated=gated, public=public)
    api = _default_api(repo_id) if api is None else api
    files = dataset_files(path, manifest)
    card_bytes = _read_bytes(path / _CARD)
    digests = {rel: sha256_file(path / rel) for rel in files if rel != _CARD}
    size = len(card_bytes) + sum((path / rel).stat().st_size for rel in digests)
    say(f"publishing {manifest.name} {manifest.version} ({path}) to {_where(repo_id, revision)}: "
        f"{len(files)} files, {size / 1e6:.1f} MB")
    say("verifying ...")
    manifest = _verified(path, manifest)
    say(f"verified: fingerprint {manifest.fingerprint}")
    card = _published_card(card_bytes, path, manifest, repo_id, revision, gated)
    texts = [*folder_texts(path, files), Text("the repository (--repo, --revision)",
                                               f"{repo_id} {revision or ''}")]
    texts += [Text("the access terms (--gated)", gated)] if gated is not None else []
    if index is None:
        say(f"identifier scan: none: {scope}")
    else:
        say(f"identifier scan: {len(texts)} texts against {scope} ...")
        _refuse_findings(scan_for_identifiers(texts, index), path)
        say("identifier scan: no identifier of the archive found")
    operations = _operations(path, files, card, digests)
    commit_url, removed = _upload(api, manifest, repo_id, revision, private, gated, operations, say)
    return PublishResult(repo_id=repo_id, revision=revision, commit_url=commit_url,
                         url=f"https://huggingface.co/datasets/{repo_id}", files=tuple(files),
                         removed=removed, fingerprint=manifest.fingerprint,
                         scan=scope if index is not None else f"none: {scope}")


def _check_visibility(manifest: Manifest, *, private: bool, gated: str | None, public: bool) -> None:
    """Patient data is never made open to all by default: a version that is not synthetic needs
    ``--private``, ``--gated`` or an explicit ``--public``."""
    if manifest.synthetic or private or gated is not None or public:
        return
    raise PublishError(f"{manifest.name} {manifest.version} is not synthetic: it holds patients' "
                       "images, so it goes to the Hub --private or --gated TEXT (each user agrees "
                       "to your terms and you approve them); pass --public only if your ethics "
                       "approval and licence allow anyone to download it")


def _where(repo_id: str, revision: str | None) -> str:
    return f"{repo_id}@{revision}" if revision else repo_id


def check_publish_options(repo_id: str, revision: str | None, gated: str | None) -> None:
    """Refuse a repository id that is not ``ORG/NAME``, an odd branch name or unusable access
    terms, before anything is read."""
    if not _REPO_ID.match(repo_id or "") or ".." in repo_id or "--" in repo_id:
        raise PublishError(f"--repo {repo_id!r}: expected ORG/NAME (letters, digits, '.', '_', '-'; "
                           "no '--' or '..'), the Hub dataset repository, e.g. my-lab/thyroid-scans")
    if revision is not None and (not _REVISION.match(revision) or ".." in revision):
        raise PublishError(f"--revision {revision!r}: expected a branch name (letters, digits, "
                           "'.', '_', '-', '/'), e.g. v1 or release-2024")
    problem = gated_text_problem(gated) if gated is not None else None
    if problem:
        raise PublishError(f"--gated: the access terms cannot be used: {problem}; give the "
                           "terms a user agrees to, in one paragraph")


def _read_bytes(file: Path) -> bytes:
    try:
        return file.read_bytes()
    except OSError as exc:
        raise PublishError(os_error_line(exc, "reading the dataset card")) from None


def dataset_files(folder: Path, manifest: Manifest) -> list[str]:
    """The files of version folder ``folder`` (paths relative to it, ``/``-separated, sorted):
    card, manifest, the shards the manifest lists (``data/<split>-*.parquet`` for a split that
    lists none) and ``rejected.csv`` if present. Anything else under the folder (another file,
    a link, a missing card or shard) is a :class:`PublishError` naming it."""
    folder = Path(folder)
    listed = {f for meta in manifest.splits.values() for f in meta.files}
    unlisted = tuple(f"data/{s}-" for s, meta in manifest.splits.items() if not meta.files)
    found, strange = [], []
    for root, dirs, names in os.walk(folder):
        for name in (*dirs, *names):
            p = Path(root) / name
            rel = p.relative_to(folder).as_posix()
            if p.is_symlink() or (name in names and not p.is_file()):
                strange.append(rel)
            elif name in names:
                ours = (rel in (_CARD, _MANIFEST, _REJECTED) or rel in listed
                        or (rel.startswith(unlisted) and rel.endswith(".parquet")))
                (found if ours else strange).append(rel)
    if strange:
        named = ", ".join(printable(s) for s in sorted(strange)[:_MAX_LISTED])
        raise PublishError(
            f"{folder} holds {len(strange)} file(s) that are not part of the dataset (card, "
            f"manifest, shards, rejected.csv): {named}; verify never read them, so they are not "
            f"published: move them out of the folder and publish again; {_NOTHING}")
    missing = sorted({_CARD, _MANIFEST, *listed} - set(found))
    if missing:
        raise PublishError(f"{folder} lacks {', '.join(missing)}: not a complete dataset version; "
                           f"rebuild it with `thyroid-bench prepare --force`; {_NOTHING}")
    return sorted(found)


def _verified(path: Path, manifest: Manifest) -> Manifest:
    """``verify`` passes, and a version named like a released one is that release."""
    manifest = verify_or_raise(path, what=f"dataset {path}", consequence=_NOTHING)
    pinned = pinned_fingerprint(manifest.name, manifest.version)
    if pinned is not None and pinned != manifest.fingerprint:
        raise PublishError(f"{path} is named {manifest.name} {manifest.version}, a released "
                           f"version, but its fingerprint {manifest.fingerprint[:16]}... is not the "
                           f"pinned {pinned[:16]}...: publish it under another name or version; "
                           f"{_NOTHING}")
    return manifest


def _published_card(card_bytes: bytes, path: Path, manifest: Manifest, repo_id: str,
                    revision: str | None, gated: str | None) -> str:
    try:
        return published_card(card_bytes.decode("utf-8"), manifest, repo_id, revision, gated)
    except (UnicodeDecodeError, ValueError) as exc:
        raise PublishError(f"{path / _CARD}: cannot make the published card ({exc}); rebuild the "
                           f"dataset or restore its card's YAML front matter; {_NOTHING}") from None


# --------------------------------------------------------------------------- identifiers
def identifier_index_for(manifest: Manifest, key_file: Path | None
                         ) -> tuple[KeyedIdentifierIndex | None, str]:
    """The identifier index to scan ``manifest``'s version against, and a line on what the scan
    covers (or why there is none). A DICOM build needs ``key_file``, the key prepare used; the
    index lies beside it (:func:`~thyroid_bench.data.dicom.identifier_index.identifier_index_path`)."""
    prov = manifest.provenance
    pseud = prov.get("pseudonymisation") if isinstance(prov.get("pseudonymisation"), dict) else {}
    if prov.get("source") != "dicom" and "key_id" not in pseud:
        what = ("a synthetic dataset (phantoms, no patient data)" if manifest.synthetic else
                "not built from a DICOM archive by thyroid-bench, so no identifiers of an archive "
                "are known: publish only data you have de-identified yourself")
        return None, f"{manifest.name} {manifest.version} is {what}; there is no identifier index"
    built_with = pseud.get("key_id", "?")
    if key_file is None:
        raise PublishError(
            f"{manifest.name} {manifest.version} was built from a DICOM archive (key id "
            f"{built_with}): pass --key-file, the key `prepare --source dicom` used, so that every "
            "text is scanned against the identifier index prepare kept beside it; " + _NOTHING)
    key_file = Path(key_file).expanduser()
    try:
        key = key_file.read_bytes()
    except OSError as exc:
        raise PublishError(os_error_line(exc, "--key-file: reading the pseudonym key",
                                         "pass the key file prepare used")) from None
    if key_id(key) != built_with:
        raise PublishError(f"--key-file {printable(key_file)} (key id {key_id(key)}) is not the key "
                           f"{manifest.name} {manifest.version} was built with (key id "
                           f"{built_with}): pass the key prepare used; {_NOTHING}")
    where = identifier_index_path(key_file, manifest.name, manifest.version)
    try:
        index = read_identifier_index(where, key, manifest.name, manifest.version)
    except DatasetError as exc:
        raise PublishError(f"{exc}; {_NOTHING}") from None
    return index, f"{len(index)} identifier phrases of the archive ({printable(where)})"


def scan_for_identifiers(texts: Iterable[Text], index: KeyedIdentifierIndex) -> list[str]:
    """Where an identifier of ``index`` occurs in ``texts``: each text's place (with line
    numbers for a text placed by lines), never the identifier."""
    findings = []
    for text in texts:
        lines = index.find(text.text)
        if lines:
            at = f" line {', '.join(str(n) for n in lines[:5])}" if text.lines else ""
            findings.append(f"{text.where}{at}")
    return findings


def _refuse_findings(findings: list[str], path: Path) -> None:
    if not findings:
        return
    more = f" and {len(findings) - _MAX_LISTED} more" if len(findings) > _MAX_LISTED else ""
    raise PublishError(
        f"{path}: {len(findings)} place(s) hold an identifier of the archive (a name, ID, UID or "
        f"date from its DICOM headers; not shown here): {'; '.join(findings[:_MAX_LISTED])}{more}. "
        "Remove it (edit the card; anything else: rebuild with `thyroid-bench prepare --source "
        f"dicom ... --force`) and publish again; {_NOTHING}")


# --------------------------------------------------------------------------- the Hub
def _default_api(repo_id: str) -> Any:
    api = token_api()
    if api is None:
        raise PublishError("no Hugging Face token: log in with `hf auth login` or set HF_TOKEN (a "
                           f"token with write access to {repo_id}) and publish again; {_NOTHING}")
    return api


def _operations(path: Path, files: list[str], card: str, digests: dict[str, str]) -> list[Any]:
    """One addition per file (the card as published); each file must still be the one verified."""
    from huggingface_hub import CommitOperationAdd

    operations = []
    for rel in files:
        if rel == _CARD:
            operations.append(CommitOperationAdd(path_in_repo=rel, path_or_fileobj=card.encode("utf-8")))
            continue
        op = CommitOperationAdd(path_in_repo=rel, path_or_fileobj=str(path / rel))
        if op.upload_info.sha256.hex() != digests[rel]:
            raise PublishError(f"{path / rel} changed while the dataset was being verified: "
                               f"let whatever writes it finish, then publish again; {_NOTHING}")
        operations.append(op)
    return operations


def _is_dataset_path(rel: str) -> bool:
    """A repository file that a dataset version of format v1 consists of."""
    return rel in (_CARD, _MANIFEST, _REJECTED) or rel.startswith("data/")


def _upload(api: Any, manifest: Manifest, repo_id: str, revision: str | None, private: bool,
            gated: str | None, operations: list[Any], say: Callable[[str], None]
            ) -> tuple[str | None, tuple[str, ...]]:
    """Repository, access, branch, then one commit; returns the commit's URL and what it removed."""
    from huggingface_hub import CommitOperationDelete

    done: list[str] = []

    def hub(doing: str, call: Callable[[], Any]) -> Any:
        return _hub_call(doing, call, repo_id, revision, done)

    hub("create or find the dataset repository", lambda: api.create_repo(
        repo_id, repo_type="dataset", private=True if private else None, exist_ok=True))
    done.append(f"the dataset repository {repo_id} exists (created or found)")
    access = ", ".join(["private"] * private + ["gated, manual approval"] * (gated is not None))
    if access:
        hub("set its access", lambda: api.update_repo_settings(
            repo_id, repo_type="dataset", private=True if private else None,
            gated="manual" if gated is not None else None))
        done.append(f"its access is set ({access})")
    say(f"Hub: dataset repository {repo_id} ready" + (f" ({access})" if access else ""))
    if revision:
        hub(f"create branch {revision}", lambda: api.create_branch(
            repo_id, branch=revision, repo_type="dataset", exist_ok=True))
        done.append(f"branch {revision} exists")
    existing = hub("list its files", lambda: api.list_repo_files(repo_id, repo_type="dataset",
                                                                 revision=revision))
    names = {op.path_in_repo for op in operations}
    removed = tuple(sorted(f for f in existing if _is_dataset_path(f) and f not in names))
    say(f"Hub: uploading {len(operations)} files in one commit to {_where(repo_id, revision)}"
        + (f", removing {len(removed)} file(s) of an earlier version: {', '.join(removed[:5])}"
           if removed else ""))
    info = hub("upload the files", lambda: api.create_commit(
        repo_id=repo_id, repo_type="dataset", revision=revision,
        operations=[*operations, *(CommitOperationDelete(path_in_repo=f) for f in removed)],
        commit_message=f"Publish {manifest.name} {manifest.version} with thyroid-bench",
        commit_description=f"Dataset {manifest.name} {manifest.version}, task {manifest.task}, "
                           f"fingerprint {manifest.fingerprint}."))
    commit_url = getattr(info, "commit_url", None)
    say(f"Hub: uploaded: {commit_url or repo_id}")
    return commit_url, removed


def _hub_call(doing: str, call: Callable[[], Any], repo_id: str, revision: str | None,
              done: list[str]) -> Any:
    """``call()``, its Hub or network failure a :class:`PublishError` of one line."""
    try:
        return call()
    except hub_errors() as exc:
        state = (f"on the Hub so far: {'; '.join(done)}; no file was uploaded" if done
                 else "nothing was done on the Hub")
        raise PublishError(f"could not {doing} ({repo_id} on the Hugging Face Hub): "
                           f"{_describe(exc)}; {_advice(exc, repo_id, revision)}; {state}") from None


def _status(exc: BaseException) -> int | None:
    status = getattr(getattr(exc, "response", None), "status_code", None)
    return status if isinstance(status, int) else None


def _describe(exc: BaseException) -> str:
    first = " ".join(str(exc).split("\n", 1)[0].split())
    return f"{type(exc).__name__}: {first[:200]}" if first else type(exc).__name__


def _advice(exc: BaseException, repo_id: str, revision: str | None) -> str:
    status, org = _status(exc), repo_id.split("/", 1)[0]
    if type(exc).__name__ == "LocalTokenNotFoundError" or status == 401:
        return "log in again (`hf auth login`) or set HF_TOKEN to a token with write access"
    if status == 403:
        return (f"your token may not write to {repo_id}: use a token with write access, of an "
                f"account that may create and write dataset repositories under {org}")
    if status == 404:
        return (f"{repo_id}" + (f" or its revision {revision}" if revision else "")
                + " was not found, or your token cannot see it: check the names and the token")
    if status is not None and status >= 500:
        return "the Hub had a problem: try again later"
    if status is not None:
        return "the Hub refused the request: check the repository, the branch and the token"
    return "check the network (and any proxy or HF_ENDPOINT setting) and publish again"
