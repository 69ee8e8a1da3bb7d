"""Queries for users, the code ledger, code images and access tokens.

Async functions taking a connection, so callers compose them inside one transaction.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from .db import Conn

# WeChat's placeholder profile since 2021: treated as no profile at all.
PLACEHOLDER_NICKNAMES = {"微信用户", "WeChat User"}


STATUSES = ("active", "pending", "disabled")


@dataclass(frozen=True)
class User:
    id: int
    nickname: str
    avatar_url: str
    status: str  # one of STATUSES: only an active user may log in
    created_at: datetime
    groups: tuple[str, ...] = ()
    phone_sealed: bytes | None = field(default=None, repr=False)  # see login/phones.py

    @property
    def active(self) -> bool:
        return self.status == "active"

    def public(self) -> dict[str, Any]:
        return {"id": str(self.id), "nickname": self.nickname, "avatar_url": self.avatar_url,
                "groups": list(self.groups)}


GROUP = re.compile(r"[A-Za-z0-9_.-]{1,64}")  # the table's CHECK, for early answers
USER_COLUMNS = (
    "id, nickname, avatar_url, status, created_at, phone_sealed,"
    " (SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}') FROM wxlogin.user_groups g"
    " WHERE g.user_id = users.id) AS groups"
)


def _user(row: asyncpg.Record) -> User:
    fields = dict(row)
    fields["groups"] = tuple(fields["groups"])
    return User(**fields)


async def take_draw(conn: Conn, now: datetime, budget: int) -> int:
    """Spend one code draw of this minute's budget: 0 when done, else the seconds until the
    next minute, when there is budget again."""
    taken = await conn.fetchval(
        "INSERT INTO wxlogin.draw_budget AS b (minute, draws)"
        " VALUES (date_trunc('minute', $1::timestamptz), 1)"
        " ON CONFLICT (minute) DO UPDATE SET draws = b.draws + 1 WHERE b.draws < $2"
        " RETURNING draws",
        now, budget,
    )
    return 0 if taken is not None else 60 - now.second


async def get_user(conn: Conn, user_id: int) -> User | None:
    row = await conn.fetchrow(f"SELECT {USER_COLUMNS} FROM wxlogin.users WHERE id = $1", user_id)
    return None if row is None else _user(row)


@dataclass(frozen=True)
class Person:
    """Who WeChat's answer names, as this database knows them (before anything is written)."""

    by_identity: int | None
    by_union: int | None
    status: str | None  # their user's; None for a newcomer

    @property
    def user_id(self) -> int | None:
        return self.by_union or self.by_identity


async def find_person(conn: Conn, *, appid: str, openid: str, unionid: str | None) -> Person:
    """The user behind WeChat's answer, if any; call inside a transaction, which then holds
    this person's locks until it ends.

    Keyed by unionid when WeChat gives one, else by (appid, openid).
    """
    # Lock the identity, then the unionid, always in that order, so concurrent first logins of
    # one person make one user and two transactions can never wait on each other in a cycle.
    await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"o:{appid}:{openid}")
    if unionid:
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"u:{unionid}")
    # Their user's row is locked too, so an owner's change (disable, approve) waits for this
    # login, or this login sees it: never a status read before it and written back after.
    found = await conn.fetchrow(
        "WITH f AS (SELECT (SELECT user_id FROM wxlogin.identities WHERE appid = $1"
        " AND openid = $2) AS by_identity, (SELECT id FROM wxlogin.users WHERE unionid = $3)"
        " AS by_union),"
        " u AS (SELECT status FROM wxlogin.users"
        " WHERE id = (SELECT coalesce(by_union, by_identity) FROM f) FOR UPDATE)"
        " SELECT f.by_identity, f.by_union, u.status FROM f LEFT JOIN u ON true",
        appid, openid, unionid or None,
    )
    assert found is not None  # one row, from the CTE's single row
    return Person(found["by_identity"], found["by_union"], found["status"])


