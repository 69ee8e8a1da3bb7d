"""The hosted login page in a real headless Chromium (Debian's), driven by Playwright.

Screenshots of every state land in test-artifacts/browser/ for people to look at.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import zxingcpp
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Browser, Page, Route, expect

from examples.blog.app import create_blog
from tests.conftest import MakeServer, free_port
from tests.fakewechat import FakeWeChat, Fault
from wxlogin.clock import FakeClock
from wxlogin.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "browser"
MINIPROGRAM = ROOT / "miniprogram"
TIMEOUT = 15_000  # ms


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def read_code(page: Page) -> str:
    """What a phone's camera would read: decode the QR from the rendered <img>."""
    image = page.locator("#wxlogin-code")
    await expect(image).to_be_visible(timeout=TIMEOUT)
    await page.wait_for_function(
        "document.getElementById('wxlogin-code').naturalWidth > 0", timeout=TIMEOUT
    )
    shot = ARTIFACTS / "last-code.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await image.screenshot(path=str(shot))
    found = zxingcpp.read_barcodes(Image.open(shot))
    assert len(found) == 1, "no QR code in the rendered image"
    text: str = found[0].text
    return text


async def status(page: Page) -> str:
    return await page.locator("#wxlogin").get_attribute("data-state") or ""


async def test_the_whole_sandbox_login_in_a_browser(
    sandbox_server: TestServer, chromium: Browser
) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(f"{base}/login?next=/account")
    phone_url = await read_code(desk)
    assert phone_url.startswith(f"{base}/sandbox/phone?scene=")
    alt = await desk.locator("#wxlogin-code").get_attribute("alt")
    assert alt and "WeChat" in alt
    await expect(desk.locator("#wxlogin-status")).to_have_text("Scan the code with WeChat")
    assert await desk.locator("#wxlogin-status").get_attribute("aria-live") == "polite"
    await snap(desk, "1-waiting-for-scan")

    phone_context = await chromium.new_context(  # its own cookie jar, a phone-sized screen
        viewport={"width": 390, "height": 844}, is_mobile=True, locale="en-US")
    phone = await phone_context.new_page()
    await phone.goto(phone_url)
    await phone.locator("#phone-nickname").fill("Grace")
    await snap(phone, "2-phone-pick-user")
    await phone.locator("#phone-continue").click()
    await expect(phone.locator("#phone-context")).to_be_visible(timeout=TIMEOUT)
    await expect(phone.locator("#ctx-browser")).to_have_text("Chrome")
    await expect(phone.locator("#ctx-os")).to_have_text("Linux")
    await snap(phone, "3-phone-confirm")

    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "scanned",
                                                              timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-status")).to_contain_text("Confirm")
    await snap(desk, "4-scanned")

    await phone.locator("#phone-confirm").click()
    await expect(phone.locator("#phone-status")).to_contain_text("Logged in", timeout=TIMEOUT)
    await snap(phone, "5-phone-done")
    await desk.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await expect(desk.locator("#profile-nickname")).to_have_text("Grace")
    await snap(desk, "6-logged-in")

    await desk.locator("#logout").click()
    await desk.wait_for_url(f"{base}/", timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-code")).to_be_visible(timeout=TIMEOUT)  # logged out


async def test_the_phone_can_decline(sandbox_server: TestServer, chromium: Browser) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="zh-CN")).new_page()
    await desk.goto(f"{base}/login")
    phone = await (await chromium.new_context(locale="zh-CN")).new_page()
    await phone.goto(await read_code(desk))
    await phone.locator("#phone-continue").click()  # the first test user
    await phone.locator("#phone-decline").click()
    await expect(phone.locator("#phone-status")).to_have_text("已拒绝本次登录。", timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "denied",
                                                              timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-status")).to_have_text("已在手机上取消登录")
    await snap(desk, "7-declined-zh")
    await desk.locator("#wxlogin-refresh").click()
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "pending",
                                                              timeout=TIMEOUT)


async def test_expiry_shows_and_refresh_makes_a_new_code(
    sandbox_server: TestServer, chromium: Browser, clock: FakeClock
) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(f"{base}/login")
    first = await read_code(desk)
    await expect(desk.locator("#wxlogin-countdown")).to_have_text(re.compile(r"Expires in 4:5\d"))
    clock.advance(301)  # the server's clock: its re-check wakes the waiting poll
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "expired",
                                                              timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-refresh")).to_be_visible()
    await snap(desk, "8-expired")
    await desk.locator("#wxlogin-refresh").focus()
    await desk.keyboard.press("Enter")  # keyboard users can refresh too
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "pending",
                                                              timeout=TIMEOUT)
    second = await read_code(desk)
    assert second != first and desk.url == f"{base}/login"  # a new scene, not a reload


async def page_whose_draw_failed(
    make_server: MakeServer, fw: FakeWeChat, chromium: Browser
) -> Page:
    """The login page (against the WeChat stand-in) after WeChat refused to draw its code."""
    server = await make_server(listen=True)
    fw.fail("getwxacodeunlimit", Fault(errcode=-1))
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(str(server.make_url("/login")))
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "unavailable",
                                                              timeout=TIMEOUT)
    return desk


