"""OpenID Connect clients kept in the database (`wxlogin clients`)."""

from __future__ import annotations

import re
import secrets
from datetime import datetime

import asyncpg

from ..clients import OidcClient, secret_hash
from .db import Conn

COLUMNS = (
    "client_id, name, secret_hash, redirect_uris, post_logout_redirect_uris, email,"
    " allowed_groups"
)


def _client(row: asyncpg.Record) -> OidcClient:
    return OidcClient(
        client_id=row["client_id"], name=row["name"], secret_hash=row["secret_hash"],
        redirect_uris=tuple(row["redirect_uris"]),
        post_logout_redirect_uris=tuple(row["post_logout_redirect_uris"]),
        email=row["email"], allowed_groups=tuple(row["allowed_groups"]),
    )


def new_client_id(name: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:24] or "client"
    return f"{slug}-{secrets.token_hex(4)}"


def new_secret() -> str:
    return secrets.token_urlsafe(32)


async def get(conn: Conn, client_id: str) -> OidcClient | None:
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM wxlogin.oidc_clients WHERE client_id = $1", client_id
    )
    return None if row is None else _client(row)


async def public(conn: Conn) -> list[OidcClient]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM wxlogin.oidc_clients WHERE secret_hash IS NULL"
    )
    return [_client(row) for row in rows]


async def every(conn: Conn) -> list[OidcClient]:
    rows = await conn.fetch(f"SELECT {COLUMNS} FROM wxlogin.oidc_clients ORDER BY created_at")
    return [_client(row) for row in rows]


async def add(
    conn: Conn, *, name: str, redirect_uris: list[str], post_logout_redirect_uris: list[str],
    public: bool, email: str | None, allowed_groups: list[str], now: datetime,
) -> tuple[str, str | None]:
    """A new client; returns its id and its secret (None for a public client), shown once."""
    client_id, secret = new_client_id(name), None if public else new_secret()
    await conn.execute(
        "INSERT INTO wxlogin.oidc_clients (client_id, name, secret_hash, redirect_uris,"
        " post_logout_redirect_uris, email, allowed_groups, created_at)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        client_id, name, None if secret is None else secret_hash(secret), redirect_uris,
        post_logout_redirect_uris, email, allowed_groups, now,
    )
    return client_id, secret


async def remove(conn: Conn, client_id: str, now: datetime) -> bool:
    """The client goes, and every token it was given stops working with it."""
    async with conn.transaction():
        gone = await conn.fetchval(
            "DELETE FROM wxlogin.oidc_clients WHERE client_id = $1 RETURNING true", client_id
        )
        await conn.execute(
            "UPDATE wxlogin.oidc_tokens SET revoked_at = $2 WHERE client_id = $1"
            " AND revoked_at IS NULL",
            client_id, now,
        )
    return gone is not None


async def rotate_secret(conn: Conn, client_id: str) -> str | None:
    """A new secret for a confidential client (the old one stops working at once)."""
    secret = new_secret()
    changed = await conn.fetchval(
        "UPDATE wxlogin.oidc_clients SET secret_hash = $2 WHERE client_id = $1"
        " AND secret_hash IS NOT NULL RETURNING true",
        client_id, secret_hash(secret),
    )
    return secret if changed else None
