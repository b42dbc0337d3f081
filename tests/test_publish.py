"""`thyroid-bench publish`: verified, scanned, uploaded exactly; tested against a stand-in Hub.

The stand-in (:class:`FakeHub`) keeps repositories in memory, records every call, and serves
them back to `prepare --source hub` through a stand-in `snapshot_download`, so the round trip
publish -> prepare --source hub -> verify runs offline.
"""

from __future__ import annotations

import csv
import fnmatch
import io
import shutil
import struct
import stat
from pathlib import Path

import huggingface_hub
import httpx2
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from huggingface_hub import CommitOperationDelete
from huggingface_hub.errors import HfHubHTTPError
from PIL import Image, PngImagePlugin

from thyroid_bench.cli import main
from thyroid_bench.data.card import GATED_FIELDS, published_card
from thyroid_bench.data.dicom.identifier_index import identifier_index_path
from thyroid_bench.data.dicom.ingest import prepare_dicom
from thyroid_bench.data.format import write_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.data.publish import PublishError, publish_dataset
from thyroid_bench.data.verify import verify_dataset
from thyroid_bench.errors import VerificationError
from thyroid_bench.testing.dicom_writer import make_identity, write_archive

SEED = 5
CARD = "# toy-pub 1.0.0\n\nA toy dataset.\n\n## Citation\n\nCite the toy.\n"


# --------------------------------------------------------------------------- the stand-in Hub
class FakeHub:
    """A stand-in for huggingface_hub.HfApi: repositories in memory, every call recorded;
    ``fail`` maps a method name to the exception it raises."""

    def __init__(self, fail: dict[str, BaseException] | None = None) -> None:
        self.repos: dict[str, dict] = {}
        self.calls: list[tuple[str, dict]] = []
        self.fail = fail or {}

    def _call(self, name: str, **kwargs) -> None:
        self.calls.append((name, kwargs))
        if name in self.fail:
            raise self.fail[name]

    def create_repo(self, repo_id, *, repo_type, private=None, exist_ok=False):
        self._call("create_repo", repo_id=repo_id, repo_type=repo_type, private=private,
                   exist_ok=exist_ok)
        assert repo_type == "dataset" and exist_ok
        self.repos.setdefault(repo_id, {"private": bool(private), "gated": False,
                                        "branches": {"main": {".gitattributes": b"*.parquet lfs\n"}}})

    def update_repo_settings(self, repo_id, *, repo_type, private=None, gated=None):
        self._call("update_repo_settings", repo_id=repo_id, repo_type=repo_type, private=private,
                   gated=gated)
        repo = self.repos[repo_id]
        repo["private"] = repo["private"] if private is None else private
        repo["gated"] = repo["gated"] if gated is None else gated

    def create_branch(self, repo_id, *, branch, repo_type, exist_ok=False):
        self._call("create_branch", repo_id=repo_id, branch=branch, repo_type=repo_type)
        branches = self.repos[repo_id]["branches"]
        branches.setdefault(branch, dict(branches["main"]))

    def list_repo_files(self, repo_id, *, repo_type, revision=None):
        self._call("list_repo_files", repo_id=repo_id, repo_type=repo_type, revision=revision)
        return sorted(self.repos[repo_id]["branches"][revision or "main"])

    def create_commit(self, *, repo_id, repo_type, operations, commit_message,
                      commit_description=None, revision=None):
        self._call("create_commit", repo_id=repo_id, repo_type=repo_type, revision=revision,
                   commit_message=commit_message)
        files = self.repos[repo_id]["branches"][revision or "main"]
        for op in operations:
            if isinstance(op, CommitOperationDelete):
                del files[op.path_in_repo]
            else:
                data = op.path_or_fileobj
                files[op.path_in_repo] = data if isinstance(data, bytes) else Path(data).read_bytes()

        class Info:
            commit_url = f"https://huggingface.co/datasets/{repo_id}/commit/abc123"
        return Info()

    def files(self, repo_id: str, revision: str = "main") -> dict[str, bytes]:
        return self.repos[repo_id]["branches"][revision]

    def snapshot_download(self, *, repo_id, repo_type, revision, local_dir, allow_patterns):
        """What huggingface_hub.snapshot_download would write from this stand-in."""
        for rel, data in self.files(repo_id, revision or "main").items():
            if any(fnmatch.fnmatch(rel, p) for p in allow_patterns):
                (Path(local_dir) / rel).parent.mkdir(parents=True, exist_ok=True)
                (Path(local_dir) / rel).write_bytes(data)
        return str(local_dir)

    def names(self) -> list[str]:
        return [name for name, _ in self.calls]


