"""Housekeeping: delete what has expired, so the tables stay bounded however many login
attempts are abandoned.

Every process runs the loop; an advisory lock lets one sweep at a time. Rows go in batches, so
no delete holds locks for long. A scene is kept for a while after it expires (`SCENE_GRACE`):
its owner's poll still learns "expired" (instead of "gone"), and a confirmed one still logs in
a browser that was away when it was confirmed. The nonce of a login already made is forgotten as
soon as its scene expires.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import datetime, timedelta

import asyncpg

from ..clock import Clock
from .db import Conn, acquire, session_lock
from .signing import RETIRED_KEPT

log = logging.getLogger("wxlogin.sweeper")

LOCK_KEY = 0x77786C6F67696E + 1  # the migrations' key + 1
BATCH = 5000
SCENE_GRACE = timedelta(hours=1)
AVATAR_GRACE = timedelta(days=1)  # an upload not put on a user by then never will be
BUDGET_GRACE = timedelta(hours=1)
OIDC_CODE_GRACE = timedelta(hours=1)  # login/oidc.py's ACCESS_LIFETIME
INVITATION_GRACE = timedelta(days=30)  # still listed (as expired) on the owner's page a while
AUDIT_KEPT = timedelta(days=180)  # WXLOGIN_AUDIT_DAYS' default

# A scene leaves the table into its day's row of the funnel, in the statement that deletes it.
SCENES_OUT = (
    "WITH gone AS (DELETE FROM wxlogin.scenes WHERE ctid IN"
    " (SELECT ctid FROM wxlogin.scenes WHERE expires_at < $1 LIMIT {batch})"
    " RETURNING status, claimant, deny_reason, entry, created_at),"
    " arrived AS (INSERT INTO wxlogin.arrival_days AS a (day, entry, logins)"
    " SELECT (created_at AT TIME ZONE 'UTC')::date, coalesce(entry, 0), count(*) FROM gone"
    " WHERE status = 'confirmed' GROUP BY 1, 2"
    " ON CONFLICT (day, entry) DO UPDATE SET logins = a.logins + EXCLUDED.logins),"
    " counted AS (INSERT INTO wxlogin.funnel_days AS f"
    " (day, created, scanned, confirmed, denied, refused, expired)"
    " SELECT (created_at AT TIME ZONE 'UTC')::date, count(*),"
    " count(*) FILTER (WHERE claimant IS NOT NULL),"
    " count(*) FILTER (WHERE status = 'confirmed'),"
    " count(*) FILTER (WHERE status = 'denied' AND deny_reason IS NULL),"
    " count(*) FILTER (WHERE deny_reason IS NOT NULL),"
    " count(*) FILTER (WHERE status IN ('pending', 'scanned')) FROM gone GROUP BY 1"
    " ON CONFLICT (day) DO UPDATE SET created = f.created + EXCLUDED.created,"
    " scanned = f.scanned + EXCLUDED.scanned, confirmed = f.confirmed + EXCLUDED.confirmed,"
    " denied = f.denied + EXCLUDED.denied, refused = f.refused + EXCLUDED.refused,"
    " expired = f.expired + EXCLUDED.expired)"
    " SELECT status FROM gone"
)

# Each: a table, and the condition (on $1, the cut-off) for rows that may go.
RULES: dict[str, tuple[str, str, timedelta]] = {
    "scenes": ("wxlogin.scenes", "expires_at < $1", SCENE_GRACE),
    "sessions": ("wxlogin.sessions", "expires_at < $1", timedelta(0)),
    "code_ledger": ("wxlogin.code_ledger", "expires_at < $1", timedelta(0)),
    "draw_budget": ("wxlogin.draw_budget", "minute < $1", BUDGET_GRACE),
    "signing_keys": ("wxlogin.signing_keys", "state = 'retired' AND retired_at < $1", RETIRED_KEPT),
    # A used code is kept while the tokens it gave live, so that its replay still revokes them.
    "oidc_codes": ("wxlogin.oidc_codes", "expires_at < $1", OIDC_CODE_GRACE),
    "oidc_tokens": ("wxlogin.oidc_tokens", "expires_at < $1", timedelta(0)),
    "invitations": ("wxlogin.invitations", "expires_at < $1", INVITATION_GRACE),
    "audit": ("wxlogin.audit", "at < $1", AUDIT_KEPT),
    # WeChat retries an event within seconds; a confirm link lives minutes.
    "oa_events": ("wxlogin.oa_events", "received_at < $1", timedelta(hours=1)),
    "oa_confirms": ("wxlogin.oa_confirms", "expires_at < $1", timedelta(hours=1)),
    # Only uploads no user shows any more (a user's avatar_url ends in /api/avatars/<id>.jpg).
    "avatars": (
        "wxlogin.avatars",
        "created_at < $1 AND id NOT IN (SELECT substring(avatar_url FROM"
        " '/api/avatars/([A-Za-z0-9_-]+)\\.jpg$') FROM wxlogin.users"
        " WHERE avatar_url LIKE '%/api/avatars/%.jpg')",
        AVATAR_GRACE,
    ),
}


async def sweep_once(
    conn: Conn, now: datetime, audit_kept: timedelta = AUDIT_KEPT
) -> dict[str, int]:
    """Delete everything expired as of `now` (the audit once older than `audit_kept`); returns
    the rows deleted per table, and under "expired" how many of the scenes were never finished
    (pending or scanned). Does nothing (empty answer) while another process sweeps."""
    deleted: dict[str, int] = {}
    async with session_lock(conn, LOCK_KEY, wait=False) as mine:
        if not mine:
            return {}
        # A used login gate's nonce re-delivers a lost login only until the scene expires;
        # after that it would only let a dump (with a generated cookie key) recompute the
        # session id. Emptied, not NULL: NULL would open the gate again.
        await conn.execute(
            "UPDATE wxlogin.scenes SET login_nonce = ''::bytea"
            " WHERE login_nonce <> ''::bytea AND expires_at <= $1",
            now,
        )
        for name, (table, condition, grace) in RULES.items():
            total = 0
            if name == "audit":
                grace = audit_kept
            while True:
                query = SCENES_OUT.format(batch=BATCH) if name == "scenes" else (
                    f"DELETE FROM {table} WHERE ctid IN"
                    f" (SELECT ctid FROM {table} WHERE {condition} LIMIT {BATCH})"
                    f" RETURNING NULL AS status"
                )
                rows = await conn.fetch(query, now - grace)
                total += len(rows)
                if name == "scenes":
                    unfinished = sum(row["status"] in ("pending", "scanned") for row in rows)
                    deleted["expired"] = deleted.get("expired", 0) + unfinished
                if len(rows) < BATCH:
                    break
            deleted[name] = total
    return deleted


async def sweep_forever(
    pool: asyncpg.Pool, clock: Clock, every: float,
    swept: Callable[[dict[str, int]], None] = lambda deleted: None,
    audit_kept: timedelta = AUDIT_KEPT,
) -> None:
    """Sweep every `every` seconds (with a little jitter, so processes spread out)."""
    while True:
        await asyncio.sleep(every * random.uniform(0.8, 1.2))  # noqa: S311 - not a secret
        try:
            async with acquire(pool) as conn:
                deleted = await sweep_once(conn, clock.now(), audit_kept)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("sweep skipped: the database is unavailable (%s)", type(exc).__name__)
            continue
        except Exception:  # a bug must not end housekeeping for the life of the process
            log.exception("sweep failed")
            continue
        swept(deleted)
        if any(deleted.values()):
            log.info("swept %s", ", ".join(f"{n} {t}" for t, n in deleted.items() if n))
