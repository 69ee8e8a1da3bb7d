"""Connections: the type query functions take, and borrowing one from the pool with a bound."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# An exhausted pool answers 503 (asyncio.TimeoutError maps to it) instead of waiting forever.
ACQUIRE_TIMEOUT = 5.0


class PoolUnavailable(Exception):
    """The pool could not be opened at start: the process must not serve without it."""


def acquire(pool: asyncpg.Pool) -> PoolAcquireContext[asyncpg.Record]:
    return pool.acquire(timeout=ACQUIRE_TIMEOUT)


async def keep_session(_conn: asyncpg.Connection) -> None:
    """The pool's reset: nothing to undo, so no reset query on every release.

    asyncpg's default sends `pg_advisory_unlock_all(); CLOSE ALL; UNLISTEN *; RESET ALL` each time
    a connection goes back, a round trip that was a third of the statements of a login. Pooled
    connections here never SET, LISTEN or keep cursors; asyncpg still rolls back a transaction
    left open; the one session-level state, an advisory lock, goes through `session_lock`.
    """


@contextlib.asynccontextmanager
async def session_lock(conn: Conn, key: int, *, wait: bool) -> AsyncIterator[bool]:
    """Hold a session-level advisory lock (yields False when `wait` is off and it is taken).

    If taking or releasing it is cut short, the connection is closed rather than returned to the
    pool perhaps holding the lock, which would stop every later taker in every process.
    """
    try:
        if wait:
            await conn.execute("SELECT pg_advisory_lock($1)", key)
            taken = True
        else:
            taken = await conn.fetchval("SELECT pg_try_advisory_lock($1)", key)
    except BaseException:
        conn.terminate()  # cut short (a timeout, a cancel): PostgreSQL may have granted it
        raise
    if not taken:
        yield False
        return
    try:
        yield True
    finally:
        try:
            await conn.execute("SELECT pg_advisory_unlock($1)", key)
        except BaseException:
            conn.terminate()
            raise
