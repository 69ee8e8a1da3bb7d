"""The pool's no-op reset is safe: the one session-level state, an advisory lock, never goes back
to the pool held, even when its unlock is cut short."""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg

from server.db import keep_session, session_lock

KEY = 424242


async def lock_is_free(db: asyncpg.Connection[asyncpg.Record]) -> bool:
    free: bool = await db.fetchval("SELECT pg_try_advisory_lock($1)", KEY)
    if free:
        await db.execute("SELECT pg_advisory_unlock($1)", KEY)
    return free


async def test_a_lock_is_released_by_the_time_its_connection_is_back(
    pg_url: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1, reset=keep_session)
    try:
        async with pool.acquire() as conn, session_lock(conn, KEY, wait=True) as mine:
            assert mine and not await lock_is_free(db)
            async with session_lock(db, KEY, wait=False) as theirs:
                assert not theirs  # taken: the other process skips its turn
        assert await lock_is_free(db)
    finally:
        await pool.close()


async def test_an_unlock_cut_short_closes_the_connection_instead_of_pooling_the_lock(
    pg_url: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1, reset=keep_session)
    held = asyncio.Event()
    pids: list[int] = []

    async def holder() -> None:
        async with pool.acquire() as conn, session_lock(conn, KEY, wait=True):
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            held.set()
            await asyncio.sleep(60)

    try:
        task = asyncio.create_task(holder())
        await held.wait()
        task.cancel()  # lands in the sleep; the unlock starts in `finally`
        await asyncio.sleep(0)
        task.cancel()  # and this one cuts the unlock short
        try:
            await task
        except asyncio.CancelledError:
            pass
        async with pool.acquire() as conn:  # the pool's only connection: a new one
            assert await conn.fetchval("SELECT pg_backend_pid()") != pids[0]
        for _ in range(50):  # the old backend goes away with its lock
            if await lock_is_free(db):
                break
            await asyncio.sleep(0.1)
        assert await lock_is_free(db)
    finally:
        await pool.close()


async def test_a_wait_for_the_lock_cut_short_closes_the_connection_too(
    pg_url: str, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    pool = await asyncpg.create_pool(pg_url, min_size=1, max_size=1, reset=keep_session)
    pids: list[int] = []

    async def taker() -> None:
        async with pool.acquire() as conn:
            pids.append(await conn.fetchval("SELECT pg_backend_pid()"))
            async with session_lock(conn, KEY, wait=True):
                await asyncio.sleep(60)

    try:
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
        async with pool.acquire() as conn:
            assert await conn.fetchval("SELECT pg_backend_pid()") != pids[0]
        for _ in range(50):
            if await lock_is_free(db):
                break
            await asyncio.sleep(0.1)
        assert await lock_is_free(db)
    finally:
        await pool.close()
