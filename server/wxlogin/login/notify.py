"""Wake-ups for long-polls: in-process at once, across processes through LISTEN/NOTIFY.

The row is the truth; a notification only says "read it again". One dedicated connection per
process listens (not a pooled one); when it is lost it reconnects with backoff and then wakes
every waiter. Between notifications the same connection re-checks all watched scenes in one
query, so a lost notification only delays an answer. Waiting polls hold no pooled connection,
and neither does their re-check: the pool stays free for the requests that need it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

import asyncpg

from ..clock import Clock
from . import scenes

log = logging.getLogger("wxlogin.notify")

CHANNEL = "wxlogin_scenes"
LISTENER = "wxlogin listener"  # the application_name of each process's LISTEN connection


@dataclass(eq=False)
class Waiter:
    since: str
    event: asyncio.Event = field(default_factory=asyncio.Event)


class Hub:
    def __init__(
        self,
        connect: Callable[[], Awaitable[asyncpg.Connection]],
        clock: Clock,
        *,
        recheck_every: float = 5.0,
    ) -> None:
        self._connect = connect
        self._clock = clock
        self._recheck_every = recheck_every
        self._waiters: dict[str, set[Waiter]] = {}
        self._count = 0  # kept, not summed: /metrics reads it, at any number of waiters
        self.listening = asyncio.Event()
        self.wakeups = 0
        self.closing = False  # shutting down: polls answer now instead of waiting

    @property
    def waiting(self) -> int:
        return self._count

    @contextlib.contextmanager
    def watch(self, scene: str, since: str) -> Iterator[Waiter]:
        waiter = Waiter(since)
        self._waiters.setdefault(scene, set()).add(waiter)
        self._count += 1
        try:
            yield waiter
        finally:
            self._count -= 1
            group = self._waiters.get(scene)
            if group is not None:
                group.discard(waiter)
                if not group:
                    del self._waiters[scene]

    def wake(self, scene: str) -> None:
        for waiter in self._waiters.get(scene, ()):
            waiter.event.set()
            self.wakeups += 1

    def close(self) -> None:
        self.closing = True
        self.wake_all()

    def wake_all(self) -> None:
        for scene in list(self._waiters):
            self.wake(scene)

    def _on_notify(self, _conn: object, _pid: int, _channel: str, payload: object) -> None:
        if isinstance(payload, str):
            self.wake(payload)

    async def listen(self) -> None:
        """Keep one LISTEN connection up for as long as the process runs."""
        backoff = 0.2
        while True:
            lost = asyncio.Event()
            try:
                conn = await self._connect()
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                self.listening.clear()
                log.warning("LISTEN connection failed (%s); retrying", type(exc).__name__)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            try:
                conn.add_termination_listener(lambda _c, lost=lost: lost.set())
                await conn.add_listener(CHANNEL, self._on_notify)
                backoff = 0.2
                self.listening.set()
                # Whatever changed while we were not listening is read again now.
                self.wake_all()
                while True:
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(self._recheck_every):
                            await lost.wait()
                    if lost.is_set() or conn.is_closed():
                        break
                    # A re-check slower than the interval means the connection is stuck.
                    async with asyncio.timeout(self._recheck_every):
                        await self.recheck_once(conn)
                log.warning("LISTEN connection lost; reconnecting")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("LISTEN connection broke (%s); reconnecting", type(exc).__name__)
            finally:
                self.listening.clear()
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(conn.close(), 2)

    async def recheck_once(self, conn: asyncpg.Connection) -> None:
        """Re-read every watched scene in one query and wake those that moved."""
        watched = {(scene, w.since) for scene, group in self._waiters.items() for w in group}
        if not watched:
            return
        moved = await scenes.moved(conn, list(watched), self._clock.now())
        for scene, since in moved:
            for waiter in list(self._waiters.get(scene, ())):
                if waiter.since == since:
                    waiter.event.set()
