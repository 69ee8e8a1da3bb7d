"""Whatever WeChat does, and whatever happened to another process, an answer comes within 15 s."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable

from aiohttp import ClientResponse

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat, Fault
from tests.helpers import new_scene, push
from wxlogin.clock import FakeClock


async def timed(request: Awaitable[ClientResponse]) -> tuple[ClientResponse, float]:
    started = time.monotonic()
    response = await request
    return response, time.monotonic() - started


async def test_two_servers_drawing_one_scene_answer_within_15_seconds(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat
) -> None:
    server_a, server_b = await make_server(), await make_server()
    b_on_a = await browser(server_a)
    scene = await new_scene(b_on_a)
    b_on_b = await browser(server_b, cookie_jar=b_on_a.session.cookie_jar)  # one browser
    # Every draw attempt stalls 4.8 s and then rejects the token: each server's draw, refresh
    # and retry takes ~10 s, so the server that waits for the other's lease and then draws
    # itself would take ~20 s without its own budget.
    fw.fail("getwxacodeunlimit", *[Fault(delay=4.8, errcode=40001) for _ in range(4)])
    first = asyncio.ensure_future(timed(b_on_a.get(f"/api/scenes/{scene}/code")))
    await asyncio.sleep(0.2)
    second = asyncio.ensure_future(timed(b_on_b.get(f"/api/scenes/{scene}/code")))
    for response, elapsed in await asyncio.gather(first, second):
        assert response.status in (502, 504), await response.text()
        assert response.content_type == "application/json"
        assert elapsed < 15, elapsed


async def test_a_retry_of_an_abandoned_step_answers_at_once(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    server_a, server_b = await make_server(), await make_server()
    b1 = await browser(server_a)
    scene = await new_scene(b1)
    phone_a, phone_b = await browser(server_a), await browser(server_b)
    code = fw.mint()
    fw.fail("jscode2session", Fault(delay=8))
    stalled = asyncio.ensure_future(push(phone_a, scene, code))
    await asyncio.sleep(0.3)  # server A has recorded the code and is waiting on WeChat

    # Server B sees the step in flight elsewhere and waits for its answer ...
    response, elapsed = await timed(push(phone_b, scene, code))
    assert response.status == 504 and elapsed < 15
    assert (await stalled).status == 504
    assert fw.code_calls[code] == 1

    # ... and a step whose process vanished (never answered, older than any step can take)
    # is answered at once rather than waited for.
    other_scene, other_code = await new_scene(b1), fw.mint()
    fw.fail("jscode2session", Fault(delay=8))
    stalled = asyncio.ensure_future(push(phone_a, other_scene, other_code))
    await asyncio.sleep(0.3)
    clock.advance(16)
    response, elapsed = await timed(push(phone_b, other_scene, other_code))
    assert response.status == 504 and elapsed < 1
    await stalled
