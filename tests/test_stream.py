"""Streaming splits (harness/stream.py, harness/rows.py): the disk cache holds the values the
in-memory tensor holds, a streamed run predicts what the in-memory run predicts (both tasks),
the cache goes away, a full or unwritable cache folder is one line, and under torchrun two
processes prepare their own shards and train as the in-memory group does.

The datasets here have their splits in several shards (15 rows a shard), so shard order,
chunking and the exchange between processes are exercised.
"""

from __future__ import annotations

import errno
import json
import re
import subprocess
import sys

import numpy as np
import pytest
import torch
from conftest import make_rows
from test_run_residual import residual_rows

from thyroid_bench.cli import main
from thyroid_bench.data.format import write_dataset
from thyroid_bench.data.manifest import read_manifest
from thyroid_bench.errors import ThyroidBenchError
from thyroid_bench.evaluation.entry import read_entry
from thyroid_bench.evaluation.predictions import read_predictions
from thyroid_bench.harness import stream
from thyroid_bench.harness.distributed import DistInfo
from thyroid_bench.harness.preprocess import load_split
from thyroid_bench.harness.rows import DiskRows
from thyroid_bench.harness.run import run
from thyroid_bench.tasks import get_task

MODEL = "timm:test_resnet"
FAST = dict(protocol="quick", epochs=1, batch_size=8, num_threads=1, bootstrap=20, progress=False,
            device="cpu")
ROWS_PER_SHARD = 15


@pytest.fixture(scope="module")
def four(tmp_path_factory):
    """four-pattern: train 40 rows in 3 shards (32x32), internal 16 in 2, external 16 (16x16)."""
    root = tmp_path_factory.mktemp("four") / "tiny" / "1.0.0"
    return write_dataset("tiny", "1.0.0", {"train": make_rows("train", 40),
                                           "internal": make_rows("internal", 16, start=100),
                                           "external": make_rows("external", 16, start=200, matrix=16)},
                         root=root, provenance={"made_by": "tests"}, licence="cc0-1.0",
                         rows_per_shard=ROWS_PER_SHARD)


@pytest.fixture(scope="module")
def residual(tmp_path_factory):
    """residual-tissue: two views, labels of unknown grade, regression values with gaps."""
    root = tmp_path_factory.mktemp("residual") / "tiny-residual" / "0.1.0"
    return write_dataset("tiny-residual", "0.1.0", {
        "train": residual_rows("train", 40, 0, unknown=(5, 13, 22)),
        "internal": residual_rows("internal", 12, 1), "external": residual_rows("external", 12, 2)},
        task=get_task("residual-tissue"), root=root, provenance={"made_by": "tests"},
        licence="cc0-1.0", rows_per_shard=ROWS_PER_SHARD)


@pytest.fixture
def tmpdir_env(tmp_path, monkeypatch):
    """$TMPDIR, where the streaming cache goes, as an empty folder of this test."""
    folder = tmp_path / "tmpdir"
    folder.mkdir()
    monkeypatch.setenv("TMPDIR", str(folder))
    return folder


def _caches(folder):
    return sorted(p.name for p in folder.glob("thyroid-bench-stream-*"))


@pytest.fixture
def threads():
    saved = torch.get_num_threads()
    yield torch.set_num_threads
    torch.set_num_threads(saved)


