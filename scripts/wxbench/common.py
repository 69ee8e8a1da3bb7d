"""What the orchestrator and the load generators share: where things are, the clock, child
processes that die with the benchmark, and coroutines run a few at a time."""

from __future__ import annotations

import asyncio
import ctypes
import signal
import time
from collections.abc import Awaitable, Callable, Iterable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = Path(__file__).resolve().parent  # run again, with --generator, as each load generator
HOST = "127.0.0.1"
PR_SET_PDEATHSIG = 1
T = TypeVar("T")


def now() -> float:
    return time.perf_counter()


def die_with_parent() -> None:
    """In a child, before exec: SIGTERM when this benchmark dies, even by SIGKILL."""
    ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


async def sleep_until(moment: float) -> None:
    await asyncio.sleep(max(0.0, moment - now()))


async def bounded(limit: int, jobs: Iterable[Callable[[], Awaitable[T]]]) -> list[T]:
    """Run the jobs, at most `limit` at once, keeping their order."""
    gate = asyncio.Semaphore(limit)

    async def one(job: Callable[[], Awaitable[T]]) -> T:
        async with gate:
            return await job()

    return list(await asyncio.gather(*(one(job) for job in jobs)))


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind((HOST, 0))
        port: int = sock.getsockname()[1]
        return port
