"""The sweeper keeps the tables bounded however many login attempts are abandoned."""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage.sweeper import sweep_once

TABLES = ("scenes", "sessions", "code_ledger", "draw_budget", "avatars")


async def counts(db: asyncpg.Connection[asyncpg.Record]) -> dict[str, int]:
    return {t: await db.fetchval(f"SELECT count(*) FROM wxlogin.{t}") for t in TABLES}


async def put_avatar(db: asyncpg.Connection[asyncpg.Record], avatar: str, clock: FakeClock) -> None:
    await db.execute(
        "INSERT INTO wxlogin.avatars (id, scene, claimant, image, created_at)"
        " VALUES ($1, 's', 'c', '\\xff', $2)", avatar, clock.now())


async def test_abandoned_attempts_are_swept_and_live_ones_kept(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server = await make_server(draw_budget=1000)
    abandoned = [await browser(server) for _ in range(30)]
    for b in abandoned:
        await new_scene(b)  # each: a scene, a session, a draw counted
    logged_in, phone = await browser(server), await browser(server)
    await push(phone, await new_scene(logged_in), fw.mint("kept"))  # a ledger entry too
    assert (await logged_in.get("/api/me")).status == 401  # not polled yet
    await put_avatar(db, "orphan", clock)
    await put_avatar(db, "worn", clock)
    await db.execute("UPDATE wxlogin.users SET avatar_url = 'https://x.example/api/avatars/worn.jpg'")
    before = await counts(db)
    assert before["scenes"] == 31 and before["sessions"] == 31 and before["avatars"] == 2

    # Nothing has expired yet: nothing goes.
    assert set((await sweep_once(db, clock.now())).values()) == {0}

    clock.advance(2 * 24 * 3600)  # past every scene's grace, every ledger entry, the uploads
    deleted = await sweep_once(db, clock.now())
    assert deleted == {"expired": 30, "scenes": 31, "sessions": 0, "code_ledger": 1,
                       "draw_budget": 1, "signing_keys": 0, "oidc_codes": 0, "oidc_tokens": 0,
                       "invitations": 0, "audit": 0, "oa_events": 0, "oa_confirms": 0,
                       "avatars": 1}  # one scene was confirmed
    after = await counts(db)
    assert after == {"scenes": 0, "sessions": 31, "code_ledger": 0, "draw_budget": 0,
                     "avatars": 1}  # sessions live 7 days; the avatar a user shows stays
    clock.advance(7 * 24 * 3600)
    assert (await sweep_once(db, clock.now()))["sessions"] == 31


async def test_tables_stay_bounded_under_a_steady_stream_of_abandoned_attempts(
    make_server: MakeServer, browser: MakeBrowser, clock: FakeClock,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server = await make_server(session_ttl=600)
    sizes = []
    for _hour in range(6):
        for _ in range(40):  # forty visitors an hour who never scan
            await new_scene(await browser(server))
        clock.advance(3600)
        await sweep_once(db, clock.now())
        sizes.append(sum((await counts(db)).values()))
    assert sizes[-1] <= sizes[1] and max(sizes) <= 2 * 40 + 1, sizes


async def test_one_process_sweeps_at_a_time(
    pg_url: str, clock: FakeClock, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    other = await asyncpg.connect(pg_url)
    try:
        await other.execute("SELECT pg_advisory_lock($1)", 0x77786C6F67696E + 1)
        assert await sweep_once(db, clock.now()) == {}
        await other.execute("SELECT pg_advisory_unlock_all()")
        assert await sweep_once(db, clock.now()) != {}
    finally:
        await other.close()


async def test_the_server_sweeps_by_itself(
    aiohttp_server: Any, settings: Settings, clock: FakeClock, browser: MakeBrowser,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server = await aiohttp_server(create_app(settings, clock=clock, sweep_every=0.1))
    await new_scene(await browser(server))
    clock.advance(2 * 3600)
    for _ in range(50):
        if await db.fetchval("SELECT count(*) FROM wxlogin.scenes") == 0:
            break
        await asyncio.sleep(0.05)
    assert await db.fetchval("SELECT count(*) FROM wxlogin.scenes") == 0


async def test_a_used_login_nonce_is_forgotten_once_its_scene_expires(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    """It re-delivers a lost login while the scene lives; after that it is only what a dump
    (with a generated cookie key) would need to recompute the session id."""
    server = await make_server()
    desk, phone, waiting = await browser(server), await browser(server), await browser(server)
    used = await new_scene(desk)
    await push(phone, used, fw.mint("used"))
    assert (await poll(desk, used))[1]["status"] == "confirmed"  # the gate is opened
    unused = await new_scene(waiting)
    await push(phone, unused, fw.mint("unused"))  # confirmed, its browser not back yet
    nonce = "SELECT login_nonce FROM wxlogin.scenes WHERE scene = $1"

    await sweep_once(db, clock.now())
    assert len(await db.fetchval(nonce, used)) == 16  # still live: kept for re-delivery

    clock.advance(301)
    await sweep_once(db, clock.now())
    assert await db.fetchval(nonce, used) == b""  # emptied, and the gate stays shut
    assert await db.fetchval(nonce, unused) is None  # never used: its browser may still come
    status, body = await poll(waiting, unused)
    assert status == 200 and body["status"] == "confirmed" and "user" in body