def _folder_files(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


@pytest.fixture
def home(tmp_path):
    return tmp_path / "home"


@pytest.fixture
def version(tiny_splits, home):
    """A synthetic version in the home: nothing of a patient in it, so no identifier index."""
    return write_dataset("toy-pub", "1.0.0", tiny_splits, home=home, synthetic=True, card=CARD,
                         licence="cc0-1.0", rows_per_shard=8)


# --------------------------------------------------------------------------- what is uploaded
def test_uploads_exactly_the_version_folder(version, home):
    hub, lines = FakeHub(), []
    result = publish_dataset("toy-pub@1.0.0", "org/toy", home=home, api=hub, progress=lines.append)
    local = _folder_files(version)
    uploaded = {k: v for k, v in hub.files("org/toy").items() if k != ".gitattributes"}
    assert sorted(uploaded) == sorted(local) == sorted(result.files)
    assert sorted(local) == ["README.md", "data/external-00000-of-00001.parquet",
                             "data/internal-00000-of-00001.parquet",
                             "data/train-00000-of-00003.parquet", "data/train-00001-of-00003.parquet",
                             "data/train-00002-of-00003.parquet", "manifest.json"]
    for rel in local:
        if rel != "README.md":
            assert uploaded[rel] == local[rel], rel
    # The card is the one file that differs: the local card plus the section on the repository.
    card = uploaded["README.md"].decode()
    manifest = read_manifest(version)
    assert card == published_card(local["README.md"].decode(), manifest, "org/toy")
    before, _, after = card.partition("<!-- thyroid-bench publish: begin -->")
    assert before + after.partition("<!-- thyroid-bench publish: end -->\n\n")[2] == local["README.md"].decode()
    assert 'datasets.load_dataset("org/toy")' in card
    assert "thyroid-bench prepare --source hub --repo-id org/toy " in card
    assert card.index("## On the Hugging Face Hub") < card.index("## Citation")
    assert hub.names() == ["create_repo", "list_repo_files", "create_commit"]
    assert hub.calls[0][1]["private"] is None  # the owner's default visibility for a new repository
    assert result.removed == () and result.fingerprint == manifest.fingerprint
    assert result.commit_url.endswith("/commit/abc123")
    assert "toy-pub 1.0.0 is a synthetic dataset (phantoms, no patient data); there is no " \
           "identifier index" in result.scan
    assert [line.split(":")[0] for line in lines] == [
        f"publishing toy-pub 1.0.0 ({version}) to org/toy", "verifying ...", "verified",
        "identifier scan", "Hub", "Hub", "Hub"]
    assert lines[-2] == "Hub: uploading 7 files in one commit to org/toy"


def test_private_revision_and_gating_are_passed_through(version, home):
    hub = FakeHub()
    terms = 'Research use only; do not try to identify anyone. "Clinical" data.'
    result = publish_dataset(version, "org/toy", home=home, api=hub, private=True, revision="v1",
                             gated=terms)
    assert hub.names() == ["create_repo", "update_repo_settings", "create_branch",
                           "list_repo_files", "create_commit"]  # access set before any upload
    calls = dict(hub.calls)
    assert calls["create_repo"]["private"] is True
    assert (calls["update_repo_settings"]["private"], calls["update_repo_settings"]["gated"]) == (True, "manual")
    assert calls["create_branch"]["branch"] == "v1" and calls["create_commit"]["revision"] == "v1"
    assert hub.repos["org/toy"]["gated"] == "manual" and hub.repos["org/toy"]["private"] is True
    assert "README.md" not in hub.files("org/toy")  # main untouched, the branch has it
    card = hub.files("org/toy", "v1")["README.md"].decode()
    meta = huggingface_hub.DatasetCard(card).data
    assert meta.extra_gated_prompt == terms
    assert meta.extra_gated_fields == GATED_FIELDS
    assert meta.license == "cc0-1.0" and meta.pretty_name == "toy-pub 1.0.0"
    assert 'datasets.load_dataset("org/toy", revision="v1")' in card
    assert "--repo-id org/toy --revision v1" in card and "Access is gated" in card
    assert result.revision == "v1"


def test_a_second_version_replaces_the_first_dataset_files_only(version, tiny_splits, home):
    hub = FakeHub()
    publish_dataset(version, "org/toy", home=home, api=hub)
    hub.files("org/toy")["LICENSE.md"] = b"the organisers' terms\n"
    newer = write_dataset("toy-pub", "1.1.0", tiny_splits, home=home, card=CARD, synthetic=True)
    result = publish_dataset("toy-pub@1.1.0", "org/toy", home=home, api=hub)
    assert result.removed == ("data/train-00000-of-00003.parquet", "data/train-00001-of-00003.parquet",
                              "data/train-00002-of-00003.parquet")
    files = hub.files("org/toy")
    assert sorted(files) == sorted([*_folder_files(newer), ".gitattributes", "LICENSE.md"])
    assert files["manifest.json"] == (newer / "manifest.json").read_bytes()


def test_round_trip_publish_prepare_from_the_hub_verify_same_fingerprint(version, home, tmp_path,
                                                                         monkeypatch, capsys):
    hub = FakeHub()
    monkeypatch.setattr(huggingface_hub, "HfApi", lambda token=None: hub)
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: "hf_stand_in")
    monkeypatch.setattr(huggingface_hub, "snapshot_download", hub.snapshot_download)
    fingerprint = read_manifest(version).fingerprint
    assert main(["publish", "toy-pub@1.0.0", "--repo", "org/toy", "--revision", "v1",
                 "--home", str(home)]) == 0
    out = capsys.readouterr().out
    assert "  verified: fingerprint " + fingerprint in out
    assert (f"published 7 files to https://huggingface.co/datasets/org/toy (revision v1), "
            f"fingerprint {fingerprint}") in out
    assert "get it back with: thyroid-bench prepare --source hub --repo-id org/toy --revision v1" in out
    other = tmp_path / "elsewhere"
    assert main(["prepare", "--source", "hub", "--repo-id", "org/toy", "--revision", "v1",
                 "--home", str(other)]) == 0
    assert main(["verify", "toy-pub@1.0.0", "--home", str(other)]) == 0
    assert f"fingerprint {fingerprint}" in capsys.readouterr().out
    installed = other / "toy-pub" / "1.0.0"
    assert verify_dataset(installed).fingerprint == fingerprint
    assert _folder_files(installed)["manifest.json"] == (version / "manifest.json").read_bytes()
    # Published again from the downloaded copy: one section on the Hub, not two.
    publish_dataset(installed, "org/toy", revision="v1", api=hub)
    assert hub.files("org/toy", "v1")["README.md"].decode().count("## On the Hugging Face Hub") == 1


