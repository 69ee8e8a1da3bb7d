"""Long-polls: instant in-process wake-ups, LISTEN/NOTIFY across servers, recovery (R1-R4, R16)."""

from __future__ import annotations

import asyncio
import contextlib
import statistics
import time
from datetime import timedelta

import asyncpg
from aiohttp.test_utils import TestServer

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, step
from wxlogin.clock import FakeClock
from wxlogin.http import inputs
from wxlogin.http.keys import SERVICES
from wxlogin.login.notify import LISTENER


def test_wait_defaults_to_25_and_is_capped_at_50() -> None:
    assert inputs.wait(None) == 25
    assert inputs.wait("999") == 50
    assert inputs.wait("0") == 0


async def test_a_poll_answers_at_once_when_the_status_differs_from_since(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    await step(await browser(), scene, "scan", fw.mint("x"))
    started = time.monotonic()
    _, body = await poll(b1, scene, wait=30)  # since defaults to pending
    assert body["status"] == "scanned" and time.monotonic() - started < 1
    started = time.monotonic()
    _, body = await poll(b1, scene, wait=1, since="scanned")
    assert body["status"] == "scanned" and 0.9 < time.monotonic() - started < 3


async def test_polls_hold_no_database_connection(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    owners = [await browser() for _ in range(40)]  # four times the pool's size
    scenes = [await new_scene(owner) for owner in owners]
    polls = [
        asyncio.create_task(poll(owner, s, wait=20))
        for owner, s in zip(owners, scenes, strict=True)
    ]
    await asyncio.sleep(0.5)
    busy = await db.fetchval(
        "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
        " AND state = 'active' AND pid <> pg_backend_pid() AND application_name <> $1",
        LISTENER,
    )
    assert busy == 0
    phone = await browser()
    started = time.monotonic()
    for scene in scenes:
        assert (await push(phone, scene, fw.mint())).status == 200
    answers = await asyncio.wait_for(asyncio.gather(*polls), 10)
    assert {body["status"] for _, body in answers} == {"confirmed"}
    assert time.monotonic() - started < 10


async def test_in_process_wake_up_latency(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    latencies = []
    for _ in range(20):
        scene = await new_scene(b1)
        waiting = asyncio.create_task(poll(b1, scene, wait=10))
        await asyncio.sleep(0.02)
        response = await push(phone, scene, fw.mint())
        pushed = time.monotonic()
        assert response.status == 200
        await waiting
        latencies.append(time.monotonic() - pushed)
        await b1.post("/api/logout")
    # A figure for the notes, not a timed assertion: wake-ups must simply all arrive.
    median, worst = statistics.median(latencies) * 1000, max(latencies) * 1000
    print(f"in-process push->poll answer after the push's reply: "
          f"median {median:.1f} ms, max {worst:.1f} ms")


async def test_a_poll_on_one_server_wakes_on_a_push_to_another(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    # The re-check is slowed to a minute: only the NOTIFY can wake the poll in time.
    server_a = await make_server(recheck_every=60)
    server_b = await make_server(recheck_every=60)
    b1 = await browser(server_a)
    phone = await browser(server_b)
    scene = await new_scene(b1)
    await asyncio.sleep(0.2)  # both listeners up
    waiting = asyncio.create_task(poll(b1, scene, wait=20))
    await asyncio.sleep(0.1)
    started = time.monotonic()
    assert (await push(phone, scene, fw.mint())).status == 200
    _, body = await asyncio.wait_for(waiting, 5)
    assert body["status"] == "confirmed"
    assert time.monotonic() - started < 2
    assert await me(b1) == 200


async def test_a_lost_listen_connection_delays_but_loses_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server_a, server_b = await make_server(), await make_server()
    b1, phone = await browser(server_a), await browser(server_b)
    await asyncio.sleep(0.2)
    for _ in range(3):
        scene = await new_scene(b1)
        waiting = asyncio.create_task(poll(b1, scene, wait=20))
        await asyncio.sleep(0.1)
        killed = await db.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE application_name = $1", LISTENER
        )
        assert killed >= 1
        assert (await push(phone, scene, fw.mint())).status == 200
        _, body = await asyncio.wait_for(waiting, 5)
        assert body["status"] == "confirmed"
        await b1.post("/api/logout")
        b1 = await browser(server_a)


async def test_the_recheck_wakes_a_poll_whose_change_sent_no_notification(
    browser: MakeBrowser, server: TestServer, db: asyncpg.Connection[asyncpg.Record],
    clock: FakeClock,
) -> None:
    b1, b2, b3 = await browser(), await browser(), await browser()
    moved, expiring, still = await new_scene(b1), await new_scene(b2), await new_scene(b3)
    polls = [
        asyncio.create_task(poll(owner, scene, wait=20))
        for owner, scene in ((b1, moved), (b2, expiring), (b3, still))
    ]
    hub = server.app[SERVICES].hub
    for _ in range(100):  # all three held, so none can learn the change by its first read
        if hub.waiting == 3:
            break
        await asyncio.sleep(0.05)
    assert hub.waiting == 3
    # Behind the server's back: no NOTIFY, so only the re-check (every 0.5 s here) can tell.
    await db.execute("UPDATE wxlogin.scenes SET status = 'denied' WHERE scene = $1", moved)
    await db.execute(
        "UPDATE wxlogin.scenes SET expires_at = $2 WHERE scene = $1",
        expiring, clock.now() - timedelta(seconds=1),
    )
    started = time.monotonic()
    (_, first), (_, second) = await asyncio.wait_for(asyncio.gather(*polls[:2]), 5)
    assert first["status"] == "denied" and second["status"] == "expired"
    assert time.monotonic() - started < 3
    assert not polls[2].done() and hub.waiting == 1  # unchanged: still waiting
    polls[2].cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await polls[2]
