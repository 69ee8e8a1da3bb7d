"""The whole login, end to end over HTTP, against the WeChat stand-in and a real PostgreSQL."""

from __future__ import annotations

import asyncio

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, session_cookie


async def test_scan_push_poll_logs_the_browser_in(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code_response = await b1.get(f"/api/scenes/{scene}/code")
    assert code_response.status == 200
    assert code_response.content_type == "image/png"  # sniffed, not WeChat's label
    assert await code_response.read() == fw.image
    assert fw.drawn == [
        {"scene": scene, "page": "pages/login/login", "check_path": True, "env_version": "release"}
    ]

    waiting = asyncio.create_task(poll(b1, scene, wait=10))
    await asyncio.sleep(0.1)
    assert not waiting.done()
    before = session_cookie(b1)
    response = await push(phone, scene, fw.mint("openid-1", "union-1"), nickName="Ada")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert body["ok"] is True and body["user"]["nickname"] == "Ada"

    status, answer = await asyncio.wait_for(waiting, 2)
    assert status == 200
    assert answer["status"] == "confirmed"
    assert answer["user"] == body["user"]
    assert session_cookie(b1) != before
    assert await me(b1) == 200
    assert await me(phone) == 401
