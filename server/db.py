"""Connections: the type query functions take, and borrowing one from the pool with a bound."""

from __future__ import annotations

from typing import TypeAlias

import asyncpg
from asyncpg.pool import PoolAcquireContext, PoolConnectionProxy

Conn: TypeAlias = "asyncpg.Connection[asyncpg.Record] | PoolConnectionProxy[asyncpg.Record]"

# An exhausted pool answers 503 (asyncio.TimeoutError maps to it) instead of waiting forever.
ACQUIRE_TIMEOUT = 5.0


def acquire(pool: asyncpg.Pool) -> PoolAcquireContext[asyncpg.Record]:
    return pool.acquire(timeout=ACQUIRE_TIMEOUT)