# --------------------------------------------------------------------------- the cache
@pytest.mark.parametrize("which", ["four", "residual"])
@pytest.mark.parametrize("n_threads", [1, 2])  # 1: prepared in this process; 2: two loader workers
def test_cache_file_holds_the_in_memory_tensor(which, n_threads, request, tmp_path, threads):
    path = request.getfixturevalue(which)
    task = read_manifest(path).get_task()
    threads(n_threads)
    unknown = 0
    for split in ("train", "external"):
        memory = load_split(path, split, 24, task, progress=False)
        streamed = stream.stream_split(path, split, 24, task, tmp_path, progress=False)
        unknown += int((streamed.y == -1).sum())
        file = tmp_path / f"{split}.f32"
        on_disk = np.fromfile(file, dtype=np.float32)  # the file read back, row after row
        views = len(task.image_columns)
        assert on_disk.size == len(memory) * views * 24 * 24
        np.testing.assert_array_equal(on_disk.reshape(len(memory), views, 24, 24), memory.x.numpy())
        assert streamed.case_ids == memory.case_ids and torch.equal(streamed.y, memory.y)
        np.testing.assert_array_equal(streamed.folds, memory.folds)
        assert streamed.values.keys() == memory.values.keys()
        for k in memory.values:
            np.testing.assert_array_equal(streamed.values[k], memory.values[k])
    assert unknown == (3 if which == "residual" else 0)  # labels of unknown grade come through


def test_disk_rows_read_by_index_slice_subset_in_any_order(tmp_path):
    data = np.arange(7 * 2 * 3 * 3, dtype=np.float32).reshape(7, 2, 3, 3)
    data.tofile(tmp_path / "x.f32")
    rows = DiskRows(tmp_path / "x.f32", 7, (2, 3, 3))
    assert len(rows) == 7 and rows.shape == (7, 2, 3, 3)
    order = torch.tensor([6, 0, 3, 4, 5, 0])  # out of order, a run 3-4-5, a repeat
    assert torch.equal(rows[order], torch.from_numpy(data[order.numpy()]))
    assert torch.equal(rows[2:5], torch.from_numpy(data[2:5]))
    assert torch.equal(rows[3], torch.from_numpy(data[3]))
    sub = rows.subset(np.array([5, 1, 6]))  # a view through a row map: rows 5, 1, 6 of the file
    assert len(sub) == 3 and torch.equal(sub[[2, 0]], torch.from_numpy(data[[6, 5]]))
    assert torch.equal(sub.subset(np.array([1]))[0], torch.from_numpy(data[1]))
    assert sub.to("cpu")[0:3].shape == (3, 2, 3, 3)
    with pytest.raises(IndexError):
        rows[torch.tensor([7])]
    (tmp_path / "x.f32").write_bytes(data[:4].tobytes())  # cut short while in use
    with pytest.raises(ThyroidBenchError, match="x.f32 is cut short: row 5 is missing"):
        rows[np.array([1, 5])]


def test_each_process_prepares_every_world_size_th_shard():
    assert stream.owned_shards(5) == [0, 1, 2, 3, 4]
    assert stream.owned_shards(5, DistInfo(rank=0, world_size=2)) == [0, 2, 4]
    assert stream.owned_shards(5, DistInfo(rank=1, world_size=2)) == [1, 3]
    assert stream.owned_shards(1, DistInfo(rank=1, world_size=2)) == []