async def test_wechat_failing_to_draw_shows_a_retry(
    make_server: MakeServer, fw: FakeWeChat, chromium: Browser
) -> None:
    desk = await page_whose_draw_failed(make_server, fw, chromium)
    await expect(desk.locator("#wxlogin-status")).to_contain_text("WeChat cannot draw")
    await expect(desk.locator("#wxlogin-code")).to_be_hidden()
    await snap(desk, "9-wechat-unavailable")
    await desk.locator("#wxlogin-refresh").click()
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "pending",
                                                              timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-code")).to_be_visible()
    assert fw.calls["getwxacodeunlimit"] == 2


async def test_a_cut_long_poll_resumes_and_still_picks_up_the_login(
    sandbox_server: TestServer, chromium: Browser
) -> None:
    """The server answers the held poll with the login, but the answer (and its new cookie) is
    lost on the way: the page backs off, polls again with its old cookie, and the login that
    was made meanwhile still reaches it."""
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    holding, released = asyncio.Event(), asyncio.Event()

    async def lose_the_first_answer(route: Route) -> None:
        if holding.is_set():
            await route.continue_()
            return
        holding.set()
        answered = asyncio.ensure_future(route.fetch(timeout=30_000))  # the server holds it
        await released.wait()
        await answered
        await route.abort("connectionreset")

    await desk.route("**/api/scenes/*?wait=50*", lose_the_first_answer)
    await desk.goto(f"{base}/login?next=/account")
    phone_url = await read_code(desk)
    await asyncio.wait_for(holding.wait(), 10)

    scene = phone_url.rsplit("=", 1)[1]
    async with aiohttp.ClientSession(base_url=base) as phone:
        async with phone.post("/sandbox/wechat/_phone/login", json={"nickname": "Ivy"}) as r:
            code = (await r.json())["code"]
        async with phone.post("/api/pushCode",
                              json={"scene": scene, "code": code, "nickName": "Ivy"}) as r:
            assert r.status == 200
    released.set()
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "offline",
                                                              timeout=TIMEOUT)
    await snap(desk, "10-connection-lost")
    await desk.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await expect(desk.locator("#profile-nickname")).to_have_text("Ivy")


async def test_a_lost_code_fetch_retries_by_itself(
    sandbox_server: TestServer, chromium: Browser
) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    failed = asyncio.Event()

    async def drop_first(route: Route) -> None:
        if failed.is_set():
            await route.continue_()
        else:
            failed.set()
            await route.abort("internetdisconnected")

    await desk.route("**/api/scenes/*/code", drop_first)
    await desk.goto(f"{base}/login")
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "pending",
                                                              timeout=TIMEOUT)
    assert failed.is_set()
    await read_code(desk)


async def test_a_failed_draw_retried_after_expiry_offers_a_new_code(
    make_server: MakeServer, fw: FakeWeChat, chromium: Browser, clock: FakeClock
) -> None:
    desk = await page_whose_draw_failed(make_server, fw, chromium)
    clock.advance(301)
    await desk.locator("#wxlogin-refresh").click()  # "Try again": the scene is gone by now
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "expired",
                                                              timeout=TIMEOUT)
    await expect(desk.locator("#wxlogin-refresh")).to_have_text("Get a new code")
    await desk.locator("#wxlogin-refresh").click()
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "pending",
                                                              timeout=TIMEOUT)
    assert fw.calls["getwxacodeunlimit"] == 2


async def phone_step(base: str, step: str, scene: str, nickname: str) -> None:
    """One step made by the companion mini program's own request code (utils/api.js, in Node)."""
    process = await asyncio.create_subprocess_exec(
        "node", str(MINIPROGRAM / "tests" / "server" / "phone.js"), base, step, scene, nickname,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 0, err.decode()


@pytest.mark.parametrize("ending", ["confirm", "deny"])
async def test_the_page_follows_the_mini_programs_own_requests(
    sandbox_server: TestServer, chromium: Browser, ending: str
) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(f"{base}/login?next=/account")
    scene = (await read_code(desk)).rsplit("=", 1)[1]
    await phone_step(base, "scan", scene, "Kai")
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "scanned",
                                                              timeout=TIMEOUT)
    await phone_step(base, ending, scene, "Kai")
    if ending == "confirm":
        await desk.wait_for_url(f"{base}/account", timeout=TIMEOUT)
        await expect(desk.locator("#profile-nickname")).to_have_text("Kai")
    else:
        await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "denied",
                                                                  timeout=TIMEOUT)


BLOG_POST = """<!doctype html><html lang="en"><head><meta charset="utf-8">
<style>button { background: red !important; } .who { display: none; }</style></head>
<body><h1>A static blog post</h1><div id="corner" data-wxlogin></div>
<ol id="events"></ol>
<script>
for (const name of ["wxlogin:login", "wxlogin:logout"]) {
  document.addEventListener(name, (e) => {
    const item = document.createElement("li");
    item.textContent = name + " " + (e.detail.user ? e.detail.user.nickname : "");
    document.getElementById("events").append(item);
  });
}
</script>
<script src="/static/wxlogin.js" defer></script></body></html>"""


