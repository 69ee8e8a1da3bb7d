"""Quota and abuse: per-address and per-browser limits (429 `rate_limited` + Retry-After), the
live pending scene handed back, and the draw budget shared by every process (503 `login_budget`)."""

from __future__ import annotations

import asyncio
import ipaddress
import time
from typing import Any

import aiohttp
import asyncpg

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.http.limits import Buckets, Rate

DRAW = "getwxacodeunlimit"
LOCAL = (ipaddress.ip_network("127.0.0.1/32"),)  # the test clients' proxy, when trusted


def xff(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def create(b: Browser, address: str | None = None) -> Any:
    return await b.post("/api/scenes", headers=xff(address) if address else None)


def test_buckets_allow_a_burst_then_refill_at_the_rate(clock: FakeClock) -> None:
    buckets = Buckets(clock, Rate(3, per=60))
    assert [buckets.take("a") for _ in range(3)] == [0, 0, 0]
    assert buckets.take("a") == 20  # one token every 20 s
    assert buckets.take("b") == 0  # another key has its own bucket
    clock.advance(20)
    assert buckets.take("a") == 0
    assert buckets.take("a") > 0
    assert Buckets(clock, Rate(0)).take("a") == 0  # switched off


def test_buckets_forget_the_oldest_keys_beyond_their_bound(clock: FakeClock) -> None:
    buckets = Buckets(clock, Rate(1), max_keys=100)
    for n in range(1000):
        buckets.take(f"k{n}")
    assert len(buckets._buckets) == 100


async def test_scene_creation_is_limited_per_address_and_changes_nothing(
    make_server: MakeServer, browser: MakeBrowser, clock: FakeClock,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server = await make_server(scenes_per_minute=5)
    answers = [await create(await browser(server)) for _ in range(8)]  # new browsers each
    assert [a.status for a in answers] == [201] * 5 + [429] * 3
    refused = answers[-1]
    assert (await refused.json())["error"] == "rate_limited"
    assert refused.headers["Retry-After"] == "12"  # 5 a minute: one every 12 s
    assert "Set-Cookie" not in refused.headers
    assert await db.fetchval("SELECT count(*) FROM wxlogin.scenes") == 5
    # A forged X-Forwarded-For from an untrusted peer is not another address.
    forged = [await create(await browser(server), f"198.51.100.{n}") for n in range(5)]
    assert {a.status for a in forged} == {429}
    clock.advance(12)
    assert (await create(await browser(server))).status == 201


async def test_a_browser_gets_its_live_pending_scene_back(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock,
) -> None:
    server = await make_server(scenes_per_minute=2)
    b1 = await browser(server)
    first = await new_scene(b1)
    refreshes = [await (await create(b1)).json() for _ in range(20)]  # a refresh flood
    assert {r["scene"] for r in refreshes} == {first}
    assert refreshes[-1]["code_url"] == f"/api/scenes/{first}/code"
    for _ in range(3):
        assert (await b1.get(f"/api/scenes/{first}/code")).status == 200
    assert fw.calls[DRAW] == 1
    # Half its life gone, a new one is made (the old one still logs in if scanned).
    clock.advance(151)
    second = await new_scene(b1)
    assert second != first
    # A scene that was confirmed is no longer handed out.
    await push(await browser(server), second, fw.mint())
    assert await new_scene(b1) not in (first, second)


async def test_mini_program_steps_are_limited_per_address_before_wechat_is_asked(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    server = await make_server(steps_per_minute=3)
    phone = await browser(server)
    scenes = [await new_scene(await browser(server)) for _ in range(5)]
    answers = [await push(phone, scene, fw.mint()) for scene in scenes]
    assert [a.status for a in answers] == [200, 200, 200, 429, 429]
    assert sum(fw.code_calls.values()) == 3  # the refused ones never reached WeChat
    answer = await answers[-1].json()
    assert answer["error"] == "rate_limited" and int(answers[-1].headers["Retry-After"]) >= 1
    scan = await phone.post(f"/api/scenes/{scenes[-1]}/scan", json={"code": fw.mint()})
    assert scan.status == 429


async def test_waiting_polls_are_capped_per_browser(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    server = await make_server(polls_per_session=2)
    b1, phone = await browser(server), await browser(server)
    scene = await new_scene(b1)
    held = [asyncio.create_task(poll(b1, scene, wait=20)) for _ in range(2)]
    await asyncio.sleep(0.2)
    status, body = await poll(b1, scene, wait=20)
    assert (status, body["error"]) == (429, "rate_limited")
    other = await browser(server)  # another browser is not affected
    other_scene = await new_scene(other)
    assert (await poll(other, other_scene, wait=0))[0] == 200
    await push(phone, scene, fw.mint())
    answers = await asyncio.wait_for(asyncio.gather(*held), 5)
    assert {body["status"] for _, body in answers} == {"confirmed"}
    assert (await poll(b1, scene, wait=0))[0] == 200  # released


async def test_the_draw_budget_is_shared_by_every_process(
    make_server: MakeServer, browser: MakeBrowser, clock: FakeClock,
) -> None:
    clock.set(clock.now().replace(second=30))
    a = await make_server(draw_budget=3, trusted_proxies=LOCAL)
    b = await make_server(draw_budget=3, trusted_proxies=LOCAL)
    made = [
        await create(await browser(a), "203.0.113.1"),
        await create(await browser(b), "203.0.113.2"),
        await create(await browser(a), "203.0.113.3"),
    ]
    assert [m.status for m in made] == [201, 201, 201]
    spent = await create(await browser(b), "203.0.113.4")
    assert spent.status == 503
    assert (await spent.json())["error"] == "login_busy"
    assert spent.headers["Retry-After"] == "30"  # the next minute
    clock.advance(30)
    assert (await create(await browser(b), "203.0.113.4")).status == 201


async def test_a_flood_from_one_address_cannot_spend_the_budget_or_lock_others_out(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    """Measured: 1,000 cookie-less creations (each then fetching its code) from one address,
    then 20 people elsewhere log in. Prints the figures."""
    server = await make_server(scenes_per_minute=30, draw_budget=100, trusted_proxies=LOCAL)
    flooder = "203.0.113.66"

    async def attempt(http: aiohttp.ClientSession) -> int:
        async with http.post(server.make_url("/api/scenes"), headers=xff(flooder)) as made:
            if made.status == 201:
                code_url = (await made.json())["code_url"]
                async with http.get(server.make_url(code_url), headers=xff(flooder),
                                    cookies=made.cookies) as code:
                    assert code.status == 200
            return made.status

    started = time.monotonic()
    # No cookie jar: every request is a new browser, as a script flooding us would be.
    async with aiohttp.ClientSession(cookie_jar=aiohttp.DummyCookieJar()) as http:
        statuses = await asyncio.gather(*(attempt(http) for _ in range(1000)))
    took = time.monotonic() - started
    drawn_by_flood = fw.calls[DRAW]
    assert statuses.count(201) == 30 and statuses.count(429) == 970
    assert drawn_by_flood == 30

    for n in range(20):
        address = f"198.51.100.{n + 1}"
        b, phone = await browser(server), await browser(server)
        made = await create(b, address)
        assert made.status == 201, await made.text()
        scene = (await made.json())["scene"]
        assert (await b.get(f"/api/scenes/{scene}/code", headers=xff(address))).status == 200
        assert (await push(phone, scene, fw.mint())).status == 200
        status, body = await poll(b, scene, since="pending")
        assert (status, body["status"]) == (200, "confirmed")
    print(f"\nflood: 1000 creations from one address in {took:.2f} s -> "
          f"{statuses.count(201)} made, {statuses.count(429)} refused (429); "
          f"code draws by the flood {drawn_by_flood}; then 20/20 logins from other addresses; "
          f"draws in all {fw.calls[DRAW]} (budget 100)")
