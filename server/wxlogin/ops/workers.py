"""`wxlogin serve --workers N`: N processes answering on one port.

The parent binds the listening socket, then forks the workers, which all accept on it (the
kernel hands each connection to one of them). A poll held by one worker wakes when another
confirms, through PostgreSQL's LISTEN/NOTIFY, as between machines. The parent only supervises:
a worker that dies is replaced (after a pause, so a crashing one cannot spin); SIGTERM or SIGINT
is passed on to every worker, each answers its waiting polls and exits, then the parent returns
(and the embedded PostgreSQL, if any, is stopped by its caller).
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import time
from collections.abc import Callable

log = logging.getLogger("wxlogin.workers")

PR_SET_PDEATHSIG = 1
RESTART_PAUSE = 1.0
POLL = 0.1


def listen(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.create_server((host, port), family=family, backlog=1024)
    sock.set_inheritable(True)
    return sock


def supervise(workers: int, run_worker: Callable[[int], None]) -> int:
    """Fork `workers` processes running `run_worker(index)`; returns when all have stopped
    after SIGTERM/SIGINT. The exit status: 0, or 1 when a worker failed while stopping."""
    children: dict[int, int] = {}  # pid -> index
    stopping = False

    def start(index: int) -> None:
        pid = os.fork()
        if pid == 0:  # the worker
            code = 0
            try:
                signal.signal(signal.SIGTERM, signal.SIG_DFL)
                signal.signal(signal.SIGINT, signal.SIG_DFL)
                with contextlib.suppress(OSError, AttributeError):
                    # Never outlive the parent, even when it is killed outright.
                    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
                run_worker(index)
            except SystemExit as exc:  # it said why itself (a pool that cannot open)
                code = exc.code if isinstance(exc.code, int) else 1
            except BaseException:  # noqa: BLE001 - a worker reports and exits, never returns
                log.exception("worker %d failed", index)
                code = 1
            finally:
                os._exit(code)
        children[pid] = index

    def stop(signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True
        for pid in list(children):
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGTERM)

    previous = {s: signal.signal(s, stop) for s in (signal.SIGTERM, signal.SIGINT)}
    status = 0
    try:
        for index in range(workers):
            start(index)
        while children:
            # Each worker is asked by pid: a plain wait() would also reap the embedded
            # PostgreSQL, which its own manager waits for.
            time.sleep(POLL)
            for pid in list(children):
                done, raw = os.waitpid(pid, os.WNOHANG)
                if not done:
                    continue
                index = children.pop(pid)
                code = os.waitstatus_to_exitcode(raw)
                if stopping:
                    status = status or (1 if code not in (0, -signal.SIGTERM) else 0)
                    continue
                log.error("worker %d (pid %d) stopped with status %s; starting another",
                          index, pid, code)
                time.sleep(RESTART_PAUSE)
                if not stopping:
                    start(index)
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return status