async def save_person(
    conn: Conn,
    person: Person,
    *,
    appid: str,
    openid: str,
    unionid: str | None,
    nickname: str | None,
    avatar_url: str | None,
    now: datetime,
    status: str,
    logged_in: bool,
    phone: Callable[[int], tuple[bytes, str]] | None = None,
) -> User:
    """Make or update `person`'s user (found by find_person in this transaction) with this
    status; `logged_in` marks this as their latest login.

    An openid first seen without a unionid keeps its user when a unionid arrives later.
    """
    user_id = person.user_id
    if user_id is None:
        user_id = await conn.fetchval(
            "INSERT INTO wxlogin.users (unionid, status, created_at, updated_at)"
            " VALUES ($1, $2, $3, $3) RETURNING id",
            unionid, status, now,
        )
    elif unionid and person.by_union is None:
        await conn.execute(
            "UPDATE wxlogin.users SET unionid = $2 WHERE id = $1 AND unionid IS NULL",
            user_id, unionid,
        )
    if person.by_identity is None:
        await conn.execute(
            "INSERT INTO wxlogin.identities (appid, openid, user_id, created_at)"
            " VALUES ($1, $2, $3, $4)",
            appid, openid, user_id, now,
        )
    elif person.by_identity != user_id:
        # This openid was a user of its own before WeChat linked it to a unionid someone
        # already has: the unionid wins, as it names the same person across apps.
        await conn.execute(
            "UPDATE wxlogin.identities SET user_id = $3 WHERE appid = $1 AND openid = $2",
            appid, openid, user_id,
        )
    if nickname in PLACEHOLDER_NICKNAMES:
        nickname = None
    sealed, shown = phone(user_id) if phone is not None else (None, None)
    row = await conn.fetchrow(
        f"UPDATE wxlogin.users SET nickname = COALESCE($2, nickname),"
        f" avatar_url = COALESCE($3, avatar_url), updated_at = $4, status = $5,"
        f" last_login_at = CASE WHEN $6 THEN $4 ELSE last_login_at END,"
        f" phone_sealed = COALESCE($7, phone_sealed), phone_masked = COALESCE($8, phone_masked)"
        f" WHERE id = $1 RETURNING {USER_COLUMNS}",
        user_id, nickname or None, avatar_url or None, now, status, logged_in, sealed, shown,
    )
    assert row is not None
    return _user(row)


async def add_groups(conn: Conn, user_id: int, groups: list[str], now: datetime) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.user_groups (user_id, name, created_at)"
        " SELECT $1, unnest($2::text[]), $3 ON CONFLICT DO NOTHING",
        user_id, groups, now,
    )


# --- the code ledger ---------------------------------------------------------------------------


@dataclass(frozen=True)
class LedgerEntry:
    step: str
    scene: str
    request_hash: bytes
    answer_status: int | None
    answer: dict[str, Any] | None
    created_at: datetime


async def ledger_get(conn: Conn, code_hash: bytes) -> LedgerEntry | None:
    row = await conn.fetchrow(
        "SELECT step, scene, request_hash, answer_status, answer, created_at FROM"
        " wxlogin.code_ledger"
        " WHERE code_hash = $1",
        code_hash,
    )
    if row is None:
        return None
    answer = json.loads(row["answer"]) if row["answer"] is not None else None
    return LedgerEntry(
        row["step"], row["scene"], row["request_hash"], row["answer_status"], answer,
        row["created_at"],
    )


async def ledger_begin(
    conn: Conn,
    code_hash: bytes,
    *,
    step: str,
    scene: str,
    request_hash: bytes,
    now: datetime,
    lifetime: timedelta,
) -> bool:
    """Record the code's first use; False when it was already used."""
    inserted = await conn.fetchval(
        "INSERT INTO wxlogin.code_ledger (code_hash, step, scene, request_hash, created_at,"
        " expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (code_hash) DO NOTHING RETURNING true",
        code_hash, step, scene, request_hash, now, now + lifetime,
    )
    return bool(inserted)


async def ledger_finish(
    conn: Conn, code_hash: bytes, status: int, answer: dict[str, Any]
) -> dict[str, Any] | None:
    """Record a step's answer; returns it as stored (jsonb orders an object's keys its own way,
    and a retried step is answered from the store, so the first answer must be that one too)."""
    stored = await conn.fetchval(
        "UPDATE wxlogin.code_ledger SET answer_status = $2, answer = $3::jsonb"
        " WHERE code_hash = $1 AND answer_status IS NULL RETURNING answer",
        code_hash, status, json.dumps(answer),
    )
    return None if stored is None else dict(json.loads(stored))