def test_auto_path_streams_only_when_the_in_memory_peak_would_not_fit(monkeypatch, tmpdir_env):
    task = get_task("four-pattern")
    monkeypatch.delenv("LOCAL_WORLD_SIZE", raising=False)
    need = 40 * 64 * 64 * 4  # 655,360 bytes: 40 rows, one view, 64x64 float32
    rows = {"train": 40, "internal": 50, "external": 10}  # train x2 (80 rows' worth) > internal
    monkeypatch.setattr(stream, "available_memory", lambda: 4 * need)
    path = stream.choose_data_path(rows, task, 64, stream=False)
    assert not path.stream and path.reason == (
        "in-memory peak 1.3 MB: train split 0.7 MB x2 (its folds are copies), within 50% of "
        "2.6 MB available")
    monkeypatch.setattr(stream, "available_memory", lambda: 4 * need - 1)
    path = stream.choose_data_path(rows, task, 64, stream=False)
    assert path.stream and path.to_dict() == {
        "path": "stream", "reason": "in-memory peak 1.3 MB: train split 0.7 MB x2 (its folds are "
                                    "copies), over 50% of 2.6 MB available"}
    assert path.describe().startswith("data: streamed from a disk cache, batch by batch (")
    # Evaluation only: no train split, the largest split loaded once.
    assert stream.memory_peak({"internal": 50, "external": 10}, task, 64) == (
        50 * 64 * 64 * 4, "internal split 0.8 MB")
    # Every process of the run on this machine holds its copy.
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    monkeypatch.setattr(stream, "available_memory", lambda: 8 * need)
    path = stream.choose_data_path(rows, task, 64, stream=False)
    assert not path.stream and path.reason.startswith(
        "in-memory peak 2.6 MB: train split 0.7 MB x2 (its folds are copies) x2 processes on this "
        "machine, within 50% of 5.2 MB")
    monkeypatch.setattr(stream, "available_memory", lambda: 8 * need - 1)
    assert stream.choose_data_path(rows, task, 64, stream=False).stream
    monkeypatch.delenv("LOCAL_WORLD_SIZE")
    monkeypatch.setattr(stream, "available_memory", lambda: None)
    assert not stream.choose_data_path(rows, task, 64, stream=False).stream
    assert stream.choose_data_path(rows, task, 64, stream=True).to_dict() == {
        "path": "stream", "reason": "--stream"}
    assert _caches(tmpdir_env) == []  # the room check left nothing behind


def test_an_image_that_does_not_decode_is_named_by_shard_on_both_paths(four, tmp_path, threads):
    import shutil

    import pyarrow as pa
    import pyarrow.parquet as pq

    copy = tmp_path / "copy"
    shutil.copytree(four, copy)
    shard = copy / "data" / "train-00001-of-00003.parquet"
    table = pq.read_table(shard)
    images = table.column("image").to_pylist()
    images[3] = {"bytes": b"not a png", "path": None}
    column = pa.array(images, type=table.schema.field("image").type)
    pq.write_table(table.set_column(table.schema.get_field_index("image"), "image", column), shard)
    task = read_manifest(copy).get_task()
    want = f"{shard}: an image of rows 0-14 does not decode \\(not an image\\); verify the dataset"
    with pytest.raises(ThyroidBenchError, match=want) as memory:
        load_split(copy, "train", 16, task, progress=False)
    for n_threads in (1, 2):  # raised in this process, and sent back by a loader worker
        threads(n_threads)
        (tmp_path / "cache").mkdir()
        with pytest.raises(ThyroidBenchError, match=want) as streamed:
            stream.stream_split(copy, "train", 16, task, tmp_path / "cache", progress=False)
        assert str(streamed.value) == str(memory.value) and "\n" not in str(memory.value)
        shutil.rmtree(tmp_path / "cache")


# --------------------------------------------------------------------------- runs
@pytest.mark.parametrize("which, how", [("four", "--stream"), ("residual", "auto")])
def test_streamed_run_predicts_what_the_in_memory_run_predicts(which, how, request, tmp_path,
                                                               tmpdir_env, monkeypatch):
    path = request.getfixturevalue(which)
    task = read_manifest(path).get_task()
    memory = run(MODEL, dataset=path, out=tmp_path / "memory", seed=3, **FAST)
    if how == "auto":  # too little memory for the train split (40 x 2 x 64 x 64 float32)
        monkeypatch.setattr(stream, "available_memory", lambda: 1_000_000)
    streamed = run(MODEL, dataset=path, out=tmp_path / "stream", seed=3, stream=how == "--stream",
                   **FAST)
    for split in task.eval_splits:
        a = read_predictions(memory.run_dir / f"predictions/{split}.csv", task)
        b = read_predictions(streamed.run_dir / f"predictions/{split}.csv", task)
        assert a.case_ids == b.case_ids and len(a.case_ids) > 10
        np.testing.assert_allclose(b.probs, a.probs, rtol=0, atol=1e-6)
    configs = [json.loads((r.run_dir / "config.json").read_text()) for r in (memory, streamed)]
    assert configs[0]["data_path"]["path"] == "memory"
    reason = "--stream" if how == "--stream" else ("in-memory peak 2.6 MB: train split 1.3 MB x2 (its folds are "
                                               "copies), over 50% of 1.0 MB available")
    assert configs[1]["data_path"] == {"path": "stream", "reason": reason}
    log = (streamed.run_dir / "train.log").read_text()
    assert f"data: streamed from a disk cache, batch by batch ({reason})" in log
    assert "stream train: 40 images" in log
    # The data path is not part of what the entry records of the protocol.
    entries = [read_entry(r.run_dir / "entry.json") for r in (memory, streamed)]
    assert entries[0].protocol == entries[1].protocol
    assert entries[0].metrics == entries[1].metrics
    assert _caches(tmpdir_env) == []  # every split's cache was removed


