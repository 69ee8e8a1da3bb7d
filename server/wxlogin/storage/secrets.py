"""Secrets the server generates for itself, kept in PostgreSQL.

Every process and machine on one database must agree on them without configuration: two
processes that each made their own cookie key would each refuse the other's sessions. The first
process to need a secret inserts it; the primary key makes every other insert a no-op, and they
all read the one that won. A secret set in the environment always wins and is never stored.

Anyone holding a database dump with a generated cookie key can recompute the session ids of
logins whose scenes are still in the dump; set WXLOGIN_COOKIE_SECRET to keep the key out of it.
"""

from __future__ import annotations

import logging
import secrets
from datetime import datetime
from pathlib import Path

from .db import Conn

log = logging.getLogger("wxlogin.secrets")

COOKIE = "cookie"
MIN_LENGTH = 32


async def generated(conn: Conn, name: str, candidate: str, now: datetime) -> str:
    """The secret called `name`: `candidate` if this call is the first to ask, else the one kept."""
    # Two statements, not one: a conflicting row committed by another process after this
    # statement began is invisible to its snapshot, but visible to the next statement's.
    made = await conn.fetchval(
        "INSERT INTO wxlogin.secrets (name, value, created_at) VALUES ($1, $2, $3)"
        " ON CONFLICT (name) DO NOTHING RETURNING value",
        name, candidate, now,
    )
    if made is not None:
        log.info("generated the %s secret and kept it in the database", name)
        return str(made)
    kept = await conn.fetchval("SELECT value FROM wxlogin.secrets WHERE name = $1", name)
    assert kept is not None  # secrets are never deleted
    return str(kept)


class SecretUnreadable(Exception):
    """An earlier version's key is in the data dir but cannot be used, and the database holds
    none yet: starting would replace it for good and log every browser out."""


def legacy_cookie_secret(data_dir: Path) -> str | None:
    """The key an earlier version generated into the data dir, if there is a file."""
    path = data_dir / "cookie_secret"
    try:
        value = path.read_text().strip()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise SecretUnreadable(f"cannot read {path} ({exc}); fix its permissions, or delete it"
                               " to make a new cookie secret (everyone logs in again)") from exc
    if len(value) < MIN_LENGTH:
        raise SecretUnreadable(f"{path} holds no usable cookie secret; delete it to make a new"
                               " one (everyone logs in again)")
    return value


async def cookie_secret(
    conn: Conn, configured: str | None, data_dir: Path, now: datetime
) -> str:
    """The session cookie's key: WXLOGIN_COOKIE_SECRET when set, else the database's, made on
    first start from the data dir's old key when there is one (so an upgrade logs nobody out)."""
    if configured:
        return configured
    kept = await conn.fetchval("SELECT value FROM wxlogin.secrets WHERE name = $1", COOKIE)
    if kept is None:
        legacy = legacy_cookie_secret(data_dir)
        kept = await generated(conn, COOKIE, legacy or secrets.token_urlsafe(48), now)
        if legacy is not None and kept == legacy:
            log.info("carried the cookie secret of %s into the database", data_dir)
            return str(kept)
    if (data_dir / "cookie_secret").exists():
        log.warning(
            "%s is no longer used: every process uses the cookie secret in the database (browsers"
            " that logged in with another one log in again); delete the file",
            data_dir / "cookie_secret",
        )
    return str(kept)
