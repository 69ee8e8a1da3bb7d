"""The pool's no-op reset is safe: the one session-level state, an advisory lock, never goes back
to the pool held, even when its unlock is cut short."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import asyncpg
import pytest

from wxlogin.storage.db import keep_session, session_lock

KEY = 424242


@pytest.fixture
async def pool(pg_url: str) -> AsyncIterator[asyncpg.Pool]:
    """One connection, reset as the server's pool resets it: not at all."""
    made = await asyncpg.create_pool(pg_url, min_size=1, max_size=1, reset=keep_session)
    try:
        yield made
    finally:
        await made.close()


async def lock_is_free(db: asyncpg.Connection[asyncpg.Record]) -> bool:
    free: bool = await db.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
    if free:
        await db.execute("SELECT pg_advisory_unlock($1)", KEY)
    return free


async def assert_closed_and_unlocked(
    pool: asyncpg.Pool, db: asyncpg.Connection[asyncpg.Record], pid: int
) -> None:
    """The connection `pid` was closed, not pooled, and the lock went with it."""
    async with pool.acquire() as conn:  # the pool's only connection: a new one
        assert await conn.fetchval("SELECT pg_backend_pid()") != pid
    for _ in range(50):  # the old backend goes away with its lock
        if await lock_is_free(db):
            break
        await asyncio.sleep(0.1)
    assert await lock_is_free(db)


async def test_a_lock_is_released_by_the_time_its_connection_is_back(
    pool: asyncpg.Pool, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    async with pool.acquire() as conn, session_lock(conn, KEY, wait=True) as mine:
        assert mine and not await lock_is_free(db)
        async with session_lock(db, KEY, wait=False) as theirs:
            assert not theirs  # taken: the other process skips its turn
    assert await lock_is_free(db)


async def test_an_unlock_cut_short_closes_the_connection_instead_of_pooling_the_lock(
    pool: asyncpg.Pool, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    held = asyncio.Event()
    pids: list[int] = []

    async def holder() -> None:
        async with pool.acquire() as conn, session_lock(conn, KEY, wait=True):
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            held.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(holder())
    await held.wait()
    task.cancel()  # lands in the sleep; the unlock starts in `finally`
    await asyncio.sleep(0)
    task.cancel()  # and this one cuts the unlock short
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await assert_closed_and_unlocked(pool, db, pids[0])


async def test_a_wait_for_the_lock_cut_short_closes_the_connection_too(
    pool: asyncpg.Pool, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    pids: list[int] = []

    async def taker() -> None:
        async with pool.acquire() as conn:
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            async with session_lock(conn, KEY, wait=True):
                await asyncio.sleep(60)

    assert await db.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
    task = asyncio.create_task(taker())
    for _ in range(100):  # the taker is waiting in pg_advisory_lock
        if await db.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' AND NOT granted"
        ):
            break
        await asyncio.sleep(0.05)
    task.cancel()  # PostgreSQL may grant the lock just as the cancel lands
    await db.execute("SELECT pg_advisory_unlock($1)", KEY)
    with contextlib.suppress(asyncio.CancelledError):
        await task
    await assert_closed_and_unlocked(pool, db, pids[0])