def test_a_version_not_built_from_an_archive_is_published_with_a_warning(tiny_splits, home):
    write_dataset("own-data", "2.0.0", tiny_splits, home=home, card=CARD)  # not synthetic
    hub, lines = FakeHub(), []
    with pytest.raises(PublishError, match=r"own-data 2.0.0 is not synthetic: .* --private or "
                       r"--gated TEXT .* pass --public only if"):
        publish_dataset("own-data", "org/own", home=home, api=hub)
    assert hub.calls == []
    result = publish_dataset("own-data", "org/own", home=home, api=hub, progress=lines.append,
                             public=True)
    assert ("identifier scan: none: own-data 2.0.0 is not built from a DICOM archive by "
            "thyroid-bench, so no identifiers of an archive are known: publish only data you "
            "have de-identified yourself; there is no identifier index") in lines
    assert result.scan.startswith("none: ") and "manifest.json" in hub.files("org/own")


# --------------------------------------------------------------------------- refusals before the Hub
def test_unverified_version_is_refused_and_nothing_reaches_the_hub(version, home):
    shard = version / "data" / "internal-00000-of-00001.parquet"
    table = pq.read_table(shard)
    ages = table.column("age").to_pylist()
    ages[0] += 1  # one cell's bytes changed, the file still a valid shard
    pq.write_table(table.set_column(table.schema.get_field_index("age"), "age",
                                    [ages]), shard, compression="zstd")
    hub = FakeHub()
    with pytest.raises(VerificationError, match=r"(?s)failed verification, so nothing was "
                       r"uploaded.*split internal: content fingerprint"):
        publish_dataset(version, "org/toy", api=hub)
    assert hub.calls == []