# --- code images -------------------------------------------------------------------------------


async def code_image(conn: Conn, scene: str) -> tuple[bytes, str] | None:
    row = await conn.fetchrow(
        "SELECT code_image, code_type FROM wxlogin.scenes WHERE scene = $1 AND code_image IS NOT"
        " NULL",
        scene,
    )
    return None if row is None else (row["code_image"], row["code_type"])


async def lease_code_draw(
    conn: Conn, scene: str, now: datetime, until: datetime
) -> bool:
    """Only the holder of the lease asks WeChat to draw, so a scene costs one draw."""
    return bool(
        await conn.fetchval(
            "UPDATE wxlogin.scenes SET drawing_until = $3 WHERE scene = $1 AND code_image IS NULL"
            " AND (drawing_until IS NULL OR drawing_until <= $2) RETURNING true",
            scene, now, until,
        )
    )


async def save_code_image(
    conn: Conn, scene: str, image: bytes, content_type: str
) -> None:
    await conn.execute(
        "UPDATE wxlogin.scenes SET code_image = $2, code_type = $3, drawing_until = NULL"
        " WHERE scene = $1",
        scene, image, content_type,
    )


async def release_code_draw(conn: Conn, scene: str) -> None:
    await conn.execute("UPDATE wxlogin.scenes SET drawing_until = NULL WHERE scene = $1", scene)


# --- access tokens -----------------------------------------------------------------------------


async def token_get(conn: Conn, appid: str) -> tuple[bytes, datetime] | None:
    row = await conn.fetchrow(
        "SELECT token_sealed, expires_at FROM wxlogin.access_tokens WHERE appid = $1", appid
    )
    return None if row is None else (row["token_sealed"], row["expires_at"])


async def token_put(
    conn: Conn, appid: str, sealed: bytes, token_hash: bytes, expires_at: datetime,
    now: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.access_tokens (appid, token_sealed, token_hash, expires_at,"
        " updated_at)"
        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (appid) DO UPDATE"
        " SET token_sealed = $2, token_hash = $3, expires_at = $4, updated_at = $5",
        appid, sealed, token_hash, expires_at, now,
    )


async def token_expire(conn: Conn, appid: str, token_hash: bytes, now: datetime) -> None:
    """Mark the token dead only if it is still the one that failed."""
    await conn.execute(
        "UPDATE wxlogin.access_tokens SET expires_at = $3 WHERE appid = $1 AND token_hash = $2",
        appid, token_hash, now,
    )


# --- avatars -----------------------------------------------------------------------------------


async def avatar_put(
    conn: Conn, avatar_id: str, scene: str, claimant: str, image: bytes, now: datetime
) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.avatars (id, scene, claimant, image, created_at) VALUES ($1, $2,"
        " $3, $4, $5)",
        avatar_id, scene, claimant, image, now,
    )


async def avatar_image(conn: Conn, avatar_id: str) -> bytes | None:
    image: bytes | None = await conn.fetchval(
        "SELECT image FROM wxlogin.avatars WHERE id = $1", avatar_id
    )
    return image


async def avatar_for(conn: Conn, scene: str, claimant: str) -> str | None:
    """The claimant's latest avatar for this scene, if they uploaded one."""
    avatar_id: str | None = await conn.fetchval(
        "SELECT id FROM wxlogin.avatars WHERE scene = $1 AND claimant = $2"
        " ORDER BY created_at DESC LIMIT 1",
        scene, claimant,
    )
    return avatar_id


async def set_group(conn: Conn, user_id: int, group: str, member: bool, now: datetime) -> bool:
    """Add or remove a membership; False when there is no such user."""
    if not await conn.fetchval("SELECT true FROM wxlogin.users WHERE id = $1", user_id):
        return False
    if member:
        await conn.execute(
            "INSERT INTO wxlogin.user_groups (user_id, name, created_at) VALUES ($1, $2, $3)"
            " ON CONFLICT DO NOTHING",
            user_id, group, now,
        )
    else:
        await conn.execute(
            "DELETE FROM wxlogin.user_groups WHERE user_id = $1 AND name = $2", user_id, group
        )
    return True

