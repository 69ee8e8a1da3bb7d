"""Phone numbers (WXLOGIN_PHONE): the button's code rides on pushCode, WeChat is asked inside
the same one-code-one-step rules, and the number is sealed at rest and shown only when asked for.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from tests.conftest import MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat, Fault
from tests.helpers import new_scene, poll, push, run_wxlogin, step

DB = asyncpg.Connection


async def scanned(server: Any, browser: MakeBrowser, fw: FakeWeChat, openid: str
                  ) -> tuple[Any, Any, str, dict[str, Any]]:
    desk, phone = await browser(server), await browser(server)
    scene = await new_scene(desk)
    answer = await step(phone, scene, "scan", fw.mint(openid, f"union-{openid}"))
    assert answer.status == 200
    return desk, phone, scene, (await answer.json())["context"]


async def test_off_asks_nothing_and_shows_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server()
    desk, phone, scene, context = await scanned(server, browser, fw, "ann")
    assert context["phone"] == "off"
    pushed = await push(phone, scene, fw.mint("ann", "union-ann"), phoneCode=fw.mint_phone())
    assert pushed.status == 200 and "phone" not in (await pushed.json())["user"]
    await poll(desk, scene, wait=0)
    assert "phone" not in (await (await desk.get("/api/me")).json())["user"]
    assert fw.calls["getuserphonenumber"] == 0


async def test_optional_keeps_a_shared_number_sealed_and_shows_it_to_the_site(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    server = await make_server(phone="optional")
    desk, phone, scene, context = await scanned(server, browser, fw, "bea")
    assert context["phone"] == "optional"
    body = {"scene": scene, "code": fw.mint("bea", "union-bea"), "phoneCode": fw.mint_phone()}
    first = await phone.post("/api/pushCode", json=body)
    again = await phone.post("/api/pushCode", json=body)  # a retry: answered, not paid twice
    assert first.status == again.status == 200
    assert await first.read() == await again.read()
    assert "phone" not in (await first.json())["user"]  # the ledger keeps no number
    assert fw.calls["getuserphonenumber"] == 1
    _, polled = await poll(desk, scene, wait=0)
    assert polled["user"]["phone"] == "+8613800138000"
    assert (await (await desk.get("/api/me")).json())["user"]["phone"] == "+8613800138000"

    ledger = await db.fetch("SELECT answer::text FROM wxlogin.code_ledger")
    assert ledger and not [row for row in ledger if "13800138000" in row[0]]  # nowhere plain
    row = await db.fetchrow("SELECT id, phone_sealed, phone_masked FROM wxlogin.users")
    assert row is not None and b"13800138000" not in row["phone_sealed"]
    assert row["phone_masked"] == "+86 138****8000"
    code, out, _ = await run_wxlogin(pg_url, "users", "show", str(row["id"]))
    assert code == 0 and "+86 138****8000" in out and "13800138000" not in out
    await run_wxlogin(pg_url, "users", "groups", str(row["id"]), "add", "admin")
    page = await (await desk.get("/admin")).text()  # the owner's page: masked too
    assert "+86 138****8000" in page and "13800138000" not in page

    # Without a number this time (optional): in, and the kept number stays.
    desk2, phone2, scene2, _ = await scanned(server, browser, fw, "bea")
    assert (await push(phone2, scene2, fw.mint("bea", "union-bea"))).status == 200
    assert fw.calls["getuserphonenumber"] == 1
    _, polled = await poll(desk2, scene2, wait=0)
    assert polled["user"]["phone"] == "+8613800138000"

    # The same database with the mode off: the site is told no number.
    off = await make_server()
    desk3 = await browser(off)
    scene3 = await new_scene(desk3)
    await push(await browser(off), scene3, fw.mint("bea", "union-bea"))
    _, polled = await poll(desk3, scene3, wait=0)
    assert "phone" not in polled["user"]


async def test_required_refuses_a_push_without_a_number_and_spends_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(phone="required")
    desk, phone, scene, context = await scanned(server, browser, fw, "cai")
    assert context["phone"] == "required"
    code = fw.mint("cai", "union-cai")
    refused = await push(phone, scene, code, phoneError=102)
    assert refused.status == 400 and (await refused.json())["error"] == "phone_required"
    assert fw.code_calls[code] == 0  # the wx.login code was not spent
    _, polled = await poll(desk, scene, wait=0)
    assert polled["status"] == "scanned"  # the scene is untouched
    bad = await push(phone, scene, code, phoneCode="p-never-minted")
    assert bad.status == 400 and (await bad.json())["error"] == "phone_code_rejected"
    fw.country_as_number = True  # WeChat's example answers countryCode as a number
    done = await push(phone, scene, fw.mint("cai", "union-cai"),
                      phoneCode=fw.mint_phone("13912345678"))
    assert done.status == 200
    _, polled = await poll(desk, scene, wait=0)
    assert polled["user"]["phone"] == "+8613912345678"


async def test_a_number_for_another_mini_program_is_refused(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
) -> None:
    server = await make_server(phone="required")
    _, phone, scene, _ = await scanned(server, browser, fw, "dan")
    foreign = fw.mint_phone(appid="wx-someone-else")
    answer = await push(phone, scene, fw.mint("dan", "union-dan"), phoneCode=foreign)
    assert answer.status == 400 and (await answer.json())["error"] == "phone_code_rejected"
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 0
    # optional: in, without that number
    server = await make_server(phone="optional")
    desk, phone, scene, _ = await scanned(server, browser, fw, "dan")
    answer = await push(phone, scene, fw.mint("dan", "union-dan"),
                        phoneCode=fw.mint_phone(appid="wx-someone-else"))
    assert answer.status == 200
    _, polled = await poll(desk, scene, wait=0)
    assert "phone" not in polled["user"]


async def test_no_number_is_paid_for_a_scene_someone_else_claimed(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(phone="required")
    _, phone, scene, _ = await scanned(server, browser, fw, "owner-of-the-scan")
    answer = await push(phone, scene, fw.mint("intruder"), phoneCode=fw.mint_phone())
    assert answer.status == 409 and (await answer.json())["error"] == "scene_already_claimed"
    assert fw.calls["getuserphonenumber"] == 0


async def test_a_busy_phone_lookup_does_not_block_an_optional_login(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(phone="optional")
    desk, phone, scene, _ = await scanned(server, browser, fw, "hal")
    fw.fail("getuserphonenumber", Fault(errcode=-1), Fault(errcode=-1), Fault(errcode=-1))
    answer = await push(phone, scene, fw.mint("hal", "union-hal"), phoneCode=fw.mint_phone())
    assert answer.status == 200


async def test_an_unauthorised_mini_program_logs_in_without_a_number_when_optional(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    server = await make_server(phone="optional")
    desk, phone, scene, _ = await scanned(server, browser, fw, "eve")
    fw.fail("getuserphonenumber", Fault(errcode=48001))
    answer = await push(phone, scene, fw.mint("eve", "union-eve"), phoneCode=fw.mint_phone())
    assert answer.status == 200
    _, polled = await poll(desk, scene, wait=0)
    assert "phone" not in polled["user"]
    required = await make_server(phone="required")
    _, phone, scene, _ = await scanned(required, browser, fw, "fay")
    fw.fail("getuserphonenumber", Fault(errcode=48001))
    answer = await push(phone, scene, fw.mint("fay", "union-fay"), phoneCode=fw.mint_phone())
    assert answer.status == 502 and (await answer.json())["error"] == "wechat_error"


async def test_the_wechat_calls_each_mode_adds_to_a_login(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    """Per login, counted by the stand-in: the code, two code exchanges (scan, pushCode), and
    what phones add: a number (when shared), a link (when a phone's browser asks)."""
    async def calls_per_login(logins: int, *, phone: str, link: str | None,
                              share: bool) -> dict[str, float]:
        server = await make_server(phone=phone, mobile_link=link or "url_link")
        before = dict(fw.calls)
        for n in range(logins):
            desk, phone_client = await browser(server), await browser(server)
            scene = await new_scene(desk)
            assert (await desk.get(f"/api/scenes/{scene}/code")).status == 200
            if link is not None:
                assert (await desk.get(f"/api/scenes/{scene}/link")).status == 200
                assert (await desk.get(f"/api/scenes/{scene}/link")).status == 200  # kept
            openid = f"{phone}-{link}-{share}-{n}"
            await step(phone_client, scene, "scan", fw.mint(openid))
            extra = {"phoneCode": fw.mint_phone()} if share else {}
            assert (await push(phone_client, scene, fw.mint(openid), **extra)).status == 200
            _, polled = await poll(desk, scene, wait=0)
            assert polled["status"] == "confirmed"
        return {api: (fw.calls[api] - before.get(api, 0)) / logins for api in fw.calls
                if api not in ("stable_token", "token") and fw.calls[api] != before.get(api, 0)}

    base = {"getwxacodeunlimit": 1.0, "jscode2session": 2.0}
    assert await calls_per_login(5, phone="off", link=None, share=False) == base
    assert await calls_per_login(5, phone="optional", link=None, share=False) == base
    assert await calls_per_login(5, phone="optional", link=None, share=True) == {
        **base, "getuserphonenumber": 1.0}
    assert await calls_per_login(5, phone="required", link=None, share=True) == {
        **base, "getuserphonenumber": 1.0}
    assert await calls_per_login(5, phone="off", link="url_link", share=False) == {
        **base, "generate_urllink": 1.0}
    assert await calls_per_login(5, phone="off", link="scheme", share=False) == {
        **base, "generatescheme": 1.0}
    assert await calls_per_login(5, phone="off", link="plain", share=False) == base


async def test_the_oidc_phone_scope_gives_the_number_only_when_phones_are_on(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat,
) -> None:
    import jwt as pyjwt

    from tests.test_oidc import CLIENTS, SECRET, basic, code_for, exchange

    for mode, shown in (("optional", True), ("off", False)):
        server = await make_server(oidc_clients=CLIENTS, phone=mode)
        desk, phone = await browser(server), await browser(server)
        scene = await new_scene(desk)
        extra = {"phoneCode": fw.mint_phone("13700001111")} if mode != "off" else {}
        assert (await push(phone, scene, fw.mint("gus", "union-gus"), **extra)).status == 200
        await poll(desk, scene, wait=0)
        found = await code_for(desk, scope="openid phone")
        site = await browser(server)
        tokens = await (await exchange(site, found["code"],
                                       auth=basic("wordpress", SECRET))).json()
        claims = pyjwt.decode(tokens["id_token"], options={"verify_signature": False})
        info = await (await site.get("/oidc/userinfo", headers={
            "Authorization": f"Bearer {tokens['access_token']}"})).json()
        for said in (claims, info):
            if shown:
                assert said["phone_number"] == "+8613700001111"
                assert said["phone_number_verified"] is True
            else:
                assert "phone_number" not in said
