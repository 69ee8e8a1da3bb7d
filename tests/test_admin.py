"""The owner's page, `/admin`: who may see it and act on it (over HTTP), and the page itself in
a real Chromium: approve someone, create and use an invitation, see the chart change."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
import zxingcpp
from aiohttp.test_utils import TestServer
from PIL import Image
from playwright.async_api import Browser as Chromium
from playwright.async_api import Page, expect

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, run_wxlogin

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts" / "admin"
TIMEOUT = 15_000
DB = asyncpg.Connection


async def log_in(browser: Browser, phone: Browser, fw: FakeWeChat, openid: str,
                 **extra: Any) -> str:
    scene = await new_scene(browser)
    pushed = await push(phone, scene, fw.mint(openid, f"union-{openid}"), **extra)
    assert pushed.status == 200, await pushed.text()
    _, polled = await poll(browser, scene, wait=0)
    user_id: str = polled["user"]["id"]
    return user_id


def origin(server: TestServer) -> dict[str, str]:
    return {"Origin": str(server.make_url("")).rstrip("/")}


ACTIONS = [
    ("/api/admin/users/{user}/approve", {}),
    ("/api/admin/users/{user}/disable", {}),
    ("/api/admin/users/{user}/enable", {}),
    ("/api/admin/users/{user}/groups", {"change": "add", "group": "admin"}),
    ("/api/admin/invitations", {"groups": "admin", "uses": "1", "days": "1"}),
    ("/api/admin/invitations/{invitation}/revoke", {}),
    ("/api/admin/clients", {"name": "Site", "redirect_uris": "https://site.example/cb"}),
    ("/api/admin/clients/{client}/rotate", {}),
]


async def everything(db: DB[asyncpg.Record]) -> Any:
    """What an action could change: users and their groups, invitations, clients, the audit."""
    return [
        [tuple(row) for row in await db.fetch(query)]
        for query in (
            "SELECT id, status FROM wxlogin.users ORDER BY id",
            "SELECT user_id, name FROM wxlogin.user_groups ORDER BY 1, 2",
            "SELECT id, used, revoked_at FROM wxlogin.invitations ORDER BY id",
            "SELECT client_id, secret_hash FROM wxlogin.oidc_clients ORDER BY 1",
            "SELECT count(*) FROM wxlogin.audit",
        )
    ]


async def test_only_owners_from_this_site_may_act(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    server = await make_server(listen=True)
    owner_desk, member_desk, anonymous = [await browser(server) for _ in range(3)]
    phone = await browser(server)
    owner_id = await log_in(owner_desk, phone, fw, "owner")
    member_id = await log_in(member_desk, phone, fw, "member")
    code, _, err = await run_wxlogin(pg_url, "users", "groups", owner_id, "add", "admin")
    assert code == 0, err
    made = await owner_desk.post("/api/admin/invitations", data={"uses": "2"},
                                 headers=origin(server))
    assert made.status == 200
    client = await owner_desk.post("/api/admin/clients", data={
        "name": "Wiki", "redirect_uris": "https://wiki.example/cb"}, headers=origin(server))
    assert client.status == 200
    client_id = await db.fetchval("SELECT client_id FROM wxlogin.oidc_clients")
    invitation_id = await db.fetchval("SELECT id FROM wxlogin.invitations")
    before = await everything(db)

    page = await anonymous.get("/admin", allow_redirects=False)
    assert page.status == 302 and page.headers["Location"].startswith("/login?next=")
    page = await member_desk.get("/admin")
    assert page.status == 403 and 'id="forbidden"' in await page.text()
    foreign = {"Origin": "https://evil.example"}
    for path, form in ACTIONS:
        url = path.format(user=member_id, invitation=invitation_id, client=client_id)
        for who, headers, status, error in (
            (anonymous, origin(server), 401, "not_logged_in"),
            (member_desk, origin(server), 403, "not_owner"),
            (owner_desk, foreign, 403, "forbidden_origin"),
            (owner_desk, {}, 403, "forbidden_origin"),  # a change must say where it came from
            (owner_desk, {**origin(server), "Sec-Fetch-Site": "cross-site"}, 403,
             "forbidden_origin"),
        ):
            answer = await who.post(url, data=form, headers=headers, allow_redirects=False)
            assert answer.status == status, (url, who, await answer.text())
            assert (await answer.json())["error"] == error
    assert await everything(db) == before  # nothing changed

    # The owner's own requests work, and bad input is a clear 400 that changes nothing.
    for url, form in (
        (f"/api/admin/users/{member_id}/groups", {"change": "add", "group": "no spaces"}),
        (f"/api/admin/users/{member_id}/groups", {"change": "maybe", "group": "x"}),
        (f"/api/admin/users/{member_id}/promote", {}),
        ("/api/admin/invitations", {"uses": "0"}),
        ("/api/admin/invitations", {"days": "lots"}),
        ("/api/admin/clients", {"name": "x", "redirect_uris": "javascript:alert(1)"}),
    ):
        answer = await owner_desk.post(url, data=form, headers=origin(server),
                                       allow_redirects=False)
        assert answer.status == 400 and (await answer.json())["error"] == "bad_request", url
    for url in ("/api/admin/users/999999/disable", "/api/admin/invitations/999999/revoke",
                "/api/admin/clients/nope/rotate"):
        answer = await owner_desk.post(url, headers=origin(server), allow_redirects=False)
        assert answer.status == 404 and (await answer.json())["error"] == "not_found", url
    assert await everything(db) == before

    rotated = await owner_desk.post(f"/api/admin/clients/{client_id}/rotate",
                                    headers=origin(server))
    secret = (await rotated.text()).split('id="shown-value" readonly value="', 1)[1].split('"')[0]
    assert rotated.status == 200 and len(secret) >= 32
    assert await db.fetchval("SELECT secret_hash FROM wxlogin.oidc_clients") != before[3][0][1]
    disabled = await owner_desk.post(f"/api/admin/users/{member_id}/disable",
                                     headers=origin(server), allow_redirects=False)
    assert disabled.status == 303 and disabled.headers["Location"] == "/admin#users"
    assert await me(member_desk) == 401  # their session ended at once
    entry = await db.fetchrow("SELECT * FROM wxlogin.audit ORDER BY id DESC LIMIT 1")
    assert entry is not None and entry["action"] == "disable"
    assert entry["actor"] == f"user:{owner_id}" and entry["subject"] == f"user:{member_id}"
    assert entry["address"] == "127.0.0.1"


async def snap(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


async def shown_scene(page: Page, action: Callable[[], Awaitable[Any]]) -> str:
    """The scene whose code the page shows after `action`: a phone scans only a code it sees."""
    async with page.expect_response(
        lambda r: r.url.endswith("/api/scenes") and r.request.method == "POST"
    ) as created, page.expect_response(lambda r: r.url.endswith("/code")) as drawn:
        await action()
    assert (await drawn.value).status == 200
    scene: str = (await (await created.value).json())["scene"]
    return scene


async def scan_from(page: Page, url: str, phone: Browser, fw: FakeWeChat, openid: str,
                    **extra: Any) -> int:
    """Open `url` (a login page) in Chromium and confirm its code from the phone."""
    scene = await shown_scene(page, lambda: page.goto(url))
    pushed = await push(phone, scene, fw.mint(openid, f"union-{openid}"), **extra)
    return pushed.status


async def logins_total(page: Page) -> int:
    return int(await page.locator("#logins-chart").get_attribute("data-total") or "-1")


async def test_the_owners_page_in_chromium(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str, chromium: Chromium,
) -> None:
    server = await make_server(listen=True, registration="approval")
    base = str(server.make_url("")).rstrip("/")
    phone = await browser(server)

    # The first owner gets in through `wxlogin invite --group admin`.
    code, out, err = await run_wxlogin(pg_url, "invite", "--group", "admin")
    assert code == 0, err
    link = next(line for line in out.splitlines() if line.startswith("http"))
    context = await chromium.new_context(locale="en-US", viewport={"width": 1200, "height": 900})
    await context.grant_permissions(["clipboard-read", "clipboard-write"], origin=base)
    owner = await context.new_page()
    assert await scan_from(owner, link.replace("http://127.0.0.1:8080", base), phone, fw,
                           "owner", nickName="Olga") == 200
    await owner.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await owner.goto(f"{base}/admin")
    await expect(owner.locator("h1")).to_have_text("Owner's page")
    await expect(owner.locator("#registration")).to_have_text("approval")
    assert await logins_total(owner) == 1

    # A newcomer asks (their login page says the owner must approve); the owner approves them
    # on the page; their next scan logs them in.
    newcomer = await (await chromium.new_context(locale="en-US")).new_page()
    assert await scan_from(newcomer, f"{base}/login?next=/account", phone, fw, "nina",
                           nickName="Nina") == 403
    await expect(newcomer.locator("#wxlogin")).to_have_attribute(
        "data-state", "approval_pending", timeout=TIMEOUT)
    await expect(newcomer.locator("#wxlogin-status")).to_contain_text("owner's approval")
    await snap(newcomer, "0-newcomer-waits")
    await owner.reload()
    row = owner.locator("#pending tr[data-status=pending]")
    await expect(row).to_have_count(1)
    await expect(row).to_contain_text("Nina")
    await snap(owner, "1-pending")
    await row.get_by_role("button", name="Approve").focus()  # by keyboard
    await owner.keyboard.press("Enter")
    await owner.wait_for_url(f"{base}/admin#users", timeout=TIMEOUT)
    await expect(owner.locator("#pending tr[data-status=pending]")).to_have_count(0)
    await expect(owner.locator("#users tr", has_text="Nina")).to_have_attribute(
        "data-status", "active")
    scene = await shown_scene(newcomer, newcomer.locator("#wxlogin-refresh").click)
    assert (await push(phone, scene, fw.mint("nina", "union-nina"))).status == 200
    await newcomer.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await owner.reload()
    assert await logins_total(owner) == 2  # the chart changed

    # An invitation made on the page, shown once with its QR code, used by another browser.
    await owner.locator("#invite-form input[name=groups]").fill("editors")
    await owner.locator("#invite-form button").click()
    shown = owner.locator("#shown-value")
    await expect(shown).to_be_visible(timeout=TIMEOUT)
    invitation = await shown.input_value()
    assert re.fullmatch(rf"{re.escape(base)}/invite/[A-Za-z0-9_-]+", invitation)
    await owner.locator("#shown-qr svg").screenshot(path=str(ARTIFACTS / "qr.png"))
    decoded = zxingcpp.read_barcodes(Image.open(ARTIFACTS / "qr.png"))
    assert [found.text for found in decoded] == [invitation]
    await owner.locator("#copy").click()
    await expect(owner.locator("#copy")).to_have_text("Copied")
    assert await owner.evaluate("navigator.clipboard.readText()") == invitation
    await snap(owner, "2-invitation")

    guest = await (await chromium.new_context(locale="en-US")).new_page()
    assert await scan_from(guest, invitation, phone, fw, "ivan", nickName="Ivan") == 200
    await guest.wait_for_url(f"{base}/account", timeout=TIMEOUT)
    await owner.goto(f"{base}/admin?q=editors")
    ivan = owner.locator("#users tr", has_text="Ivan")
    await expect(ivan).to_have_attribute("data-status", "active")
    await expect(ivan).to_contain_text("editors")
    await expect(owner.locator("#invitations tr[data-state=used]")).to_have_count(2)
    assert await logins_total(owner) == 3
    audit = owner.locator("#audit tbody")
    for action in ("approve", "invite", "invitation_used", "login_refused"):
        await expect(audit).to_contain_text(action)

    # Searching by keyboard; the page in Chinese.
    await owner.goto(f"{base}/admin")
    await owner.locator("#users input[name=q]").focus()
    await owner.keyboard.type("Nina")
    await owner.keyboard.press("Enter")
    await owner.wait_for_url(re.compile(r".*/admin\?q=Nina.*"), timeout=TIMEOUT)
    await expect(owner.locator("#users tbody tr")).to_have_count(1)
    await expect(owner.locator("#users tbody tr")).to_contain_text("Nina")
    await owner.goto(f"{base}/admin")
    await snap(owner, "3-page")
    await owner.screenshot(path=str(ROOT / "test-artifacts" / "admin" / "admin-page.png"),
                           full_page=False)
    await owner.goto(f"{base}/admin?lang=zh")
    await expect(owner.locator("h1")).to_have_text("管理")
    csp = (await owner.request.get(f"{base}/admin")).headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp
