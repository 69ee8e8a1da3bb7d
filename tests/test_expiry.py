"""Expiry everywhere, decided by one injected clock (T9, R21)."""

from __future__ import annotations

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, step
from wxlogin.clock import FakeClock


async def test_past_the_ttl_every_path_says_expired(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    _, body = await poll(b1, scene, wait=0)
    assert body["expires_in"] == 300
    clock.advance(299)
    _, body = await poll(b1, scene, wait=0)
    assert (body["status"], body["expires_in"]) == ("pending", 1)
    clock.advance(1)

    status, body = await poll(b1, scene, wait=0)
    assert (status, body["status"], body["expires_in"]) == (200, "expired", 0)
    status, body = await poll(b1, scene, wait=5, since="pending")  # answers at once
    assert body["status"] == "expired"
    response = await b1.get(f"/api/scenes/{scene}/code")
    assert response.status == 410
    assert (await response.json())["error"] == "scene_expired"
    for response in (
        await push(phone, scene, fw.mint()),
        await step(phone, scene, "scan", fw.mint()),
        await step(phone, scene, "deny", fw.mint()),
    ):
        assert response.status == 410
        assert (await response.json())["error"] == "scene_expired"
    assert fw.calls["jscode2session"] == 0
    assert fw.calls["getwxacodeunlimit"] == 0
    assert await me(b1) == 401


async def test_a_scanned_scene_expires_too(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    assert (await step(phone, scene, "scan", fw.mint("ann"))).status == 200
    clock.advance(301)
    _, body = await poll(b1, scene, wait=0, since="scanned")
    assert body["status"] == "expired"
    assert (await push(phone, scene, fw.mint("ann"))).status == 410


async def test_a_confirmation_before_expiry_still_logs_in_after_it(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    assert (await push(phone, scene, fw.mint())).status == 200
    clock.advance(600)  # the browser was offline for a while: a confirmed login is not lost
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "confirmed"
    assert await me(b1) == 200


async def test_the_ttl_setting_is_honoured(
    make_server: MakeServer, browser: MakeBrowser, clock: FakeClock
) -> None:
    server = await make_server(scene_ttl=30)
    b1 = await browser(server)
    response = await b1.post("/api/scenes")
    assert (await response.json())["expires_in"] == 30
    scene = (await response.json())["scene"]
    clock.advance(30)
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "expired"
