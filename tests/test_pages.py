"""The hosted pages over HTTP: open redirects, escaping, languages, headers (T16, T17)."""

from __future__ import annotations

import json
import re
from html import unescape
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Browser, MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import new_scene, poll, push
from wxlogin.http.pages import safe_next

REDIRECT_TRICKS = [
    "//evil.example", "///evil.example", "/\\evil.example", "/%2F%2Fevil.example",
    "/%5Cevil.example", "https:evil.example", "javascript:alert(1)", "/%09/evil.example",
    "https://site@evil.example", "／／evil.example", "/\r\nLocation: https://evil.example",
    "https://evil.example", "evil.example", "//%2F%2Fevil.example", "\\\\evil.example",
    "/\t/evil.example", " /x", "", "/" + "a" * 3000,
]


def next_of(html: str) -> str:
    match = re.search(r'data-next="([^"]*)"', html)
    assert match, html
    return unescape(match.group(1))


async def login_page(client: Browser, raw_query: str) -> str:
    response = await client.get("/login?" + raw_query)
    assert response.status == 200
    return await response.text()


@pytest.mark.parametrize("trick", REDIRECT_TRICKS)
async def test_every_open_redirect_trick_lands_on_slash(browser: MakeBrowser, trick: str) -> None:
    from urllib.parse import quote

    client = await browser()
    assert next_of(await login_page(client, "next=" + quote(trick, safe=""))) == "/"
    assert safe_next(trick) == "/"


async def test_same_origin_paths_are_kept_and_escaped(browser: MakeBrowser) -> None:
    client = await browser()
    assert next_of(await login_page(client, "next=%2Faccount%3Ftab%3D1")) == "/account?tab=1"
    html = await login_page(client, "next=/%22%3E%3Cscript%3Ealert(1)%3C/script%3E")
    assert "<script>alert" not in html
    assert next_of(html).startswith("/") and "<" not in next_of(html)
    # `&` and `'` stay as they are in the path, so only HTML escaping keeps the attribute whole.
    html = await login_page(client, "next=" + "/a%3Fb%3D1%26c%3D%27x%27")
    assert 'data-next="/a?b=1&amp;c=&#x27;x&#x27;"' in html


async def test_language_follows_accept_language_and_can_be_switched(
    browser: MakeBrowser,
) -> None:
    client = await browser()
    zh = await (await client.get("/login", headers={"Accept-Language": "zh-CN,zh;q=0.9"})).text()
    assert '<html lang="zh-CN">' in zh and "微信扫码登录" in zh
    en = await (await client.get("/login", headers={
        "Accept-Language": "fr;q=1, en-GB;q=0.8, zh;q=0.5"})).text()
    assert '<html lang="en">' in en and "Log in with WeChat" in en
    switched = await (await client.get("/login?lang=en&next=/x", headers={
        "Accept-Language": "zh"})).text()
    assert "Log in with WeChat" in switched
    assert 'href="/login?lang=zh&amp;next=%2Fx"' in switched


@pytest.mark.parametrize(("header", "expected"), [
    ("zh-CN,zh;q=0.9", "zh"), ("en-US,en;q=0.9,zh;q=0.8", "en"), ("zh;q=0, en;q=0.1", "en"),
    ("fr, zh;Q=0.5", "zh"), ("zh;level=1;q=0.7, en;q=0.6", "zh"), ("zh;q=inf, en;q=0.2", "en"),
    ("", "en"), ("de", "en"), ("zh-TW", "zh"),
])
async def test_accept_language_is_read_by_its_weights(
    browser: MakeBrowser, header: str, expected: str
) -> None:
    client = await browser()
    html = await (await client.get("/login", headers={"Accept-Language": header})).text()
    assert ('<html lang="zh-CN">' if expected == "zh" else '<html lang="en">') in html


async def test_a_chosen_language_sticks(browser: MakeBrowser) -> None:
    client = await browser()
    await client.get("/login?lang=zh", headers={"Accept-Language": "en"})
    html = await (await client.get("/account", headers={"Accept-Language": "en"})).text()
    assert '<html lang="zh-CN">' in html


async def test_pages_carry_the_security_headers(browser: MakeBrowser) -> None:
    client = await browser()
    for path in ("/login", "/"):
        response = await client.get(path)
        csp = response.headers["Content-Security-Policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp and "object-src 'none'" in csp
        assert response.headers["X-Content-Type-Options"] == "nosniff"
        html = await response.text()
        inline = re.findall(r"<script(?![^>]*\bsrc=)(?![^>]*application/json)[^>]*>", html)
        assert not inline, inline  # no inline script, only src= and a JSON data block


async def test_a_hostile_nickname_is_shown_as_text(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    await push(await browser(), scene, fw.mint(), nickName="<img src=x onerror=alert(1)>")
    await poll(b1, scene, wait=0)
    for path in ("/", "/account"):
        html = await (await b1.get(path)).text()
        assert "<img src=x" not in html and "&lt;img src=x onerror=alert(1)&gt;" in html


async def test_the_data_block_cannot_be_closed_early(sandbox_server: TestServer,
                                                    browser: MakeBrowser) -> None:
    client = await browser(sandbox_server)
    html = await (await client.get("/sandbox/phone?scene=</script><script>alert(1)")).text()
    block = re.search(r'<script type="application/json" id="wxlogin-data">(.*?)</script>', html,
                      re.S)
    assert block is not None
    data: dict[str, Any] = json.loads(block.group(1))
    assert data["scene"] == "</script><script>alert(1)"


async def test_account_page_sends_strangers_to_the_login(browser: MakeBrowser) -> None:
    client = await browser()
    response = await client.get("/account", allow_redirects=False)
    assert response.status == 302
    assert response.headers["Location"] in ("/login?next=/account", "/login?next=%2Faccount")


async def test_static_assets_are_served(browser: MakeBrowser) -> None:
    client = await browser()
    for name in ("login.js", "account.js", "wxlogin.css"):
        response = await client.get(f"/static/{name}")
        assert response.status == 200, name