def test_files_that_are_not_the_dataset_are_refused_by_name(version, home):
    (version / "notes.txt").write_text("to do\n")
    (version / "data" / "extra.parquet").symlink_to(version / "manifest.json")
    hub = FakeHub()
    with pytest.raises(PublishError, match=r"holds 2 file\(s\) that are not part of the dataset.*"
                       r"data/extra.parquet, notes.txt; verify never read them"):
        publish_dataset(version, "org/toy", api=hub)
    assert hub.calls == []


def test_a_version_named_like_a_release_must_be_it(tiny_splits, home):
    write_dataset("tsb-synthetic", "1.0.0", tiny_splits, home=home, synthetic=True, card=CARD)
    with pytest.raises(PublishError, match=r"a released version, but its fingerprint .* is not "
                       "the pinned 6975cd6db07491e3"):
        publish_dataset("tsb-synthetic@1.0.0", "org/x", home=home, api=FakeHub())


@pytest.mark.parametrize("repo, revision, gated, message", [
    ("toy", None, None, r"--repo 'toy': expected ORG/NAME"),
    ("org/a--b", None, None, r"no '--' or '..'"),
    ("org/toy", "bad branch", None, r"--revision 'bad branch': expected a branch name"),
    ("org/toy", None, "  ", r"--gated: the access terms cannot be used: it is empty"),
    ("org/toy", None, "terms\x00", r"it holds control characters"),
])
def test_bad_options_are_refused_before_anything_is_read(repo, revision, gated, message):
    with pytest.raises(PublishError, match=message):
        publish_dataset("no-such-dataset", repo, revision=revision, gated=gated, api=FakeHub())


# --------------------------------------------------------------------------- the Hub failing
def _http_error(status: int, text: str) -> HfHubHTTPError:
    request = httpx2.Request("POST", "https://huggingface.co/api/repos/create")
    return HfHubHTTPError(f"{status} {text}\nCannot access content at: {request.url}.",
                          response=httpx2.Response(status, request=request))