def test_unwritable_cache_folder_is_one_line_before_anything_is_written(four, tmp_path, monkeypatch,
                                                                        capsys):
    not_a_folder = tmp_path / "a-file"
    not_a_folder.write_text("")
    monkeypatch.setenv("TMPDIR", str(not_a_folder / "tmp"))
    code = main(["run", "--model", MODEL, "--dataset", str(four), "--epochs", "1", "--num-threads",
                 "1", "--device", "cpu", "--quiet", "--stream", "--out", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert err.startswith(f"thyroid-bench run: error: streaming cache folder: {not_a_folder / 'tmp'}")
    assert "set TMPDIR to a writable folder with room, or run without --stream" in err
    assert not (tmp_path / "run").exists()


def test_too_little_room_is_refused_before_anything_is_written(four, tmp_path, tmpdir_env,
                                                                monkeypatch):
    class Usage:
        free = 600_000  # the train split's cache needs 40 x 64 x 64 x 4 = 655,360 bytes

    monkeypatch.setattr(stream.shutil, "disk_usage", lambda where: Usage)
    with pytest.raises(ThyroidBenchError, match=f"streaming cache folder {tmpdir_env}: 0.6 MB free, "
                       "the largest split's cache needs 0.7 MB; set TMPDIR"):
        run(MODEL, dataset=four, out=tmp_path / "run", stream=True, **FAST)
    assert not (tmp_path / "run").exists() and _caches(tmpdir_env) == []


def test_disk_full_while_caching_is_one_line_and_leaves_no_cache(four, tmpdir_env, monkeypatch,
                                                                 threads):
    def full(f, offset, array):
        raise OSError(errno.ENOSPC, "No space left on device", f.name)

    monkeypatch.setattr(stream, "_write_at", full)
    threads(1)  # prepared in this process, where the patch applies
    task = read_manifest(four).get_task()
    data = stream.DataPath(True, "--stream")
    with pytest.raises(ThyroidBenchError) as caught:
        with stream.open_split(four, "train", 64, task, data=data, progress=False):
            pass
    msg = str(caught.value)
    assert "\n" not in msg and msg.startswith("writing the streaming cache: ")
    assert "train.f32: No space left on device; free space there or set TMPDIR" in msg
    assert _caches(tmpdir_env) == []


def test_the_cache_file_is_reserved_on_disk_up_front(tmp_path):
    """A full disk shows while the file is made (before the processes agree to go on), not
    in the middle of an exchange: the blocks are allocated, the file is not sparse."""
    file = tmp_path / "train.f32"
    stream._allocate(file, 1 << 20)
    assert file.stat().st_size == 1 << 20 and file.stat().st_blocks * 512 >= 1 << 20


def test_room_is_checked_for_a_cache_per_process_on_this_machine(tmpdir_env, monkeypatch):
    class Usage:
        free = 1_000_000  # one cache (655,360 bytes) fits, two do not

    monkeypatch.setattr(stream.shutil, "disk_usage", lambda where: Usage)
    rows = {"train": 40, "internal": 9, "external": 8}
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "1")
    assert stream.choose_data_path(rows, get_task("four-pattern"), 64, stream=True).stream
    monkeypatch.setenv("LOCAL_WORLD_SIZE", "2")
    with pytest.raises(ThyroidBenchError, match=re.escape(
            f"streaming cache folder {tmpdir_env}: 1.0 MB free, the largest split's cache needs "
            "1.3 MB (2 processes on this machine, a cache each); set TMPDIR")):
        stream.choose_data_path(rows, get_task("four-pattern"), 64, stream=True)


class _Peer(DistInfo):
    """Rank 1 of 2, its broadcasts answered at once (the other rank's part of each)."""

    def broadcast_tensor(self, tensor, src):
        self.calls.append(src)
        return tensor


def test_a_failed_write_in_the_exchange_keeps_the_process_in_step(tmp_path, monkeypatch):
    """A process whose disk fills during the exchange still takes part in every broadcast (the
    others would wait for ever otherwise) and returns one error line for the group to agree on."""
    file = tmp_path / "train.f32"
    stream._allocate(file, 200 * 4 * 4)
    bounds = np.array([0, 70, 150, 200])  # shards 0 and 2 from rank 0 (2 + 1 pieces), 1 ours (2)
    peer = _Peer(rank=1, world_size=2)
    object.__setattr__(peer, "calls", [])

    def full(f, offset, array):
        raise OSError(errno.ENOSPC, "No space left on device", f.name)

    monkeypatch.setattr(stream, "_write_at", full)
    error = stream._exchange(file, bounds, (1, 2, 2), peer)
    assert peer.calls == [0, 0, 1, 1, 0]  # every piece of every shard, as the other rank sends
    assert str(error) == (f"writing the streaming cache: {file}: No space left on device; free "
                          "space there or set TMPDIR to a folder with room")


# --------------------------------------------------------------------------- torchrun
def _torchrun(args: list[str], cwd, env) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes", "1", "--nproc-per-node", "2",
           "--standalone", "-m", "thyroid_bench.cli", "run", *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=600, env=env)


