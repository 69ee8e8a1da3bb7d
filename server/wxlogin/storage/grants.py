"""Queries of the OpenID Connect provider: subjects, authorization codes, tokens.

Codes and tokens are stored as SHA-256 hashes. Redeeming a code is one conditional UPDATE
(the single-use gate); a second redemption finds it redeemed and revokes what the first issued.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime

from .db import Conn


def digest(value: str) -> bytes:
    return hashlib.sha256(value.encode()).digest()


def new_token() -> str:
    return secrets.token_urlsafe(32)


async def subject(conn: Conn, user_id: int) -> str:
    """The user's OIDC `sub`: random, opaque and stable; made on first need."""
    kept: str | None = await conn.fetchval(
        "SELECT oidc_sub FROM wxlogin.users WHERE id = $1", user_id
    )
    if kept is not None:
        return kept
    made = base64.b32encode(secrets.token_bytes(15)).decode().lower()
    sub: str = await conn.fetchval(
        "UPDATE wxlogin.users SET oidc_sub = COALESCE(oidc_sub, $2) WHERE id = $1"
        " RETURNING oidc_sub",
        user_id, made,
    )
    return sub


@dataclass(frozen=True)
class Code:
    client_id: str
    redirect_uri: str
    user_id: int
    scope: str
    nonce: str | None
    code_challenge: str | None
    auth_time: datetime
    expires_at: datetime
    redeemed_at: datetime | None


CODE_COLUMNS = (
    "client_id, redirect_uri, user_id, scope, nonce, code_challenge, auth_time, expires_at,"
    " redeemed_at"
)


async def put_code(
    conn: Conn, code: str, *, client_id: str, redirect_uri: str, user_id: int, scope: str,
    nonce: str | None, code_challenge: str | None, auth_time: datetime, now: datetime,
    expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.oidc_codes (code_hash, client_id, redirect_uri, user_id, scope,"
        " nonce, code_challenge, auth_time, created_at, expires_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        digest(code), client_id, redirect_uri, user_id, scope, nonce, code_challenge,
        auth_time, now, expires_at,
    )


async def redeem_code(conn: Conn, code: str, now: datetime) -> Code | None:
    """The code, if this call is the one that redeems it (unredeemed and unexpired)."""
    row = await conn.fetchrow(
        f"UPDATE wxlogin.oidc_codes SET redeemed_at = $2"
        f" WHERE code_hash = $1 AND redeemed_at IS NULL AND expires_at > $2"
        f" RETURNING {CODE_COLUMNS}",
        digest(code), now,
    )
    return None if row is None else Code(**dict(row))


async def code_was_redeemed(conn: Conn, code: str) -> bool:
    return bool(await conn.fetchval(
        "SELECT redeemed_at IS NOT NULL FROM wxlogin.oidc_codes WHERE code_hash = $1",
        digest(code),
    ))


async def put_token(
    conn: Conn, token: str, *, kind: str, grant_hash: bytes, client_id: str, user_id: int,
    scope: str, auth_time: datetime, now: datetime, expires_at: datetime,
) -> None:
    await conn.execute(
        "INSERT INTO wxlogin.oidc_tokens (token_hash, kind, grant_hash, client_id, user_id,"
        " scope, auth_time, created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        digest(token), kind, grant_hash, client_id, user_id, scope, auth_time, now, expires_at,
    )


@dataclass(frozen=True)
class Token:
    kind: str
    grant_hash: bytes
    client_id: str
    user_id: int
    scope: str
    auth_time: datetime


GRANT_COLUMNS = "kind, grant_hash, client_id, user_id, scope, auth_time"


async def live_token(conn: Conn, token: str, kind: str, now: datetime) -> Token | None:
    row = await conn.fetchrow(
        f"SELECT {GRANT_COLUMNS}"  # no column of users shares a name with these
        " FROM wxlogin.oidc_tokens t JOIN wxlogin.users u ON u.id = t.user_id"
        " WHERE t.token_hash = $1 AND t.kind = $2 AND t.revoked_at IS NULL"
        " AND t.expires_at > $3 AND u.status = 'active'",
        digest(token), kind, now,
    )
    return None if row is None else Token(**dict(row))


async def session_started(conn: Conn, id_hash: bytes) -> datetime | None:
    """When a session was made: for a logged-in one, when its browser logged in."""
    started: datetime | None = await conn.fetchval(
        "SELECT created_at FROM wxlogin.sessions WHERE id_hash = $1", id_hash
    )
    return started


async def spend_refresh(conn: Conn, token: str, now: datetime) -> Token | None:
    """The refresh token, if this call is the one that spends it (rotation's single-use gate)."""
    row = await conn.fetchrow(
        "UPDATE wxlogin.oidc_tokens SET revoked_at = $2"
        " WHERE token_hash = $1 AND kind = 'refresh' AND revoked_at IS NULL AND expires_at > $2"
        f" RETURNING {GRANT_COLUMNS}",
        digest(token), now,
    )
    return None if row is None else Token(**dict(row))


async def family_of(conn: Conn, token: str) -> bytes | None:
    """The grant a spent (revoked) refresh token belongs to: presented again, it was stolen."""
    family: bytes | None = await conn.fetchval(
        "SELECT grant_hash FROM wxlogin.oidc_tokens WHERE token_hash = $1 AND kind = 'refresh'"
        " AND revoked_at IS NOT NULL",
        digest(token),
    )
    return family


async def revoke_family(conn: Conn, grant_hash: bytes, now: datetime) -> int:
    """Revoke every live token issued from one code (and its refreshes); returns how many."""
    revoked = await conn.fetch(
        "UPDATE wxlogin.oidc_tokens SET revoked_at = $2 WHERE grant_hash = $1"
        " AND revoked_at IS NULL RETURNING 1",
        grant_hash, now,
    )
    return len(revoked)