async def test_the_widget_on_a_plain_static_page(
    sandbox_server: TestServer, chromium: Browser
) -> None:
    widget = (ROOT / "server" / "wxlogin" / "static" / "wxlogin.js").read_bytes()
    assert len(widget) < 10 * 1024, len(widget)
    base = str(sandbox_server.make_url("")).rstrip("/")
    page = await (await chromium.new_context(locale="en-US")).new_page()
    # A page of the same site that the login server knows nothing about.
    await page.route(f"{base}/blog/post.html",
                     lambda route: route.fulfill(body=BLOG_POST, content_type="text/html"))
    await page.goto(f"{base}/blog/post.html")
    button = page.locator("#corner button.go")
    await expect(button).to_have_text("Log in with WeChat", timeout=TIMEOUT)
    color = await button.evaluate("b => getComputedStyle(b).backgroundColor")
    assert color != "rgb(255, 0, 0)"  # the host page's styles do not reach into the widget
    await button.click()
    code = page.locator("#corner dialog img")
    await expect(code).to_be_visible(timeout=TIMEOUT)
    await page.wait_for_function(
        "document.querySelector('#corner').shadowRoot.querySelector('dialog img').naturalWidth > 0"
    )
    shot = ARTIFACTS / "widget-code.png"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await code.screenshot(path=str(shot))
    phone_url = zxingcpp.read_barcodes(Image.open(shot))[0].text
    await snap(page, "11-widget-dialog")

    scene = phone_url.rsplit("=", 1)[1]
    await phone_step(base, "scan", scene, "<b>Lin</b>")
    await expect(page.locator("#corner [role=status]")).to_have_text(
        "Scanned. Confirm on your phone", timeout=TIMEOUT)
    await phone_step(base, "confirm", scene, "<b>Lin</b>")
    await expect(page.locator("#corner .name")).to_have_text("<b>Lin</b>", timeout=TIMEOUT)
    await expect(page.locator("#corner dialog")).to_have_count(0)
    await expect(page.locator("#events li")).to_have_text(["wxlogin:login <b>Lin</b>"])
    await snap(page, "12-widget-logged-in")

    await page.reload()  # a visitor who comes back is still logged in
    await expect(page.locator("#corner .name")).to_have_text("<b>Lin</b>", timeout=TIMEOUT)
    await page.locator("#corner a[part=logout]").click()
    await expect(page.locator("#corner button.go")).to_be_visible(timeout=TIMEOUT)
    await expect(page.locator("#events li")).to_have_text(
        ["wxlogin:login <b>Lin</b>", "wxlogin:logout <b>Lin</b>"])


async def test_the_example_blog_with_the_login_mounted_under_a_path(
    aiohttp_server: Any, settings: Settings, clock: FakeClock, chromium: Browser
) -> None:
    # Every URL the pages, their scripts and the widget use must carry the mount's prefix.
    port = free_port()
    sandboxed = replace(settings, appid=None, secret=None, port=port,
                        public_url=f"http://127.0.0.1:{port}")
    await aiohttp_server(create_blog(sandboxed, clock=clock), port=port)
    base = f"http://127.0.0.1:{port}"
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(f"{base}/posts/hello")
    await desk.locator("#login").click()
    await desk.wait_for_url(f"{base}/wxlogin/login?next=/posts/hello", timeout=TIMEOUT)
    phone_url = await read_code(desk)
    assert phone_url.startswith(f"{base}/wxlogin/sandbox/phone?scene=")
    phone = await (await chromium.new_context(locale="en-US")).new_page()
    await phone.goto(phone_url)
    await phone.locator("#phone-nickname").fill("Mei")
    await phone.locator("#phone-continue").click()
    await phone.locator("#phone-confirm").click()
    await expect(phone.locator("#phone-status")).to_contain_text("Logged in", timeout=TIMEOUT)

    await desk.wait_for_url(f"{base}/posts/hello", timeout=TIMEOUT)
    await expect(desk.locator("#me")).to_have_text("Mei")
    await desk.locator("textarea[name=body]").fill("Scanned, confirmed, commenting.")
    await desk.locator("button[type=submit]").click()
    await expect(desk.locator(".comment")).to_contain_text("Mei: Scanned, confirmed, commenting.")
    await snap(desk, "13-blog-commented")

    # The widget finds the mounted API beside its own script.
    await desk.route(f"{base}/widget.html", lambda route: route.fulfill(
        body=BLOG_POST.replace('src="/static/wxlogin.js"', 'src="/wxlogin/static/wxlogin.js"'),
        content_type="text/html"))
    await desk.goto(f"{base}/widget.html")
    await expect(desk.locator("#corner .name")).to_have_text("Mei", timeout=TIMEOUT)
    await desk.locator("#corner a[part=logout]").click()
    await expect(desk.locator("#corner button.go")).to_be_visible(timeout=TIMEOUT)
    await desk.goto(f"{base}/posts/hello")
    await expect(desk.locator("#login")).to_be_visible()