def test_torchrun_streams_each_process_its_own_shards(four, tmp_path, tmpdir_env):
    """Two CPU processes (gloo): rank 0 prepares train shards 0 and 2, rank 1 shard 1, and they
    exchange them. Had a process missed a shard, its slice of some batch would differ from the
    in-memory group's and so would the predictions."""
    import os

    env = {**os.environ, "OMP_WAIT_POLICY": "PASSIVE"}
    common = ["--model", MODEL, "--dataset", str(four), "--protocol", "quick", "--epochs", "1",
              "--batch-size", "8", "--num-threads", "1", "--bootstrap", "20", "--device", "cpu",
              "--quiet"]
    for name, extra in (("memory", []), ("stream", ["--stream"])):
        proc = _torchrun([*common, "--out", str(tmp_path / name), *extra], tmp_path, env)
        assert proc.returncode == 0, proc.stderr[-3000:]
    task = read_manifest(four).get_task()
    for split in task.eval_splits:
        a = read_predictions(tmp_path / "memory" / f"predictions/{split}.csv", task)
        b = read_predictions(tmp_path / "stream" / f"predictions/{split}.csv", task)
        np.testing.assert_allclose(b.probs, a.probs, rtol=0, atol=1e-6)
    config = json.loads((tmp_path / "stream" / "config.json").read_text())
    assert config["world_size"] == 2 and config["data_path"] == {"path": "stream", "reason": "--stream"}
    log = (tmp_path / "stream" / "train.log").read_text()
    assert ("this process prepared 2 of its 3 shards, 1 other process(es) the rest, exchanged "
            "over the process group") in log
    assert _caches(tmpdir_env) == []
