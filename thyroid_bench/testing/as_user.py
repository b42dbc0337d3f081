"""Run a function as an unprivileged user, so that file modes apply (:func:`run_as_user`).

Tests of permission cases (a folder that cannot be listed, a home that cannot be written)
mean nothing as root, which the kernel lets read and write everything. When the tests run
as root, :func:`run_as_user` forks (the child keeps the interpreter and modules already
loaded, so it needs no access to the virtual environment's folder), drops to ``nobody``
(uid and gid 65534) with ``os.setgroups``/``os.setgid``/``os.setuid``, calls the function
and sends back its result or its exception. Where privileges cannot be dropped (not root, or
no ``fork``), :func:`can_drop_privileges` is false and such tests are skipped with that reason.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

__all__ = ["NOBODY", "SKIP_REASON", "can_drop_privileges", "run_as_user", "shared_temp_dir",
           "RaisedInChild"]

#: uid and gid of ``nobody`` on Linux.
NOBODY = 65534
SKIP_REASON = "permission cases need root to drop privileges to 'nobody' (os.setuid) in a fork"


class RaisedInChild(Exception):
    """The function raised something that could not be sent back; its traceback as text."""


def can_drop_privileges() -> bool:
    """Whether this process can fork and become ``nobody`` (it runs as root on POSIX)."""
    return (hasattr(os, "geteuid") and os.geteuid() == 0
            and "fork" in multiprocessing.get_all_start_methods())


def shared_temp_dir(prefix: str = "tb-as-user-") -> Path:
    """A new folder under the system temporary folder that ``nobody`` can enter and write
    (mode 0777; pytest's own ``tmp_path`` lies under a folder of mode 0700)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    os.chmod(path, 0o777)
    return path


def run_as_user(fn: Callable[..., Any], *args: Any, uid: int = NOBODY, gid: int = NOBODY,
                umask: int | None = None, timeout: float = 120.0, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)`` in a forked child running as ``uid``/``gid`` (and ``umask``
    when given); returns its result or raises its exception here. The result and the
    exception must be picklable (else :class:`RaisedInChild` carries the traceback)."""
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)

    def child() -> None:
        try:
            os.setgroups([])
            os.setgid(gid)
            os.setuid(uid)
            if umask is not None:
                os.umask(umask)
            outcome = ("ok", fn(*args, **kwargs))
        except BaseException as exc:  # noqa: BLE001 - everything goes back to the parent
            outcome = ("raised", exc, traceback.format_exc())
        try:
            send.send(outcome)
        except Exception:  # noqa: BLE001 - an unpicklable result or exception
            send.send(("raised", RaisedInChild(outcome[-1] if outcome[0] == "raised"
                                               else "result could not be pickled"), ""))

    process = ctx.Process(target=child, daemon=True)
    process.start()
    send.close()
    try:
        if not receive.poll(timeout):
            process.kill()
            raise TimeoutError(f"{getattr(fn, '__name__', fn)} as uid {uid} took over {timeout} s")
        outcome = receive.recv()
    finally:
        process.join(5)
        receive.close()
    if outcome[0] == "ok":
        return outcome[1]
    raise outcome[1]
