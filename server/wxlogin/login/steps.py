"""The phone's steps (scan, pushCode, deny), each carrying a fresh wx.login code.

One code, one step: the ledger keyed by sha256(code) records the step, the scene, a hash of the
request and the answer. The very same request again gets the same answer without asking WeChat;
the code on another scene is refused (400) and that scene is untouched; the code on the same scene
for another step, or with other data, gets 409 and is never decrypted. The scene is read before any
code is spent, so unknown, expired or closed scenes cost no WeChat call.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, cast

import asyncpg

from ..clock import Clock
from ..errors import CodeAlreadyUsed, CodeReused, WeChatUnreachable, as_api_error
from ..storage import queries
from ..storage.db import acquire
from ..wechat.client import ANSWER_BUDGET, WeChat, WxSession
from . import scenes

log = logging.getLogger("wxlogin.steps")

CODE_LIFETIME = timedelta(minutes=5)
ABANDONED_AFTER = timedelta(seconds=ANSWER_BUDGET + 1)


@dataclass(frozen=True)
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str]


def user_key(appid: str, wx: WxSession) -> str:
    """Who the person is, as every claimant comparison sees it."""
    return f"u:{wx.unionid}" if wx.unionid else f"o:{appid}:{wx.openid}"


def code_hash(code: str) -> bytes:
    return hashlib.sha256(code.encode()).digest()


def request_hash(step: str, scene: str, appid: str, fields: dict[str, Any]) -> bytes:
    canonical = json.dumps([step, scene, appid, fields], sort_keys=True)
    return hashlib.sha256(canonical.encode()).digest()


Action = Callable[[WxSession], Awaitable[Answer]]


class Steps:
    def __init__(self, pool: asyncpg.Pool, clock: Clock) -> None:
        self._pool = pool
        self._clock = clock
        self._inflight: dict[bytes, asyncio.Task[Answer]] = {}

    async def run(
        self,
        *,
        step: str,
        scene: str,
        code: str,
        wechat: WeChat,
        fields: dict[str, Any],
        action: Action,
    ) -> Answer:
        # Shielded as a whole: once the ledger names this code, the step must finish and record
        # its answer even if the client hangs up, so that its identical retry gets that answer.
        task = asyncio.ensure_future(
            self._run(step, scene, code, wechat, request_hash(step, scene, wechat.appid, fields),
                      action)
        )
        return await asyncio.shield(task)

    async def _run(
        self, step: str, scene: str, code: str, wechat: WeChat, digest: bytes, action: Action
    ) -> Answer:
        deadline = asyncio.get_running_loop().time() + ANSWER_BUDGET
        key = code_hash(code)
        async with acquire(self._pool) as conn:
            # The usual step is a fresh code on an open scene: two statements. The ledger is
            # read only when the code was seen before, or the scene is closed (a retry of the
            # step that closed it still gets that step's answer).
            found, now = await scenes.get(conn, scene), self._clock.now()
            is_open = found is not None and found.state(now) in scenes.OPEN
            started = is_open and await queries.ledger_begin(
                conn, key, step=step, scene=scene, request_hash=digest, now=now,
                lifetime=CODE_LIFETIME,
            )
            entry = None if started else await queries.ledger_get(conn, key)
        if entry is not None:
            return await self._replay(key, entry, step, scene, digest, deadline)
        if not started:  # a closed scene, or a used code whose record was swept meanwhile
            raise CodeAlreadyUsed() if is_open else scenes.refuse(found, now)
        this = asyncio.current_task()
        assert this is not None
        self._inflight[key] = cast("asyncio.Task[Answer]", this)
        try:
            return await self._perform(key, code, wechat, action)
        finally:
            del self._inflight[key]

    async def _perform(self, key: bytes, code: str, wechat: WeChat, action: Action) -> Answer:
        try:
            answer = await action(await wechat.code2session(code))
        except Exception as exc:
            # Recorded whatever it was: the code may be spent, so a retry must get this answer.
            error = as_api_error(exc, "running a phone step")
            answer = Answer(
                error.status, {"error": error.code, "message": error.message}, error.headers
            )
        async with acquire(self._pool) as conn:
            stored = await queries.ledger_finish(
                conn, key, answer.status, {"body": answer.body, "headers": answer.headers}
            )
        if stored is not None:  # byte for byte what a retry of this step will be answered
            answer = Answer(answer.status, stored["body"], stored.get("headers", {}))
        return answer

    async def _replay(
        self,
        key: bytes,
        entry: queries.LedgerEntry,
        step: str,
        scene: str,
        digest: bytes,
        deadline: float,
    ) -> Answer:
        if entry.scene != scene:
            raise CodeAlreadyUsed()
        if entry.step != step or entry.request_hash != digest:
            raise CodeReused()
        local = self._inflight.get(key)
        if local is not None:
            return await asyncio.shield(local)
        loop = asyncio.get_running_loop()
        current: queries.LedgerEntry | None = entry
        while current is not None and current.answer is None:
            # The first attempt runs in another process, or ran in one that died: a step never
            # takes longer than its budget, so an older unanswered entry will stay unanswered.
            abandoned = self._clock.now() - current.created_at > ABANDONED_AFTER
            if abandoned or loop.time() > deadline:
                raise WeChatUnreachable()
            await asyncio.sleep(0.05)
            async with acquire(self._pool) as conn:
                current = await queries.ledger_get(conn, key)
        if current is None or current.answer is None or current.answer_status is None:
            raise CodeAlreadyUsed()
        return Answer(
            current.answer_status, current.answer["body"], current.answer.get("headers", {})
        )
