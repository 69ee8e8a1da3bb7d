"""Who may log in (WXLOGIN_REGISTRATION, invitations, disabled users), against the live server:
what the phone is told, what the browser's poll says, and what is (not) made."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from aiohttp.test_utils import TestServer

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import APPID, FakeWeChat
from tests.helpers import me, new_scene, poll, push, run_wxlogin

DB = asyncpg.Connection  # read-only use: the invariants nobody outside can see


async def attempt(browser: Browser, phone: Browser, fw: FakeWeChat, openid: str,
                  **extra: Any) -> tuple[int, dict[str, Any], dict[str, Any]]:
    """One whole login: the phone's pushCode answer (status, body) and the browser's poll."""
    scene = await new_scene(browser)
    pushed = await push(phone, scene, fw.mint(openid, f"union-{openid}"), **extra)
    _, polled = await poll(browser, scene, wait=0)
    return pushed.status, await pushed.json(), polled


async def users(db: DB[asyncpg.Record]) -> list[tuple[str, str]]:
    rows = await db.fetch("SELECT nickname, status FROM wxlogin.users ORDER BY id")
    return [(row["nickname"], row["status"]) for row in rows]


async def test_open_lets_a_newcomer_in(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record]
) -> None:
    desk = await browser()
    status, body, polled = await attempt(desk, await browser(), fw, "newcomer", nickName="Ann")
    assert status == 200 and polled["status"] == "confirmed" and "reason" not in polled
    assert await me(desk) == 200 and await users(db) == [("Ann", "active")]


async def test_approval_makes_a_pending_account_until_the_owner_approves(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    server = await make_server(registration="approval")
    desk, phone = await browser(server), await browser(server)
    status, body, polled = await attempt(desk, phone, fw, "bob", nickName="Bob")
    assert status == 403 and body["error"] == "approval_pending" and body["message"]
    assert polled["status"] == "denied" and polled["reason"] == "approval_pending"
    assert await me(desk) == 401 and await users(db) == [("Bob", "pending")]

    # Scanning again changes nothing, and makes no second account.
    status, body, polled = await attempt(desk, phone, fw, "bob")
    assert (status, body["error"], polled["reason"]) == (403, "approval_pending",
                                                         "approval_pending")
    assert await users(db) == [("Bob", "pending")]

    user_id = await db.fetchval("SELECT id FROM wxlogin.users")
    code, out, err = await run_wxlogin(pg_url, "users", "list", "--json")
    assert code == 0 and '"status": "pending"' in out, err
    code, out, err = await run_wxlogin(pg_url, "users", "approve", str(user_id))
    assert code == 0 and "approved" in out, err

    status, body, polled = await attempt(desk, phone, fw, "bob")
    assert status == 200 and polled["status"] == "confirmed" and await me(desk) == 200
    assert await users(db) == [("Bob", "active")]

    # Every refusal, and the approval, is in the audit.
    rows = await db.fetch("SELECT actor, action, subject, detail->>'reason' AS reason"
                          " FROM wxlogin.audit ORDER BY id")
    assert [(r["action"], r["reason"]) for r in rows] == [
        ("login_refused", "approval_pending"), ("login_refused", "approval_pending"),
        ("approve", None)]
    assert rows[2]["actor"] == "cli" and rows[2]["subject"] == f"user:{user_id}"


async def test_existing_users_keep_logging_in_when_the_mode_changes(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
) -> None:
    first = await make_server()
    status, _, _ = await attempt(await browser(first), await browser(first), fw, "old-timer")
    assert status == 200
    for mode in ("approval", "invite"):
        server = await make_server(registration=mode)
        desk = await browser(server)
        status, _, polled = await attempt(desk, await browser(server), fw, "old-timer")
        assert status == 200 and polled["status"] == "confirmed" and await me(desk) == 200


async def test_invite_turns_newcomers_away_and_makes_nothing(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
) -> None:
    server = await make_server(registration="invite")
    desk = await browser(server)
    status, body, polled = await attempt(desk, await browser(server), fw, "stranger")
    assert status == 403 and body["error"] == "not_invited"
    assert polled["status"] == "denied" and polled["reason"] == "not_invited"
    assert await me(desk) == 401 and await users(db) == []
    refused = await db.fetchrow("SELECT actor, detail FROM wxlogin.audit")
    assert refused is not None and refused["actor"].startswith("wechat:")
    assert "stranger" not in refused["actor"]  # the audit names them, not by their openid
    again = await browser(server)
    await attempt(again, await browser(server), fw, "stranger")
    assert await db.fetchval("SELECT count(DISTINCT actor) FROM wxlogin.audit") == 1


@pytest.mark.parametrize("mode", ["open", "approval", "invite"])
async def test_a_disabled_user_is_turned_away_in_every_mode(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str, mode: str,
) -> None:
    first = await make_server()
    desk = await browser(first)
    await attempt(desk, await browser(first), fw, "mallory")
    user_id = await db.fetchval("SELECT id FROM wxlogin.users")
    code, _, err = await run_wxlogin(pg_url, "users", "disable", str(user_id))
    assert code == 0, err
    assert await me(desk) == 401  # the session ended at once

    server = await make_server(registration=mode)
    desk = await browser(server)
    status, body, polled = await attempt(desk, await browser(server), fw, "mallory")
    assert status == 403 and body["error"] == "user_disabled"
    assert polled["status"] == "denied" and polled["reason"] == "user_disabled"
    assert await me(desk) == 401 and await users(db) == [("", "disabled")]


async def invite(pg_url: str, *args: str) -> str:
    code, out, err = await run_wxlogin(pg_url, "invite", *args)
    assert code == 0, err
    links = [line for line in out.splitlines() if line.startswith("http")]
    assert len(links) == 1, out
    return links[0]


def path_of(link: str) -> str:
    found = re.search(r"(/invite/[A-Za-z0-9_-]+)$", link)
    assert found, link
    return found.group(1)


@pytest.mark.parametrize("mode", ["invite", "approval"])
async def test_an_invitation_lets_a_newcomer_in_with_its_groups(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str, mode: str,
) -> None:
    server = await make_server(registration=mode)
    link = await invite(pg_url, "--group", "admin", "--group", "editors", "--days", "2")
    desk = await browser(server)
    opened = await desk.get(path_of(link), headers={"Accept": "text/html"})
    assert opened.status == 200 and 'id="wxlogin"' in await opened.text()
    status, body, polled = await attempt(desk, await browser(server), fw, "invitee")
    assert status == 200 and polled["status"] == "confirmed"
    assert sorted(polled["user"]["groups"]) == ["admin", "editors"]
    auth = await desk.get("/api/auth?group=admin")
    assert auth.status == 200 and auth.headers["X-Wxlogin-Groups"] == "admin,editors"
    # Used up: another browser that opens it is told so, and stays out.
    late = await browser(server)
    again = await late.get(path_of(link), headers={"Accept": "text/html"})
    assert again.status == 410 and 'id="invite-invalid"' in await again.text()
    as_json = await late.get(path_of(link))
    assert as_json.status == 410 and (await as_json.json())["error"] == "invitation_invalid"
    status, body, _ = await attempt(late, await browser(server), fw, "latecomer")
    assert status == 403 and body["error"] == ("not_invited" if mode == "invite"
                                               else "approval_pending")


async def test_an_invitation_approves_a_pending_account(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    server = await make_server(registration="approval")
    desk = await browser(server)
    status, _, _ = await attempt(desk, await browser(server), fw, "waiting")
    assert status == 403 and await users(db) == [("", "pending")]
    await desk.get(path_of(await invite(pg_url)))
    status, _, polled = await attempt(desk, await browser(server), fw, "waiting")
    assert status == 200 and polled["status"] == "confirmed" and await users(db) == [
        ("", "active")]


async def test_a_revoked_or_expired_invitation_lets_nobody_in(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str, clock: Any,
) -> None:
    server = await make_server(registration="invite")
    revoked = await invite(pg_url, "--uses", "5")
    invitation_id = await db.fetchval("SELECT max(id) FROM wxlogin.invitations")
    code, out, _ = await run_wxlogin(pg_url, "invite", "--revoke", str(invitation_id))
    assert code == 0 and "revoked" in out
    code, _, err = await run_wxlogin(pg_url, "invite", "--revoke", str(invitation_id))
    assert code == 1 and "no such invitation" in err.lower()
    desk = await browser(server)
    assert (await desk.get(path_of(revoked))).status == 410
    assert "Set-Cookie" not in (await desk.get("/invite/" + "x" * 32)).headers  # no session

    # Opened while live, then revoked before the login: the login is refused all the same.
    live = await invite(pg_url, "--uses", "5")
    desk = await browser(server)
    assert (await desk.get(path_of(live))).status == 200
    live_id = await db.fetchval("SELECT max(id) FROM wxlogin.invitations")
    await run_wxlogin(pg_url, "invite", "--revoke", str(live_id))
    status, body, _ = await attempt(desk, await browser(server), fw, "too-late")
    assert status == 403 and body["error"] == "not_invited" and await users(db) == []

    code, out, _ = await run_wxlogin(pg_url, "invite", "--list")
    assert code == 0 and out.count("revoked") == 2


async def test_a_one_use_invitation_raced_by_20_browsers_makes_one_account(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    server = await make_server(registration="invite", steps_per_minute=0, scenes_per_minute=0)
    path = path_of(await invite(pg_url, "--uses", "1", "--group", "club"))
    desks = [await browser(server) for _ in range(20)]
    for desk in desks:  # every browser opened the link while it was still unused
        assert (await desk.get(path)).status == 200
    scenes = [await new_scene(desk) for desk in desks]
    phone = await browser(server)
    answers = await asyncio.gather(*(
        push(phone, scene, fw.mint(f"racer-{n}", f"union-racer-{n}"))
        for n, scene in enumerate(scenes)
    ))
    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200] + [403] * 19
    assert {(await a.json()).get("error") for a in answers if a.status == 403} == {"not_invited"}
    assert await db.fetchval("SELECT count(*) FROM wxlogin.users") == 1
    assert await db.fetchval("SELECT used FROM wxlogin.invitations") == 1
    assert await db.fetchval("SELECT count(*) FROM wxlogin.user_groups WHERE name = 'club'") == 1
    for desk, scene in zip(desks, scenes, strict=True):
        await poll(desk, scene, wait=0)
    logged_in = [await me(desk) for desk in desks]
    assert sorted(logged_in) == [200] + [401] * 19


async def test_the_mini_programs_own_token_follows_the_same_rules(
    make_server: MakeServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
) -> None:
    server = await make_server(registration="approval")
    phone = await browser(server)
    refused = await phone.post("/api/miniprogram/token", json={"code": fw.mint("app-only")})
    assert refused.status == 403 and (await refused.json())["error"] == "approval_pending"
    assert await users(db) == [("", "pending")]
    invite_only = await make_server(registration="invite")
    phone = await browser(invite_only)
    refused = await phone.post("/api/miniprogram/token", json={"code": fw.mint("someone")})
    assert refused.status == 403 and (await refused.json())["error"] == "not_invited"
    assert len(await users(db)) == 1


async def test_the_invitation_link_names_the_mount_prefix_when_asked(pg_url: str) -> None:
    link = await invite(pg_url, "--prefix", "/wxlogin")
    assert re.fullmatch(r"http://[^/]+/wxlogin/invite/[A-Za-z0-9_-]{32}", link), link
    code, _, err = await run_wxlogin(pg_url, "invite", "--prefix", "wxlogin")
    assert code == 2 and "--prefix" in err


async def test_an_owners_change_and_a_login_of_the_same_person_never_interleave(
    server: TestServer, browser: MakeBrowser, fw: FakeWeChat, db: DB[asyncpg.Record],
    pg_url: str,
) -> None:
    """The login holds its person's row from reading their status to writing it: a disable
    that lands meanwhile waits, then wins; it is never written over with the status read."""
    from wxlogin.login import access, owner
    from wxlogin.storage import queries

    desk = await browser()
    scene = await new_scene(desk)
    assert (await push(await browser(), scene, fw.mint("carol", "union-carol"))).status == 200
    user_id = await db.fetchval("SELECT id FROM wxlogin.users")
    login, other = await asyncpg.connect(pg_url), await asyncpg.connect(pg_url)
    try:
        now = datetime.now(UTC)
        transaction = login.transaction()
        await transaction.start()
        # The login's two halves (login/access.py::admit), with the owner acting between them.
        person = await queries.find_person(login, appid=APPID, openid="carol",
                                           unionid="union-carol")
        assert person.status == "active"
        disabling = asyncio.ensure_future(
            owner.set_status(other, owner.Actor("cli"), user_id, "disable", now))
        await asyncio.sleep(0.3)
        assert not disabling.done()  # waits for the login's transaction
        status = access.status_for(person.status, "open", False)
        assert status == "active"
        await queries.save_person(login, person, appid=APPID, openid="carol",
                                  unionid="union-carol", nickname=None, avatar_url=None,
                                  now=now, status=status, logged_in=True)
        await transaction.commit()
        await asyncio.wait_for(disabling, 10)
    finally:
        await login.close()
        await other.close()
    assert await db.fetchval("SELECT status FROM wxlogin.users") == "disabled"
