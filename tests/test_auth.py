"""Forward auth (/api/auth), /api/me and /healthz (T19, T20)."""

from __future__ import annotations

import json
from urllib.parse import unquote

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push, run_wxlogin


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


async def test_forward_auth_can_require_a_group(
    browser: MakeBrowser, fw: FakeWeChat, pg_url: str
) -> None:
    anonymous, member = await browser(), await browser()
    assert (await anonymous.get("/api/auth", params={"group": "admin"})).status == 401
    scene = await new_scene(member)
    pushed = await push(await browser(), scene, fw.mint(), nickName="Ada")
    user_id = (await pushed.json())["user"]["id"]
    await poll(member, scene, wait=0)
    refused = await member.get("/api/auth", params={"group": "admin"})
    assert refused.status == 403 and (await refused.json())["error"] == "not_in_group"
    assert (await member.get("/api/auth", params={"group": "no spaces"})).status == 400

    status, out, err = await run_wxlogin(pg_url, "users", "groups", user_id, "add", "admin")
    assert status == 0, err
    await run_wxlogin(pg_url, "users", "groups", user_id, "add", "editors")
    admitted = await member.get("/api/auth", params={"group": "admin"})
    assert admitted.status == 200
    assert admitted.headers["X-Wxlogin-Groups"] == "admin,editors"
    me = await (await member.get("/api/me")).json()
    assert me["user"]["groups"] == ["admin", "editors"]

    status, out, _ = await run_wxlogin(pg_url, "users", "list", "--json")
    listed = json.loads(out)
    assert [(u["id"], u["status"], u["groups"]) for u in listed] == [
        (user_id, "active", ["admin", "editors"])]
    await run_wxlogin(pg_url, "users", "groups", user_id, "remove", "admin")
    assert (await member.get("/api/auth", params={"group": "admin"})).status == 403
    status, _, err = await run_wxlogin(pg_url, "users", "groups", user_id, "add", "bad name")
    assert status == 2 and "group's name" in err
