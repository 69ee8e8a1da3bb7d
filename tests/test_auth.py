"""Forward auth (/api/auth), /api/me and /healthz (T19, T20)."""

from __future__ import annotations

from urllib.parse import unquote

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push


async def test_forward_auth_follows_the_session(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1 = await browser()
    response = await b1.get("/api/auth", headers={"X-Wxlogin-User-Id": "1"})
    assert response.status == 401 and "X-Wxlogin-User-Id" not in response.headers

    scene = await new_scene(b1)
    nickname = "Zoë\r\nX-Evil: 1 <b>"
    assert (await push(await browser(), scene, fw.mint(), nickName=nickname)).status == 200
    await poll(b1, scene, wait=0)
    response = await b1.get("/api/auth")
    assert response.status == 200
    assert response.headers["Cache-Control"] == "no-store"
    encoded = response.headers["X-Wxlogin-Nickname"]
    assert encoded.isascii() and "\r" not in encoded and unquote(encoded) == nickname
    assert "X-Evil" not in response.headers
    me = await (await b1.get("/api/me")).json()
    assert response.headers["X-Wxlogin-User-Id"] == me["user"]["id"]
    assert me["user"]["nickname"] == nickname

    assert (await b1.post("/api/logout")).status == 204
    assert (await b1.get("/api/auth")).status == 401


async def test_no_cors_headers_anywhere(browser: MakeBrowser) -> None:
    b1 = await browser()
    evil = {"Origin": "https://evil.example"}
    for method, path in (("GET", "/api/me"), ("GET", "/healthz"), ("POST", "/api/pushCode"),
                         ("OPTIONS", "/api/scenes"), ("GET", "/api/auth")):
        response = await b1.request(method, path, headers=evil)
        assert not [h for h in response.headers if h.lower().startswith("access-control-")]


async def test_healthz(browser: MakeBrowser) -> None:
    response = await (await browser()).get("/healthz")
    assert response.status == 200 and (await response.json()) == {"ok": True}
