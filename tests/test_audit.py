"""The audit (`wxlogin audit`, kept WXLOGIN_AUDIT_DAYS) and the daily funnel the sweeper keeps:
every scene is counted once, before and after it is swept."""

from __future__ import annotations

import json
from datetime import timedelta

import asyncpg

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat
from tests.helpers import new_scene, poll, push, run_wxlogin
from wxlogin.clock import FakeClock
from wxlogin.storage import overview
from wxlogin.storage.sweeper import sweep_once


async def test_wxlogin_audit_shows_owner_actions_and_refusals(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, pg_url: str,
) -> None:
    server = await make_server(registration="invite")
    desk = await browser(server)
    scene = await new_scene(desk)
    assert (await push(await browser(server), scene, fw.mint("walter"))).status == 403
    code, _, err = await run_wxlogin(pg_url, "invite", "--group", "admin", "--note", "for Ann")
    assert code == 0, err

    code, out, err = await run_wxlogin(pg_url, "audit", "--json")
    assert code == 0, err
    entries = json.loads(out)
    assert [e["action"] for e in entries] == ["invite", "login_refused"]  # newest first
    invite, refusal = entries
    assert invite["actor"] == "cli" and invite["detail"]["groups"] == ["admin"]
    assert invite["detail"]["note"] == "for Ann" and invite["subject"].startswith("invitation:")
    assert refusal["detail"] == {"reason": "not_invited", "appid": APPID}
    assert refusal["address"] == "127.0.0.1" and refusal["actor"].startswith("wechat:")
    code, out, _ = await run_wxlogin(pg_url, "audit")
    lines = out.splitlines()
    assert code == 0 and len(lines) == 2 and "invite" in lines[0] and "not_invited" in lines[1]


async def test_the_audit_is_swept_after_the_days_it_is_kept(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record], clock: FakeClock,
) -> None:
    server = await make_server(registration="approval")
    for openid in ("a", "b"):
        desk = await browser(server)
        scene = await new_scene(desk)
        await push(await browser(server), scene, fw.mint(openid))
    assert await db.fetchval("SELECT count(*) FROM wxlogin.audit") == 2
    clock.advance(9 * 24 * 3600)
    assert (await sweep_once(db, clock.now(), timedelta(days=10)))["audit"] == 0
    clock.advance(2 * 24 * 3600)
    assert (await sweep_once(db, clock.now(), timedelta(days=10)))["audit"] == 2
    assert await db.fetchval("SELECT count(*) FROM wxlogin.audit") == 0


async def test_the_daily_funnel_counts_every_scene_once_across_the_sweep(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record], clock: FakeClock,
) -> None:
    server = await make_server()
    phone = await browser(server)
    for n in range(3):  # confirmed
        desk = await browser(server)
        scene = await new_scene(desk)
        await push(phone, scene, fw.mint(f"p{n}"))
        await poll(desk, scene, wait=0)
    desk = await browser(server)
    scene = await new_scene(desk)
    await phone.post(f"/api/scenes/{scene}/scan", json={"code": fw.mint("d")})
    await phone.post(f"/api/scenes/{scene}/deny", json={"code": fw.mint("d")})
    for _ in range(2):  # never scanned
        await new_scene(await browser(server))
    strict = await make_server(registration="invite")  # and one the owner's rules refuse
    scene = await new_scene(await browser(strict))
    assert (await push(await browser(strict), scene, fw.mint("outsider"))).status == 403

    def totals(days: list[overview.Day]) -> tuple[int, ...]:
        return tuple(sum(getattr(d, k) for d in days)
                     for k in ("created", "scanned", "confirmed", "denied", "refused", "expired"))

    live = await overview.days(db, clock.now())
    assert len(live) == 30 and live[-1].day == clock.now().date()
    assert totals(live) == (7, 5, 3, 1, 1, 0)
    clock.advance(3600)  # expired, not yet swept: the two never scanned count as expired
    assert totals(await overview.days(db, clock.now())) == (7, 5, 3, 1, 1, 2)
    clock.advance(2 * 3600)
    assert (await sweep_once(db, clock.now()))["scenes"] == 7
    assert await db.fetchval("SELECT count(*) FROM wxlogin.scenes") == 0
    assert totals(await overview.days(db, clock.now())) == (7, 5, 3, 1, 1, 2)  # the same
    clock.advance(31 * 24 * 3600)  # a month on, that day has left the chart
    assert totals(await overview.days(db, clock.now())) == (0, 0, 0, 0, 0, 0)
