"""Server-side sessions in PostgreSQL behind aiohttp-session.

The cookie carries only a random id (32 bytes); rows are keyed by HMAC(secret, id), so a database
dump without the secret holds no usable cookie (set WXLOGIN_COOKIE_SECRET to keep the secret out
of the database: see `secrets`). Unknown ids are never adopted. Expiry is decided in SQL against the
injected clock. A session's data holds `browser`, the key that owns this browser's scenes (it
survives the login rotation), and `user_id` once logged in.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
from datetime import datetime, timedelta
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp_session import SESSION_KEY, AbstractStorage, Session

from ..clock import Clock
from .db import Conn, acquire

SESSION_ID = re.compile(r"[A-Za-z0-9_-]{43}")


def new_session_id() -> str:
    return secrets.token_urlsafe(32)


class PgStorage(AbstractStorage):
    def __init__(
        self, pool: asyncpg.Pool, clock: Clock, secret: str, *, ttl: int, secure: bool
    ) -> None:
        super().__init__(
            cookie_name="__Host-wxlogin" if secure else "wxlogin",
            path="/",
            secure=secure,
            httponly=True,
            samesite="Lax",
            max_age=None,  # expiry is ours, in SQL, against the injected clock
        )
        self._pool = pool
        self._clock = clock
        self._secret = secret.encode()
        self.ttl = timedelta(seconds=ttl)

    def id_hash(self, session_id: str) -> bytes:
        return hmac.new(self._secret, b"session:" + session_id.encode(), hashlib.sha256).digest()

    def derived_id(self, scene: str, nonce: bytes) -> str:
        """The post-login id for a scene's login gate: recomputable by us (so a lost answer can be
        delivered again) and by nobody without the secret."""
        mac = hmac.new(self._secret, b"login:" + scene.encode() + nonce, hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).decode().rstrip("=")

    async def load_session(self, request: web.Request) -> Session:
        session_id = self.load_cookie(request)
        if session_id is None or not SESSION_ID.fullmatch(session_id):
            return Session(None, data=None, new=True)
        id_hash = self.id_hash(session_id)
        async with acquire(self._pool) as conn:
            row = await conn.fetchrow(
                "SELECT data, predecessor FROM wxlogin.sessions WHERE id_hash = $1 AND"
                " expires_at > $2",
                id_hash, self._clock.now(),
            )
            if row is None:
                return Session(None, data=None, new=True)
            if row["predecessor"] is not None:
                # First use of a post-login session: the pre-login session, and any other
                # session minted to succeed it (two tabs, two scenes), are now worthless.
                await conn.execute(
                    "WITH old AS (SELECT predecessor FROM wxlogin.sessions WHERE id_hash = $1),"
                    " cleared AS ("
                    "UPDATE wxlogin.sessions SET predecessor = NULL WHERE id_hash = $1)"
                    " DELETE FROM wxlogin.sessions WHERE id_hash <> $1"
                    " AND (id_hash IN (SELECT predecessor FROM old)"
                    " OR predecessor IN (SELECT predecessor FROM old))",
                    id_hash,
                )
        return Session(session_id, data={"session": json.loads(row["data"])}, new=False)

    async def save_session(
        self, request: web.Request, response: web.StreamResponse, session: Session
    ) -> None:
        now = self._clock.now()
        if session.empty:
            if session.identity is not None:
                await self.delete(session.identity)
            self.save_cookie(response, "")
            return
        data: dict[str, Any] = dict(session)
        session_id: str | None = session.identity
        async with acquire(self._pool) as conn:
            if session_id is None:
                session_id = new_session_id()
                session.set_new_identity(session_id)
                expires_at = await conn.fetchval(
                    "INSERT INTO wxlogin.sessions (id_hash, data, user_id, created_at, expires_at)"
                    " VALUES ($1, $2::jsonb, $3, $4, $5) RETURNING expires_at",
                    self.id_hash(session_id), json.dumps(data), data.get("user_id"),
                    now, now + self.ttl,
                )
            else:
                # UPDATE only: a row deleted meanwhile (logout elsewhere) must stay deleted.
                expires_at = await conn.fetchval(
                    "UPDATE wxlogin.sessions SET data = $2::jsonb, user_id = $3"
                    " WHERE id_hash = $1 AND expires_at > $4 RETURNING expires_at",
                    self.id_hash(session_id), json.dumps(data), data.get("user_id"), now,
                )
        if expires_at is None:
            self.save_cookie(response, "")
            return
        max_age = max(1, int((expires_at - now).total_seconds()))
        self.save_cookie(response, session_id, max_age=max_age)

    async def delete(self, session_id: str) -> None:
        """Logout: the session dies with the sessions linked to it that were never used, its
        pre-login predecessor and, if it is itself a pre-login session whose successor's
        cookie was lost, that successor."""
        async with acquire(self._pool) as conn:
            await conn.execute(
                "WITH gone AS (DELETE FROM wxlogin.sessions WHERE id_hash = $1 RETURNING"
                " predecessor)"
                " DELETE FROM wxlogin.sessions WHERE id_hash IN (SELECT predecessor FROM gone)"
                " OR predecessor = $1",
                self.id_hash(session_id),
            )

    def save_cookie(
        self, response: web.StreamResponse, cookie_data: str, *, max_age: int | None = None
    ) -> None:
        if cookie_data:
            super().save_cookie(response, cookie_data, max_age=max_age)
            return
        # A `__Host-` cookie is only replaced by one with the same attributes, Secure included.
        params = self.cookie_params
        response.del_cookie(
            self.cookie_name, path=params["path"], secure=params["secure"],
            httponly=params["httponly"], samesite=params["samesite"],
        )

    async def login(
        self,
        conn: Conn,
        *,
        current: str | None,
        session_id: str,
        browser: str,
        user_id: int,
        now: datetime,
    ) -> None:
        """Store `session_id`, logged in as `user_id`, to succeed the session `current`; call
        inside the gate's transaction, then `adopt` it for the answer.

        The pre-login session row is kept as the new row's predecessor until the new id is
        first used, so the same id can be handed out again if this answer is lost."""
        predecessor = self.id_hash(current) if current else None
        await conn.execute(
            "INSERT INTO wxlogin.sessions (id_hash, data, user_id, predecessor, created_at,"
            " expires_at)"
            " VALUES ($1, $2::jsonb, $3, $4, $5, $6)",
            self.id_hash(session_id), json.dumps({"browser": browser, "user_id": user_id}),
            user_id, predecessor, now, now + self.ttl,
        )

    def adopt(self, request: web.Request, session_id: str, data: dict[str, Any]) -> None:
        """Make `session_id` this request's session, so the response sets its cookie."""
        session = Session(session_id, data={"session": data}, new=False)
        session.changed()
        request[SESSION_KEY] = session

    async def pending_login(
        self, conn: Conn, session_id: str, current: str
    ) -> int | None:
        """The user of `session_id` if it was minted to succeed `current` and never used yet."""
        user_id: int | None = await conn.fetchval(
            "SELECT user_id FROM wxlogin.sessions WHERE id_hash = $1 AND predecessor = $2"
            " AND expires_at > $3",
            self.id_hash(session_id), self.id_hash(current), self._clock.now(),
        )
        return user_id
