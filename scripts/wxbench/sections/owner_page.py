"""Section 7: the owner's page with a year's worth of a busy site in the database: 10,000 users
(100 waiting for approval) and 100,000 logins over the last 30 days (swept into the daily
funnel, as the sweeper leaves them, plus the last hour's 2,000 scenes still live), and 10,000
audit rows. `GET /admin` timed again and again; then every query of the page under
EXPLAIN ANALYZE, the slowest one's plan printed."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any

import aiohttp
import asyncpg

from ..common import HOST, now
from ..tables import say, spread, table
from .oidc import logged_in_browser

if TYPE_CHECKING:
    from ..bench import Bench

USERS, LOGINS, LIVE, AUDIT = 10_000, 100_000, 2_000, 10_000

SEED = [
    # Users, each with an identity; every 100th waits for approval; a few in groups.
    "INSERT INTO wxlogin.users (nickname, status, created_at, updated_at, last_login_at)"
    " SELECT 'user ' || n, CASE WHEN n % 100 = 0 THEN 'pending' ELSE 'active' END,"
    " now() - interval '60 days', now(), now() - (n % 43200) * interval '1 minute'"
    " FROM generate_series(1, $1::int) AS n",
    "INSERT INTO wxlogin.identities (appid, openid, user_id, created_at)"
    " SELECT 'wxbench', 'o-' || id, id, created_at FROM wxlogin.users"
    " ON CONFLICT DO NOTHING",
    "INSERT INTO wxlogin.user_groups (user_id, name, created_at)"
    " SELECT id, CASE WHEN id % 2 = 0 THEN 'editors' ELSE 'readers' END, now()"
    " FROM wxlogin.users WHERE id % 10 = 0 ON CONFLICT DO NOTHING",
    # The logins: scenes over the last 30 days, as they are before the sweeper's pass.
    "INSERT INTO wxlogin.scenes (scene, owner, status, appid, claimant, user_id, created_at,"
    " updated_at, expires_at)"
    " SELECT 'b' || n, 'bench', 'confirmed', 'wxbench', 'o:wxbench:o-' || (n % $2::int + 1),"
    " NULL, t, t, t + interval '5 minutes'"
    " FROM generate_series(1, $1::int) AS n,"
    " LATERAL (SELECT now() - interval '1 hour' - (n % 43000) * interval '1 minute' AS t) AS x",
    "INSERT INTO wxlogin.audit (at, actor, action, subject, detail, address)"
    " SELECT now() - n * interval '1 minute', 'wechat:wxbench:o-' || n, 'login_refused',"
    " '', '{\"reason\": \"not_invited\"}', '127.0.0.1' FROM generate_series(1, $1::int) AS n",
]
LIVE_SCENES = (
    "INSERT INTO wxlogin.scenes (scene, owner, status, appid, created_at, updated_at, expires_at)"
    " SELECT 'live' || n, 'bench', CASE WHEN n % 3 = 0 THEN 'confirmed' ELSE 'pending' END,"
    " 'wxbench', now() - n * interval '1 second', now(), now() + interval '5 minutes'"
    " FROM generate_series(1, $1::int) AS n"
)


async def seed(url: str) -> dict[str, int]:
    from wxlogin.storage.sweeper import sweep_once

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(SEED[0], USERS)
        await conn.execute(SEED[1])
        await conn.execute(SEED[2])
        await conn.execute(SEED[3], LOGINS, USERS)
        await conn.execute(SEED[4], AUDIT)
        from datetime import UTC, datetime

        swept = await sweep_once(conn, datetime.now(UTC))
        await conn.execute(LIVE_SCENES, LIVE)
        await conn.execute("ANALYZE")
        return swept
    finally:
        await conn.close()


async def plans(url: str, admin_id: int) -> list[tuple[str, float, str]]:
    """Each query of the page, EXPLAIN ANALYZE'd: (name, ms, plan)."""
    from datetime import UTC, datetime, timedelta

    from wxlogin.storage import overview

    today = datetime.now(UTC).date()
    queries: list[tuple[str, str, list[Any]]] = [
        ("users (no search)", overview.USERS, ["", None, 50, ""]),
        ("users (search 'user 99')", overview.USERS, ["user 99", None, 50, "user 99"]),
        ("pending users", overview.USERS, ["", "pending", 100, ""]),
        ("logins and funnel per day", overview.DAYS,
         [today - timedelta(days=29), today, datetime.now(UTC)]),
        ("user counts", "SELECT status, count(*) AS n FROM wxlogin.users GROUP BY status", []),
        ("audit (latest 50)", "SELECT id, at, actor, action, subject, detail::text, address"
         " FROM wxlogin.audit ORDER BY at DESC, id DESC LIMIT 50", []),
    ]
    found = []
    conn = await asyncpg.connect(url)
    try:
        for name, query, args in queries:
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {query}", *args)
            plan = "\n".join(row[0] for row in rows)
            total = float(plan.rsplit("Execution Time: ", 1)[1].split(" ")[0])
            found.append((name, total, plan))
    finally:
        await conn.close()
    return found


async def run(bench: Bench) -> None:
    assert bench.a is not None
    loads = 20 if bench.args.quick else 100
    say(f"## 7. The owner's page: `GET /admin` with {USERS:,} users and {LOGINS:,} logins in the"
        f" database, {loads} loads one after another (server A)")
    say()
    started = now()
    seeded_at = time.perf_counter()
    swept = await seed(bench.url)
    seeding = time.perf_counter() - seeded_at
    base = f"http://{HOST}:{bench.a.port}"
    times: list[float] = []
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as browser:
        await logged_in_browser(bench, base, browser)
        conn = await asyncpg.connect(bench.url)
        try:
            admin_id = await conn.fetchval("SELECT max(user_id) FROM wxlogin.sessions")
            await conn.execute("INSERT INTO wxlogin.user_groups (user_id, name, created_at)"
                               " VALUES ($1, 'admin', now())", admin_id)
        finally:
            await conn.close()
        size = 0
        for index in range(loads + 3):  # three to warm up
            begun = time.perf_counter()
            async with browser.get(f"{base}/admin") as page:
                body = await page.read()
                assert page.status == 200, page.status
            if index >= 3:
                times.append((time.perf_counter() - begun) * 1000)
            size = len(body)
    measured = await plans(bench.url, admin_id)
    say(table(["what", "figure"], [
        ["seeding (users, scenes, one sweep into the daily funnel)",
         f"{seeding:.1f} s ({swept.get('scenes', 0):,} scenes swept)"],
        ["**`GET /admin`, p50 / p99 / max (ms)**", f"**{spread(times)}**"],
        ["page size", f"{size / 1024:.0f} KiB"],
    ]))
    say()
    say(table(["query of the page (EXPLAIN ANALYZE)", "ms"],
              [[name, f"{ms:.2f}"] for name, ms, _ in measured]))
    say()
    slowest = max(measured, key=lambda found: found[1])
    say(f"The slowest, {slowest[0]}:")
    say()
    say("```")
    say(slowest[2])
    say("```")
    say()
    bench.footer(started)
