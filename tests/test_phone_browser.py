"""Logging in from the phone's own browser, in a real Chromium in sandbox mode: a phone-sized
browser gets "Open WeChat to log in" first (the link opens the stand-in mini program in another
context), the code to save for the album, and finishes the login at once when the person comes
back; inside WeChat's browser the page says to long-press the code. Phone numbers on the way.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer
from playwright.async_api import Browser, Route, expect

from tests.conftest import free_port
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage import overview

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "phone-browser"
TIMEOUT = 15_000
IPHONE = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_5 like Mac OS X) AppleWebKit/605.1.15 "
          "(KHTML, like Gecko) Version/17.5 Mobile/15E148 Safari/604.1")
WECHAT = ("Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) "
          "Version/4.0 Chrome/120.0.6099.193 Mobile Safari/537.36 XWEB/1200051 MMWEBSDK/20240301 "
          "MMWEBID/1234 MicroMessenger/8.0.49.2600(0x2800313D) WeChat/arm64 Weixin NetType/WIFI "
          "Language/zh_CN ABI/arm64")
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "is_mobile": True,
                         "has_touch": True}


@pytest.fixture
async def phone_sandbox(aiohttp_server: Any, settings: Settings, clock: FakeClock) -> TestServer:
    """Sandbox mode (no credentials), asking for phone numbers when people like."""
    port = free_port()
    sandboxed = replace(settings, appid=None, secret=None, port=port, phone="optional",
                        public_url=f"http://127.0.0.1:{port}")
    server: TestServer = await aiohttp_server(
        create_app(sandboxed, clock=clock, recheck_every=0.5), port=port
    )
    return server


async def test_a_phone_browser_opens_wechat_and_comes_back_logged_in(
    phone_sandbox: TestServer, chromium: Browser, pg_url: str,
) -> None:
    base = str(phone_sandbox.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    browser = await (await chromium.new_context(user_agent=IPHONE, locale="en-US",
                                                **PHONE)).new_page()
    held: list[Route] = []

    async def hold_long_polls(route: Route) -> None:
        # While the person is in WeChat, the page's long-poll hears nothing (a phone's browser
        # in the background): only coming back may finish the login.
        if "wait=0" in route.request.url:
            await route.continue_()
        else:
            held.append(route)

    await browser.route("**/api/scenes/*?wait=*", hold_long_polls)
    await browser.goto(f"{base}/login?next=/account")
    box = browser.locator("#wxlogin")
    await expect(box).to_have_attribute("data-device", "phone")
    opener = browser.locator("#wxlogin-open")
    await expect(opener).to_be_visible(timeout=TIMEOUT)
    await expect(opener).to_have_text("Open WeChat to log in")
    await expect(browser.locator("#wxlogin-save")).to_be_visible()
    await expect(browser.locator("#wxlogin-save-hint")).to_contain_text("album")
    await expect(browser.locator("#wxlogin-press-hint")).to_be_hidden()
    link = await opener.get_attribute("href")
    assert link is not None and link.startswith(f"{base}/sandbox/phone?s=") and "entry=1194" in link
    # The link comes first, above the code.
    first = await opener.bounding_box()
    code = await browser.locator("#wxlogin-code").bounding_box()
    assert first is not None and code is not None and first["y"] < code["y"]
    await browser.screenshot(path=str(ARTIFACTS / "1-phone-browser.png"), full_page=True)
    saved = await browser.locator("#wxlogin-save").get_attribute("href")
    assert saved and saved.startswith("blob:")

    # "WeChat": the link opens the stand-in mini program, which shares a phone number.
    wechat = await (await chromium.new_context(user_agent=WECHAT, locale="en-US",
                                               **PHONE)).new_page()
    await wechat.goto(link)
    await wechat.locator("#phone-nickname").fill("Mia")
    await wechat.locator("#phone-continue").click()
    share = wechat.locator("#phone-share")
    await expect(share).to_be_visible(timeout=TIMEOUT)
    await share.click()
    await expect(wechat.locator("#phone-status")).to_have_text(
        "Logged in. Go back to your browser to continue.", timeout=TIMEOUT)
    await wechat.screenshot(path=str(ARTIFACTS / "2-mini-program.png"))

    # Back in the browser: it looks at once and is logged in.
    await expect(box).not_to_have_attribute("data-state", "confirmed")
    await browser.evaluate("window.dispatchEvent(new PageTransitionEvent('pageshow'))")
    await browser.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    me = await (await browser.request.get(f"{base}/api/me")).json()
    assert me["user"]["nickname"] == "Mia" and me["user"]["phone"].startswith("+861990")
    assert held  # the long-poll was held all along

    conn = await asyncpg.connect(pg_url)
    try:
        entry = await conn.fetchval("SELECT entry FROM wxlogin.scenes WHERE status = 'confirmed'")
        arrivals = await overview.arrivals(conn, datetime.now(UTC) + timedelta(days=1))
    finally:
        await conn.close()
    assert entry == 1194  # how Mia arrived
    assert arrivals == [(1194, 1)]  # as the owner's page counts
    metrics = await (await browser.request.get(f"{base}/metrics")).text()
    assert 'wxlogin_logins_by_arrival_total{arrival="url_link"} 1.0' in metrics


async def test_inside_wechats_browser_the_page_says_long_press(
    phone_sandbox: TestServer, chromium: Browser,
) -> None:
    base = str(phone_sandbox.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page = await (await chromium.new_context(user_agent=WECHAT, locale="zh-CN",
                                             **PHONE)).new_page()
    asked: list[str] = []
    page.on("request", lambda request: asked.append(request.url))
    await page.goto(f"{base}/login")
    await expect(page.locator("#wxlogin")).to_have_attribute("data-device", "wechat")
    hint = page.locator("#wxlogin-press-hint")
    await expect(hint).to_be_visible(timeout=TIMEOUT)
    await expect(hint).to_contain_text("长按二维码")
    await expect(page.locator("#wxlogin-open")).to_be_hidden()
    await expect(page.locator("#wxlogin-save")).to_be_hidden()
    # A plain <img> (a long-press finds no code in a CSS background), with no touch handler.
    assert await page.locator("#wxlogin-code").evaluate("e => e.tagName") == "IMG"
    assert not [url for url in asked if url.endswith("/link")]  # no link asked for in WeChat
    await page.screenshot(path=str(ARTIFACTS / "3-wechat-browser.png"), full_page=True)


async def test_the_widget_on_a_phone_offers_the_link(
    phone_sandbox: TestServer, chromium: Browser,
) -> None:
    base = str(phone_sandbox.make_url("")).rstrip("/")
    page = await (await chromium.new_context(user_agent=IPHONE, locale="en-US",
                                             **PHONE)).new_page()
    await page.route(f"{base}/widget-host", lambda route: route.fulfill(
        content_type="text/html",
        body=f'<!doctype html><div data-wxlogin></div><script src="{base}/static/wxlogin.js">'
             "</script>"))
    await page.goto(f"{base}/widget-host")
    await page.locator("[data-wxlogin] >> button.go").click()
    opener = page.locator("[data-wxlogin] >> a.open")
    await expect(opener).to_be_visible(timeout=TIMEOUT)
    href = await opener.get_attribute("href")
    assert href is not None and "/sandbox/phone?s=" in href
    await expect(page.locator("[data-wxlogin] >> a[download]")).to_be_visible()
