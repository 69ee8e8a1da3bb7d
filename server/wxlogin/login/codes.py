"""Drawing a scene's code: once per scene, kept in the database, a failed draw not kept.

Concurrent fetches in one process share one task; across processes a short lease in the row lets
one process draw while the others wait for the image to appear.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import timedelta

import asyncpg

from ..clock import Clock
from ..errors import WeChatUnreachable
from ..storage import queries
from ..storage.db import acquire
from ..wechat.client import ANSWER_BUDGET, DEADLINE, CodeImage, WeChat

log = logging.getLogger("wxlogin.codes")

LEASE = timedelta(seconds=DEADLINE + 1)  # a draw ends within its deadline, then the lease
POLL_INTERVAL = 0.05


class CodeDrawer:
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, wechat: dict[str, WeChat],
        drawn: Callable[[], None] = lambda: None,
    ) -> None:
        self._pool = pool
        self._drawn = drawn
        self._clock = clock
        self._wechat = wechat
        self._inflight: dict[str, asyncio.Task[CodeImage]] = {}

    def draws_for(self, appid: str) -> bool:
        return appid in self._wechat

    async def get(self, scene: str, appid: str) -> CodeImage:
        task = self._inflight.get(scene)
        if task is None:
            task = asyncio.ensure_future(self._fetch(scene, appid))
            self._inflight[scene] = task
            task.add_done_callback(lambda _t: self._inflight.pop(scene, None))
        # Shielded: a browser that goes away must not cancel the draw the others wait for.
        return await asyncio.shield(task)

    async def _fetch(self, scene: str, appid: str) -> CodeImage:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + ANSWER_BUDGET
        while True:
            async with acquire(self._pool) as conn:
                kept = await queries.code_image(conn, scene)
                if kept is not None:
                    return CodeImage(*kept)
                now = self._clock.now()
                leased = await queries.lease_code_draw(conn, scene, now, now + LEASE)
            if leased:
                return await self._draw(scene, appid, deadline - loop.time())
            if loop.time() > deadline:
                raise WeChatUnreachable()
            await asyncio.sleep(POLL_INTERVAL)  # another process is drawing this scene

    async def _draw(self, scene: str, appid: str, budget: float) -> CodeImage:
        try:
            async with asyncio.timeout(max(budget, 0.0)):
                image = await self._wechat[appid].draw_code(scene)
        except BaseException as exc:
            async with acquire(self._pool) as conn:
                await queries.release_code_draw(conn, scene)
            if isinstance(exc, TimeoutError):
                raise WeChatUnreachable() from None
            raise
        async with acquire(self._pool) as conn:
            await queries.save_code_image(conn, scene, image.data, image.content_type)
        log.info("drew the code for a scene (%s, %d bytes)", image.content_type, len(image.data))
        self._drawn()
        return image
