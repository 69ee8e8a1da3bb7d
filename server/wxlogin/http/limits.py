"""Rate limits: token buckets per client address and per session, kept in this process.

A flood must cost us as little as possible, so these are decided in memory, before any database
work; with several processes each keeps its own buckets (a limit then holds per process). The
one limit that protects something shared, WeChat's 5,000 code draws a minute for the mini
program, is counted in PostgreSQL across processes (`queries.take_draw`).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from ..clock import Clock
from ..errors import RateLimited


@dataclass(frozen=True)
class Rate:
    """`count` requests per `per` seconds, with bursts of up to `count`; count 0 is no limit."""

    count: int
    per: float = 60.0


class Buckets:
    def __init__(self, clock: Clock, rate: Rate, *, max_keys: int = 100_000) -> None:
        self._clock = clock
        self._rate = rate
        self._max_keys = max_keys  # the least recently seen keys go first (a full bucket)
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()

    def take(self, key: str) -> float:
        """Spend one token for `key`: 0 when allowed, else the seconds until one is back."""
        if self._rate.count <= 0:
            return 0.0
        now = self._clock.now().timestamp()
        refill = self._rate.count / self._rate.per
        tokens, then = self._buckets.pop(key, (float(self._rate.count), now))
        tokens = min(float(self._rate.count), tokens + (now - then) * refill)
        wait = 0.0
        if tokens >= 1:
            tokens -= 1
        else:
            wait = (1 - tokens) / refill
        self._buckets[key] = (tokens, now)
        while len(self._buckets) > self._max_keys:
            self._buckets.popitem(last=False)
        return wait

    def check(self, key: str, what: str) -> None:
        wait = self.take(key)
        if wait > 0:
            raise RateLimited(what, retry_after=math.ceil(wait))


class Concurrency:
    """At most `limit` requests at once per key (long-polls held per session)."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._held: dict[str, int] = {}

    @contextmanager
    def hold(self, key: str, what: str) -> Iterator[None]:
        held = self._held.get(key, 0)
        if 0 < self._limit <= held:
            raise RateLimited(what, retry_after=1)
        self._held[key] = held + 1
        try:
            yield
        finally:
            left = self._held[key] - 1
            if left:
                self._held[key] = left
            else:
                del self._held[key]

    def total(self) -> int:
        return sum(self._held.values())


@dataclass(frozen=True)
class Limits:
    """Every limit of one app: settings decide the rates (see Settings)."""

    scenes_by_ip: Buckets
    scenes_by_session: Buckets
    steps_by_ip: Buckets
    polls_by_session: Concurrency
    polls_by_ip: Concurrency
