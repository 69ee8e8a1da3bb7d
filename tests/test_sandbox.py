"""Sandbox mode over HTTP: the stand-in answers WeChat's API for the ordinary client (T26)."""

from __future__ import annotations

import io
import json
from dataclasses import replace
from typing import Any

import zxingcpp
from aiohttp.test_utils import TestServer
from PIL import Image

from tests.conftest import Browser, MakeBrowser, free_port
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, step
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings


async def wx_login(phone: Browser, nickname: str, unionid: bool = False) -> str:
    response = await phone.post("/sandbox/wechat/_phone/login",
                                json={"nickname": nickname, "unionid": unionid})
    assert response.status == 200, await response.text()
    code: str = (await response.json())["code"]
    return code


async def test_the_whole_flow_with_no_account(
    sandbox_server: TestServer, browser: MakeBrowser
) -> None:
    b1, phone = await browser(sandbox_server), await browser(sandbox_server)
    scene = await new_scene(b1)
    response = await b1.get(f"/api/scenes/{scene}/code")
    assert response.status == 200 and response.content_type == "image/png"
    found = zxingcpp.read_barcodes(Image.open(io.BytesIO(await response.read())))
    assert [r.text for r in found] == [
        f"http://127.0.0.1:{sandbox_server.port}/sandbox/phone?scene={scene}"
    ]
    response = await phone.get(f"/sandbox/phone?scene={scene}")
    assert response.status == 200 and "text/html" in response.content_type

    response = await step(phone, scene, "scan", await wx_login(phone, "小红", unionid=True))
    assert response.status == 200
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "scanned"

    code = await wx_login(phone, "小红", unionid=True)
    info = await (await phone.post("/sandbox/wechat/_phone/userinfo", json={"code": code})).json()
    response = await phone.post("/api/pushCode", json={"code": code, "scene": scene, **info})
    assert response.status == 200, await response.text()
    assert (await response.json())["user"]["nickname"] == "小红"
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "confirmed" and await me(b1) == 200

    users = await (await phone.get("/sandbox/wechat/_phone/users")).json()
    assert {"nickname": "小红", "unionid": True} in users["users"]


async def test_the_same_test_user_is_the_same_person(
    sandbox_server: TestServer, browser: MakeBrowser
) -> None:
    b1, phone = await browser(sandbox_server), await browser(sandbox_server)
    ids = []
    for _ in range(2):
        scene = await new_scene(b1)
        response = await phone.post("/api/pushCode", json={
            "scene": scene, "code": await wx_login(phone, "Alice")})
        ids.append((await response.json())["user"]["id"])
    assert ids[0] == ids[1]


async def test_sandbox_codes_are_single_use_like_wechats(
    sandbox_server: TestServer, browser: MakeBrowser
) -> None:
    b1, b2, phone = (await browser(sandbox_server), await browser(sandbox_server),
                     await browser(sandbox_server))
    code = await wx_login(phone, "Bob")
    assert (await step(phone, await new_scene(b1), "scan", code)).status == 200
    response = await step(phone, await new_scene(b2), "scan", code)
    assert response.status == 400  # the ledger refuses it before WeChat would


async def test_with_credentials_there_is_no_sandbox(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    client = await browser()
    for method, path, body in (
        ("POST", "/sandbox/wechat/_phone/login", {"nickname": "x"}),
        ("POST", "/sandbox/wechat/cgi-bin/stable_token", {}),
        ("GET", "/sandbox/wechat/sns/jscode2session", None),
        ("GET", "/sandbox/phone?scene=AAAA", None),
    ):
        response = await client.request(method, path, json=body)
        assert response.status == 404, path
    scene = await new_scene(client)
    await client.get(f"/api/scenes/{scene}/code")
    assert fw.drawn and fw.drawn[0]["scene"] == scene  # codes come from the configured WeChat


async def test_the_sandbox_keeps_its_secrets_in_the_data_dir(
    sandbox_server: TestServer, browser: MakeBrowser, settings: Any
) -> None:
    stored = json.loads((settings.data_dir / "sandbox.json").read_text())
    assert stored["appid"].startswith("wx") and len(stored["secret"]) >= 24
    phone = await browser(sandbox_server)
    response = await phone.get("/sandbox/wechat/_phone/users")
    assert stored["secret"] not in await response.text()


async def test_a_hostile_nickname_is_refused_and_the_state_file_survives(
    sandbox_server: TestServer, browser: MakeBrowser, settings: Any
) -> None:
    phone = await browser(sandbox_server)
    before = (settings.data_dir / "sandbox.json").read_bytes()
    for nickname in ("\\ud800x", "a\\u0000b", "tab\\there", "x" * 33, ""):
        raw = '{"nickname": "' + nickname + '"}'
        response = await phone.post("/sandbox/wechat/_phone/login", data=raw,
                                     headers={"Content-Type": "application/json"})
        assert response.status == 400, nickname
    assert (settings.data_dir / "sandbox.json").read_bytes() == before
    response = await phone.post("/sandbox/wechat/cgi-bin/stable_token", json={
        "grant_type": "client_credential", "appid": json.loads(before)["appid"],
        "secret": "秘密", "force_refresh": False})
    assert response.status == 200 and (await response.json())["errcode"] == 40125


async def test_a_damaged_state_file_is_reported_clearly(settings: Any) -> None:
    from wxlogin.settings import SettingsError
    from wxlogin.wechat.sandbox import SandboxState

    settings.data_dir.mkdir(parents=True, exist_ok=True)
    (settings.data_dir / "sandbox.json").write_text("")
    try:
        SandboxState.load(settings.data_dir)
    except SettingsError as error:
        assert "delete it" in str(error)
    else:
        raise AssertionError("a damaged sandbox.json was accepted")


async def test_the_sandbox_token_survives_a_restart(
    sandbox_server: TestServer, browser: MakeBrowser, settings: Settings,
    aiohttp_server: Any, clock: FakeClock,
) -> None:
    state = json.loads((settings.data_dir / "sandbox.json").read_text())
    body = {"grant_type": "client_credential", "appid": state["appid"],
            "secret": state["secret"], "force_refresh": False}

    async def token(server: TestServer) -> str:
        phone = await browser(server)
        answer = await (await phone.post("/sandbox/wechat/cgi-bin/stable_token", json=body)).json()
        value: str = answer["access_token"]
        return value

    port = free_port()
    restarted = replace(settings, appid=None, secret=None, port=port,
                        public_url=f"http://127.0.0.1:{port}")
    again = await aiohttp_server(create_app(restarted, clock=clock), port=port)
    assert await token(sandbox_server) == await token(again)
