"""The official account's way in, whole, in a real Chromium in sandbox mode: the login page
offers the account's QR, the stand-in plays WeChat delivering the scan (signed, encrypted,
through the real callback), its reply's link opens the real confirm page, and the browser that
shows the QR is logged in."""

from __future__ import annotations

from pathlib import Path

import zxingcpp
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Browser, expect

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "official-account"
TIMEOUT = 15_000


async def test_follow_the_account_and_confirm_on_the_phone(
    sandbox_server: TestServer, chromium: Browser
) -> None:
    base = str(sandbox_server.make_url("")).rstrip("/")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    desk = await (await chromium.new_context(locale="en-US")).new_page()
    await desk.goto(f"{base}/login?next=/account")
    switch = desk.locator("#wxlogin-kind")
    await expect(switch).to_have_text("Use the official account's QR instead", timeout=TIMEOUT)
    async with desk.expect_response(lambda r: r.url.endswith("/code")) as drawn:
        await switch.click()
    assert (await drawn.value).status == 200
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-kind", "oa")
    code = desk.locator("#wxlogin-code")
    await expect(code).to_be_visible(timeout=TIMEOUT)
    await desk.wait_for_function(
        "document.getElementById('wxlogin-code').naturalWidth > 0", timeout=TIMEOUT)
    await code.screenshot(path=str(ARTIFACTS / "qr.png"))
    found = zxingcpp.read_barcodes(Image.open(ARTIFACTS / "qr.png"))
    assert len(found) == 1 and found[0].text.startswith(f"{base}/sandbox/oa?scene=")
    await desk.screenshot(path=str(ARTIFACTS / "1-login-page.png"), full_page=True)

    phone = await (await chromium.new_context(
        locale="en-US", viewport={"width": 390, "height": 844}, is_mobile=True)).new_page()
    await phone.goto(found[0].text)
    await phone.locator("#phone-nickname").fill("Olive")
    await phone.locator("#oa-scan").click()
    reply = phone.locator("#oa-reply")
    await expect(reply).to_be_visible(timeout=TIMEOUT)
    await expect(reply).to_contain_text("127.0.0.1")
    await phone.screenshot(path=str(ARTIFACTS / "2-reply.png"))
    await expect(desk.locator("#wxlogin")).to_have_attribute("data-state", "scanned",
                                                              timeout=TIMEOUT)
    await phone.locator("#oa-reply-link").click()
    await expect(phone.locator("#oa-confirm")).to_be_visible(timeout=TIMEOUT)
    await expect(phone.locator("#ctx-site")).to_have_text("127.0.0.1")
    await phone.screenshot(path=str(ARTIFACTS / "3-confirm-page.png"))
    await phone.locator("#oa-confirm").click()
    await expect(phone.locator("#oa-status")).to_contain_text("Logged in", timeout=TIMEOUT)
    await desk.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await expect(desk.locator("#profile-id")).not_to_be_empty()