def test_no_token_is_one_line_and_uploads_nothing(version, home, monkeypatch, capsys):
    monkeypatch.setattr(huggingface_hub, "get_token", lambda: None)
    assert main(["publish", "toy-pub", "--repo", "org/toy", "--home", str(home)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith("thyroid-bench publish: error: no Hugging Face token: log in with "
                          "`hf auth login` or set HF_TOKEN")
    assert err.rstrip().endswith("nothing was uploaded")


@pytest.mark.parametrize("method, error, says", [
    ("create_repo", httpx2.ConnectError("[Errno -3] Temporary failure in name resolution"),
     r"could not create or find the dataset repository \(org/toy on the Hugging Face Hub\): "
     r"ConnectError: \[Errno -3\] Temporary failure in name resolution; check the network.*; "
     r"nothing was done on the Hub$"),
    ("create_commit", _http_error(403, "Forbidden: You don't have the rights"),
     r"could not upload the files .*HfHubHTTPError: 403 Forbidden: You don't have the rights; "
     r"your token may not write to org/toy: .* under org; on the Hub so far: the dataset "
     r"repository org/toy exists \(created or found\); no file was uploaded$"),
    ("update_repo_settings", _http_error(401, "Unauthorized"),
     r"could not set its access .* log in again .*; on the Hub so far: the dataset repository "
     r"org/toy exists \(created or found\); no file was uploaded$"),
])
def test_hub_failures_are_one_line_that_says_what_was_done(version, method, error, says):
    hub = FakeHub(fail={method: error})
    with pytest.raises(PublishError, match=says) as info:
        publish_dataset(version, "org/toy", api=hub, gated="terms" if method == "update_repo_settings" else None)
    assert "\n" not in str(info.value)
    assert [sorted(files) for r in hub.repos.values() for files in r["branches"].values()] in (
        [], [[".gitattributes"]])  # no file uploaded


# --------------------------------------------------------------------------- DICOM builds
def _rows() -> list[dict]:
    rng = np.random.default_rng(SEED)
    rows = [{"image": rng.poisson(6.0, (16, 16)).astype(np.uint16), "label": p % 4,
             "center": "center1", "patient": f"a{p}", "sex": "F", "age": 40 + p} for p in range(12)]
    rows += [{"image": rng.poisson(6.0, (16, 16)).astype(np.uint16), "label": p % 4,
              "center": "center2", "patient": f"b{p}", "sex": "M", "age": 50} for p in range(4)]
    rows += [{"image": rng.poisson(6.0, (16, 16)).astype(np.uint16), "label": 0, "center": "center1",
              "patient": "ct", "overrides": {"Modality": "CT"}}]  # rejected: rejected.csv exists
    return rows


@pytest.fixture(scope="module")
def dicom_build(tmp_path_factory):
    """A small DICOM archive with planted identities, prepared once."""
    tmp = tmp_path_factory.mktemp("publish-dicom")
    archive = write_archive(tmp / "archive", _rows(), seed=SEED)
    key_file = tmp / "keys" / "pseudonym.key"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="clinic",
                         version="1.0.0", key_file=key_file, external_centers=["center2"],
                         home=tmp / "home", workers=1)
    return {"tmp": tmp, "archive": archive, "path": path, "key_file": key_file}


@pytest.fixture
def dicom_copy(dicom_build, tmp_path):
    """A copy of the DICOM build to tamper with (its key and index stay where they are)."""
    copy = tmp_path / "home" / "clinic" / "1.0.0"
    shutil.copytree(dicom_build["path"], copy)
    return copy


def _identity(patient: str = "a3"):
    return make_identity(SEED, patient, "center1")


def test_prepare_keeps_a_keyed_identifier_index_beside_the_key(dicom_build):
    index = identifier_index_path(dicom_build["key_file"], "clinic", "1.0.0")
    assert index.parent == dicom_build["key_file"].parent
    assert stat.S_IMODE(index.stat().st_mode) == 0o600
    data = index.read_text()
    planted = dicom_build["archive"].planted()
    assert planted and not [p for p in planted if p in data or p.lower() in data.lower()]
    assert not index.is_relative_to(dicom_build["path"])


def test_clean_dicom_build_is_scanned_and_published(dicom_build, dicom_copy):
    hub, lines = FakeHub(), []
    result = publish_dataset(dicom_copy, "org/clinic", key_file=dicom_build["key_file"], api=hub,
                             progress=lines.append, gated="Approved researchers only.")
    assert "rejected.csv" in result.files
    assert "identifier phrases of the archive" in result.scan
    assert "identifier scan: no identifier of the archive found" in lines
    card = hub.files("org/clinic")["README.md"].decode()
    assert "## Licence and citation" in card and "Licence: `other`" in card
    assert card.index("## On the Hugging Face Hub") < card.index("## Licence and citation")


def test_dicom_build_needs_its_key(dicom_build, dicom_copy, tmp_path):
    with pytest.raises(PublishError, match=r"built from a DICOM archive \(key id [0-9a-f]{16}\): "
                       "pass --key-file"):
        publish_dataset(dicom_copy, "org/clinic", api=FakeHub())
    other = tmp_path / "other.key"
    other.write_bytes(b"k" * 32)
    with pytest.raises(PublishError, match=r"is not the key clinic 1.0.0 was built with"):
        publish_dataset(dicom_copy, "org/clinic", key_file=other, api=FakeHub())
    key = tmp_path / "moved" / "pseudonym.key"  # the key without its index beside it
    key.parent.mkdir()
    shutil.copy(dicom_build["key_file"], key)
    with pytest.raises(PublishError, match=r"no identifier index at .*identifiers-clinic-1.0.0.json"):
        publish_dataset(dicom_copy, "org/clinic", key_file=key, api=FakeHub())


def _refused(folder: Path, key_file: Path, *, where: str, secret: str, **kwargs) -> None:
    hub = FakeHub()
    with pytest.raises(PublishError, match="hold an identifier of the archive") as info:
        publish_dataset(folder, "org/clinic", key_file=key_file, api=hub, public=True, **kwargs)
    message = str(info.value)
    assert where in message, message
    assert secret.lower() not in message.lower()  # named by place, never by value
    assert hub.calls == []


def test_a_patient_name_written_into_the_card_is_refused(dicom_build, dicom_copy):
    family, given = _identity().patient_name.split("^")
    card = (dicom_copy / "README.md").read_text()
    (dicom_copy / "README.md").write_text(card + f"\nNote: the scan of {given.title()}\n"
                                          f"{family.title()} was repeated.\n")
    line = card.count("\n") + 2
    _refused(dicom_copy, dicom_build["key_file"], where=f"README.md line {line}", secret=family)


def test_a_patient_id_in_rejected_csv_is_refused(dicom_build, dicom_copy):
    text = (dicom_copy / "rejected.csv").read_text()
    (dicom_copy / "rejected.csv").write_text(text.replace("not NM", f"not NM; {_identity('ct').patient_id}"))
    _refused(dicom_copy, dicom_build["key_file"], where="rejected.csv line 2",
             secret=_identity("ct").patient_id)


def test_the_access_terms_are_scanned_too(dicom_build, dicom_copy):
    name = _identity().patient_name
    _refused(dicom_copy, dicom_build["key_file"], where="the access terms (--gated)",
             secret=name.split("^")[0], gated=f"Ask {name.replace('^', ' ')} for access")


def test_a_name_in_a_png_text_chunk_that_verify_cannot_see_is_refused(dicom_build, dicom_copy):
    shard = next((dicom_copy / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    with Image.open(io.BytesIO(images[0]["bytes"])) as im:
        info = PngImagePlugin.PngInfo()
        info.add_text("Comment", f"patient {_identity().patient_name}")
        buf = io.BytesIO()
        im.save(buf, format="PNG", pnginfo=info)
    images[0] = {"bytes": buf.getvalue(), "path": None}
    column = table.schema.get_field_index("image")
    field = table.schema.field(column)
    pq.write_table(table.set_column(column, field, pa.array(images, type=field.type)), shard)
    assert verify_dataset(dicom_copy).ok  # same pixels, same fingerprint
    _refused(dicom_copy, dicom_build["key_file"], where=f"data/{shard.name}: column image.bytes "
             "(PNG text chunk 1), row 0", secret=_identity().patient_name.split("^")[0])


@pytest.mark.parametrize("where", ["private chunk", "after IEND"])
def test_a_name_hidden_in_a_private_chunk_or_after_the_png_is_refused(dicom_build, dicom_copy, where):
    shard = next((dicom_copy / "data").glob("train-*.parquet"))
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    png, secret = images[0]["bytes"], f"patient {_identity().patient_name}".encode()
    if where == "private chunk":  # an ancillary, private chunk "prVt" before IEND (CRC not checked)
        end = png.rindex(b"IEND") - 4
        png = png[:end] + struct.pack(">I4s", len(secret), b"prVt") + secret + b"\0" * 4 + png[end:]
    else:
        png = png + secret
    images[0] = {"bytes": png, "path": None}
    column = table.schema.get_field_index("image")
    field = table.schema.field(column)
    pq.write_table(table.set_column(column, field, pa.array(images, type=field.type)), shard)
    assert verify_dataset(dicom_copy).ok  # the pixels decode the same
    _refused(dicom_copy, dicom_build["key_file"], where=f"data/{shard.name}: column image.bytes",
             secret=_identity().patient_name.split("^")[0])


def test_an_institution_named_in_the_centre_column_is_refused(dicom_build, tmp_path):
    """A labels CSV that names the centre by its institution: a shard cell, verified, refused."""
    archive = write_archive(tmp_path / "archive", _rows(), seed=SEED)
    institution = _identity().institution
    with open(archive.labels_csv, newline="") as fh:
        rows = list(csv.reader(fh))
    with open(archive.labels_csv, "w", newline="") as fh:
        csv.writer(fh).writerows([[institution if c == "center1" else c for c in r] for r in rows])
    key_file = tmp_path / "keys" / "k.key"
    path = prepare_dicom(dicom_dir=archive.root, labels=archive.labels_csv, name="clinic",
                         version="1.0.0", key_file=key_file, external_centers=["center2"],
                         home=tmp_path / "home", workers=1)
    assert verify_dataset(path).ok
    with pytest.raises(PublishError, match=r"data/train-00000-of-00001.parquet: column center, "
                       r"row 0") as info:
        publish_dataset(path, "org/clinic", key_file=key_file, api=FakeHub(), public=True)
    assert "manifest.json line" in str(info.value) and institution not in str(info.value)
