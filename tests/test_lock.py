"""One writer per dataset version (data/lock.py), tried with two processes.

Before the lock each ``prepare`` began by deleting every ``.tmp-<version>-*`` folder, the other
run's half-written one included, so of two runs of one version one always crashed. Now the
second waits (saying so on stderr, naming the lock), the first run's temporary folder is never
touched, and both finish; folders of dead runs are still removed.
"""

from __future__ import annotations

import multiprocessing
import os
import sys
import time
from pathlib import Path

import thyroid_bench.data.format as fmt
from thyroid_bench.data.lock import lock_path
from thyroid_bench.data.verify import verify_dataset


def _write(splits, home: Path, force: bool = False) -> Path:
    return fmt.write_dataset("toy", "1.0.0", splits, home=home, card="# toy\n", force=force)


def _first(splits, home: Path, inside, go, log: Path) -> None:
    """Write, pausing after the shards (inside the lock) until ``go`` is set."""
    real = fmt._write_splits

    def paused(*args, **kwargs):
        out = real(*args, **kwargs)
        inside.set()
        go.wait(60)
        return out

    fmt._write_splits = paused
    _child(splits, home, log, force=False)


def _child(splits, home: Path, log: Path, force: bool) -> None:
    with open(log, "w") as fh:
        os.dup2(fh.fileno(), 2)
        sys.stderr = fh
        try:
            _write(splits, home, force=force)
        except BaseException as exc:  # noqa: BLE001 - the parent reads the log
            print(f"FAILED {type(exc).__name__}: {exc}", file=fh, flush=True)
            os._exit(1)
    os._exit(0)


def _wait_for(predicate, timeout: float = 30.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if predicate():
            return True
        time.sleep(0.02)
    return False


def test_two_prepares_of_one_version_take_turns(tiny_splits, tmp_path):
    ctx = multiprocessing.get_context("fork")
    inside, go = ctx.Event(), ctx.Event()
    home = tmp_path / "home"
    first = ctx.Process(target=_first, args=(tiny_splits, home, inside, go, tmp_path / "a.log"))
    first.start()
    assert inside.wait(30)
    (tmp_dir,) = (home / "toy").glob(".tmp-1.0.0-*")  # the first run's, half-written
    second = ctx.Process(target=_child, args=(tiny_splits, home, tmp_path / "b.log", True))
    second.start()
    b_log = tmp_path / "b.log"
    assert _wait_for(lambda: b_log.exists() and "waiting" in b_log.read_text())
    message = b_log.read_text()
    assert str(lock_path(home / "toy" / "1.0.0")) in message and "another thyroid-bench process" in message
    time.sleep(0.3)
    assert tmp_dir.is_dir() and second.is_alive()  # the second waits and deletes nothing
    go.set()
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 0), ((tmp_path / "a.log").read_text(), b_log.read_text())
    assert verify_dataset(home / "toy" / "1.0.0").ok
    assert list((home / "toy").glob(".tmp-*")) == []


def test_a_second_run_without_force_waits_then_stops_with_a_message(tiny_splits, tmp_path):
    ctx = multiprocessing.get_context("fork")
    inside, go = ctx.Event(), ctx.Event()
    home = tmp_path / "home"
    first = ctx.Process(target=_first, args=(tiny_splits, home, inside, go, tmp_path / "a.log"))
    first.start()
    assert inside.wait(30)
    b_log = tmp_path / "b.log"
    second = ctx.Process(target=_child, args=(tiny_splits, home, b_log, False))
    second.start()
    assert _wait_for(lambda: b_log.exists() and "waiting" in b_log.read_text())
    go.set()
    first.join(60)
    second.join(60)
    assert (first.exitcode, second.exitcode) == (0, 1)
    text = b_log.read_text()
    assert "FAILED DatasetError" in text and "already exists; pass force=True (--force)" in text
    assert verify_dataset(home / "toy" / "1.0.0").ok


def test_a_dead_runs_temporary_folder_is_removed_under_the_lock(tiny_splits, tmp_path):
    ctx = multiprocessing.get_context("fork")
    home = tmp_path / "home"
    killed = ctx.Process(target=_first, args=(tiny_splits, home, ctx.Event(), ctx.Event(),
                                             tmp_path / "a.log"))
    killed.start()
    assert _wait_for(lambda: any((home / "toy").glob(".tmp-1.0.0-*/data/*.parquet"))
                     if (home / "toy").is_dir() else False)
    killed.kill()  # SIGKILL mid-write: the system releases its lock
    killed.join()
    assert list((home / "toy").glob(".tmp-1.0.0-*"))
    assert verify_dataset(_write(tiny_splits, home)).ok
    assert list((home / "toy").glob(".tmp-*")) == []
