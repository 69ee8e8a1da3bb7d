"""Inputs that once reached a 500: deep JSON, lone surrogates, raw header bytes, a malformed
reply from WeChat (whose exception carried the secret in its URL), placeholder profiles."""

from __future__ import annotations

import asyncio
import base64
import json
import logging
import os

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from cryptography.hazmat.primitives import padding
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import APPID, SECRET, FakeWeChat
from tests.helpers import me, new_scene, poll, push, step

FAKE_NOW = 1767225600  # FakeClock's start, 2026-01-01


async def test_deeply_nested_json_is_a_400(browser: MakeBrowser, fw: FakeWeChat) -> None:
    phone = await browser()
    for path in ("/api/pushCode", "/api/scenes/AAAA/scan", "/api/scenes/AAAA/deny"):
        response = await phone.post(path, data=b"[" * 30000,
                                    headers={"Content-Type": "application/json"})
        assert response.status == 400
        assert (await response.json())["error"] == "bad_request"


async def test_lone_surrogates_are_a_400_and_spend_nothing(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    for field in ("nickName", "avatarUrl", "iv", "encryptedData"):
        extra = {"iv": "AAAAAAAAAAAAAAAAAAAAAA==", "encryptedData": "AAAAAAAAAAAAAAAAAAAAAA=="}
        extra[field] = "\ud800x"
        raw = json.dumps({"scene": scene, "code": fw.mint(), **extra})  # "\\ud800" escapes
        response = await phone.post("/api/pushCode", data=raw,
                                    headers={"Content-Type": "application/json"})
        assert response.status == 400, (field, await response.text())
    assert fw.calls["jscode2session"] == 0
    _, body = await poll(b1, scene, wait=0)
    assert body["status"] == "pending"


async def test_a_decrypted_nickname_with_a_lone_surrogate_is_dropped(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code = fw.mint("surrogate-user")
    watermark = json.dumps({"appid": APPID, "timestamp": FAKE_NOW})
    plain = ('{"nickName": "\\ud800", "watermark": ' + watermark + "}").encode()
    padder = padding.PKCS7(128).padder()
    iv = os.urandom(16)
    encryptor = Cipher(algorithms.AES(fw.codes[code].session_key), modes.CBC(iv)).encryptor()
    sealed = encryptor.update(padder.update(plain) + padder.finalize()) + encryptor.finalize()
    response = await push(phone, scene, code, nickName="Plain",
                          iv=base64.b64encode(iv).decode(),
                          encryptedData=base64.b64encode(sealed).decode())
    assert response.status == 200, await response.text()
    assert (await response.json())["user"]["nickname"] == "Plain"


async def test_raw_header_bytes_in_the_user_agent(server: TestServer) -> None:
    reader, writer = await asyncio.open_connection(server.host, server.port)
    writer.write(b"POST /api/scenes HTTP/1.1\r\nHost: x\r\nUser-Agent: abc\xffdef\r\n"
                 b"Content-Length: 0\r\nConnection: close\r\n\r\n")
    await writer.drain()
    status_line = await reader.readline()
    writer.close()
    assert b" 201 " in status_line, status_line


async def test_a_malformed_wechat_reply_is_a_502_and_leaks_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"garbage\r\n\r\n")
        await writer.drain()
        writer.close()

    upstream = await asyncio.start_server(garbage, "127.0.0.1", 0)
    port = upstream.sockets[0].getsockname()[1]
    caplog.set_level(logging.DEBUG)
    try:
        server = await make_server(wechat_api_base=f"http://127.0.0.1:{port}")
        b1, phone = await browser(server), await browser(server)
        scene = await new_scene(b1)
        code = "js-code-canary-0123456789"
        response = await step(phone, scene, "scan", code)
        assert response.status == 502
        assert (await response.json())["error"] == "wechat_error"
        again = await step(phone, scene, "scan", code)
        assert again.status == 502  # the identical retry gets the same answer
        response = await b1.get(f"/api/scenes/{scene}/code")
        assert response.status == 502
    finally:
        upstream.close()
        await upstream.wait_closed()
    assert SECRET not in caplog.text and code not in caplog.text


async def test_a_redirect_from_wechat_is_not_followed(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, aiohttp_server: object
) -> None:
    hits: list[str] = []

    async def redirect(request: web.Request) -> web.Response:
        hits.append(request.path)
        raise web.HTTPTemporaryRedirect("http://127.0.0.1:9/elsewhere")

    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", redirect)
    upstream = await aiohttp_server(app)  # type: ignore[operator]
    server = await make_server(wechat_api_base=str(upstream.make_url("")).rstrip("/"))
    b1 = await browser(server)
    response = await b1.get(f"/api/scenes/{await new_scene(b1)}/code")
    assert response.status == 502
    assert hits == ["/cgi-bin/stable_token"]


async def test_placeholder_encrypted_profile_yields_to_the_filled_in_one(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1, phone = await browser(), await browser()
    scene = await new_scene(b1)
    code = fw.mint("placeholder-user")
    data = fw.encrypt(code, {
        "nickName": "微信用户", "avatarUrl": "https://thirdwx.qlogo.cn/grey/132",
        "watermark": {"appid": APPID, "timestamp": FAKE_NOW},
    })
    response = await push(phone, scene, code, nickName="Real Name",
                          avatarUrl="https://example.com/me.png", **data)
    assert response.status == 200, await response.text()
    user = (await response.json())["user"]
    assert user == {**user, "nickname": "Real Name", "avatar_url": "https://example.com/me.png"}
    await poll(b1, scene, wait=0)
    assert await me(b1) == 200
