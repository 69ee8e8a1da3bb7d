"""What the owner's page shows, read in a few statements: the users (pending first, searchable),
and the last days' logins and funnel (swept scenes from `funnel_days`, live ones from `scenes`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from .db import Conn


@dataclass(frozen=True)
class UserRow:
    id: int
    nickname: str
    avatar_url: str
    status: str
    groups: tuple[str, ...]
    appids: tuple[str, ...]  # the mini programs (or accounts) they came through
    created_at: datetime
    last_login_at: datetime | None
    phone_masked: str | None  # `+86 138****8000`; the number itself is sealed


@dataclass(frozen=True)
class Day:
    day: date
    created: int
    scanned: int
    confirmed: int
    denied: int  # declined by the person
    refused: int  # turned away by the owner's rules
    expired: int


USERS = (
    "SELECT u.id, u.nickname, u.avatar_url, u.status, u.created_at, u.last_login_at,"
    " u.phone_masked,"
    " (SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}') FROM wxlogin.user_groups g"
    " WHERE g.user_id = u.id) AS groups,"
    " (SELECT coalesce(array_agg(DISTINCT i.appid), '{}') FROM wxlogin.identities i"
    " WHERE i.user_id = u.id) AS appids"
    " FROM wxlogin.users u"
    " WHERE ($1 = '' OR u.nickname ILIKE '%' || $4 || '%' OR u.id::text = $1"
    " OR EXISTS (SELECT 1 FROM wxlogin.user_groups g WHERE g.user_id = u.id AND g.name = $1))"
    " AND ($2::text IS NULL OR u.status = $2)"
    " ORDER BY u.status = 'pending' DESC, u.last_login_at DESC NULLS LAST, u.id DESC LIMIT $3"
)


def _like_escaped(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


async def users(conn: Conn, search: str = "", status: str | None = None,
                limit: int = 50) -> list[UserRow]:
    search = search.strip()
    rows = await conn.fetch(USERS, search, status, limit, _like_escaped(search))
    return [UserRow(**{**dict(row), "groups": tuple(row["groups"]),
                       "appids": tuple(row["appids"])}) for row in rows]


async def user_counts(conn: Conn) -> dict[str, int]:
    rows = await conn.fetch("SELECT status, count(*) AS n FROM wxlogin.users GROUP BY status")
    return {row["status"]: row["n"] for row in rows}


DAYS = (
    "SELECT d::date AS day, coalesce(sum(c.created), 0)::int AS created,"
    " coalesce(sum(c.scanned), 0)::int AS scanned, coalesce(sum(c.confirmed), 0)::int AS confirmed,"
    " coalesce(sum(c.denied), 0)::int AS denied, coalesce(sum(c.refused), 0)::int AS refused,"
    " coalesce(sum(c.expired), 0)::int AS expired"
    " FROM generate_series($1::date, $2::date, interval '1 day') AS d"
    " LEFT JOIN ("
    "  SELECT day, created, scanned, confirmed, denied, refused, expired FROM wxlogin.funnel_days"
    "  WHERE day BETWEEN $1 AND $2"
    "  UNION ALL"
    "  SELECT (created_at AT TIME ZONE 'UTC')::date, count(*), count(*) FILTER"
    "  (WHERE claimant IS NOT NULL), count(*) FILTER (WHERE status = 'confirmed'),"
    "  count(*) FILTER (WHERE status = 'denied' AND deny_reason IS NULL),"
    "  count(*) FILTER (WHERE deny_reason IS NOT NULL), count(*) FILTER"
    "  (WHERE status IN ('pending', 'scanned') AND expires_at <= $3)"
    "  FROM wxlogin.scenes GROUP BY 1"
    " ) AS c ON c.day = d::date"
    " GROUP BY d ORDER BY d"
)


async def days(conn: Conn, now: datetime, count: int = 30) -> list[Day]:
    """The last `count` days (UTC) up to today, every day present (zeros for quiet ones)."""
    today = now.astimezone(UTC).date()
    first = today - timedelta(days=count - 1)
    rows = await conn.fetch(DAYS, first, today, now)
    return [Day(**dict(row)) for row in rows]


ARRIVALS = (
    "SELECT entry, sum(logins)::int AS logins FROM ("
    " SELECT entry, logins FROM wxlogin.arrival_days WHERE day BETWEEN $1 AND $2"
    " UNION ALL"
    " SELECT coalesce(entry, 0), count(*) FROM wxlogin.scenes WHERE status = 'confirmed'"
    " GROUP BY 1"
    ") AS a GROUP BY entry ORDER BY logins DESC"
)


async def arrivals(conn: Conn, now: datetime, count: int = 30) -> list[tuple[int, int]]:
    """Confirmed logins of the last `count` days by entry scene value (0: not told)."""
    today = now.astimezone(UTC).date()
    rows = await conn.fetch(ARRIVALS, today - timedelta(days=count - 1), today)
    return [(row["entry"], row["logins"]) for row in rows]
