"""Ownership, login CSRF, session rotation and revocation (SECURITY.md T1, T4, T5, T8, T21, T22)."""

from __future__ import annotations

import asyncio
import re
from http.cookies import SimpleCookie

import asyncpg
from aiohttp import CookieJar
from yarl import URL

from tests.conftest import Browser, MakeBrowser, MakeServer
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push, session_cookie
from wxlogin.clock import FakeClock


async def login_lost(browser: MakeBrowser, b1: Browser, scene: str) -> str:
    """Play a poll whose answer (and new cookie) never reaches b1; returns the minted id."""
    pre_login = session_cookie(b1)
    assert pre_login is not None
    lost = await with_cookie(browser, pre_login)
    status, body = await poll(lost, scene, wait=0)
    assert (status, body["status"]) == (200, "confirmed")
    minted = session_cookie(lost)
    assert minted is not None and minted != pre_login
    return minted


async def with_cookie(browser: MakeBrowser, cookie: str) -> Browser:
    replay = await browser()
    replay.session.cookie_jar.update_cookies({"wxlogin": cookie}, URL(str(replay.make_url("/"))))
    return replay


async def test_the_scene_alone_is_worth_nothing(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1, b2, phone = await browser(), await browser(), await browser()
    await new_scene(b2)  # b2 has a session of its own, just not this scene
    scene = await new_scene(b1)
    random_scene = "A" * 24

    for name in (scene, random_scene):
        status, body = await poll(b2, name, wait=0)
        assert (status, body["error"]) == (404, "scene_not_found")
        response = await b2.get(f"/api/scenes/{name}/code")
        assert response.status == 404
    assert fw.calls["getwxacodeunlimit"] == 0

    assert (await push(phone, scene, fw.mint("o-1", "u-1"), nickName="Secret")).status == 200
    status, body = await poll(b1, scene, wait=0)
    assert body["status"] == "confirmed" and await me(b1) == 200
    status, body = await poll(b2, scene, wait=0)
    assert status == 404 and "Secret" not in str(body)
    assert await me(b2) == 401


async def test_login_csrf_a_confirmed_scene_logs_in_only_its_owner(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    attacker, victim, phone = await browser(), await browser(), await browser()
    scene = await new_scene(attacker)
    assert (await push(phone, scene, fw.mint("attacker-openid"))).status == 200
    status, _ = await poll(victim, scene, wait=0)
    assert status == 404
    assert await me(victim) == 401
    assert session_cookie(victim) is None


async def test_cross_site_requests_are_refused(browser: MakeBrowser, fw: FakeWeChat) -> None:
    b1 = await browser()
    evil = {"Origin": "https://evil.example"}
    response = await b1.post("/api/scenes", headers=evil)
    assert response.status == 403
    assert (await response.json())["error"] == "forbidden_origin"
    assert session_cookie(b1) is None

    scene = await new_scene(b1)
    assert (await push(await browser(), scene, fw.mint())).status == 200
    response = await b1.get(f"/api/scenes/{scene}", headers={"Sec-Fetch-Site": "cross-site"})
    assert response.status == 403
    assert await me(b1) == 401  # the cross-site poll did not log in
    response = await b1.get(f"/api/scenes/{scene}", headers={"Origin": "http://127.0.0.1:8080"})
    assert response.status == 200 and await me(b1) == 200

    response = await b1.post("/api/logout", headers=evil)
    assert response.status == 403
    assert await me(b1) == 200  # still logged in


async def test_session_rotates_at_login_and_old_ids_are_worthless(
    browser: MakeBrowser, fw: FakeWeChat
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    pre_login = session_cookie(b1)
    assert pre_login is not None
    await push(await browser(), scene, fw.mint())
    await poll(b1, scene, wait=0)
    post_login = session_cookie(b1)
    assert post_login is not None and post_login != pre_login
    assert await me(b1) == 200

    # A replayed pre-login cookie (after the new one was used) and a made-up one get nothing.
    for planted in (pre_login, "x" * 43):
        other = await with_cookie(browser, planted)
        assert await me(other) == 401
        response = await other.post("/api/scenes")
        issued = session_cookie(other)
        assert response.status == 201 and issued not in (planted, pre_login, post_login)


async def test_logout_makes_the_cookie_worthless(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    pre_login = session_cookie(b1)
    await push(await browser(), scene, fw.mint())
    await poll(b1, scene, wait=0)
    logged_in = session_cookie(b1)
    response = await b1.post("/api/logout")
    assert response.status == 204
    assert await me(b1) == 401

    for old in (logged_in, pre_login):
        assert old is not None
        replay = await with_cookie(browser, old)
        assert await me(replay) == 401
        status, _ = await poll(replay, scene, wait=0)
        assert status == 404  # the old cookie owns nothing and logs nobody in
        assert await me(replay) == 401
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions WHERE user_id IS NOT NULL") == 0


async def test_a_lost_login_answer_is_delivered_again_with_the_same_session(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    pre_login = session_cookie(b1)
    assert pre_login is not None
    await push(await browser(), scene, fw.mint())
    minted = await login_lost(browser, b1, scene)

    status, body = await poll(b1, scene, wait=0)  # b1 still holds the pre-login cookie
    assert status == 200 and body["status"] == "confirmed" and "user" in body
    assert session_cookie(b1) == minted  # the same session, not a second one
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions WHERE user_id IS NOT NULL") == 1
    assert await me(b1) == 200

    # Once the new session has been used, the pre-login cookie is gone for good.
    status, _ = await poll(await with_cookie(browser, pre_login), scene, wait=0)
    assert status == 404


async def test_many_tabs_polling_at_confirmation_make_one_session(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    polls = [asyncio.create_task(poll(b1, scene, wait=10)) for _ in range(20)]
    await asyncio.sleep(0.2)
    assert (await push(await browser(), scene, fw.mint())).status == 200
    answers = await asyncio.wait_for(asyncio.gather(*polls), 10)
    assert {status for status, _ in answers} == {200}
    assert {body["status"] for _, body in answers} == {"confirmed"}
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions WHERE user_id IS NOT NULL") == 1
    assert await me(b1) == 200
    status, body = await poll(b1, scene, wait=0)  # a repeated poll answers confirmed again
    assert status == 200 and body["status"] == "confirmed"


async def test_cookie_flags_over_http(browser: MakeBrowser) -> None:
    b1 = await browser()
    response = await b1.post("/api/scenes")
    header = response.headers["Set-Cookie"]
    cookie = SimpleCookie()
    cookie.load(header)
    morsel = cookie["wxlogin"]
    assert morsel["httponly"] and morsel["samesite"] == "Lax" and morsel["path"] == "/"
    assert not morsel["domain"] and not morsel["secure"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", morsel.value)  # 32 random bytes


async def test_cookie_flags_under_https(make_server: MakeServer, browser: MakeBrowser) -> None:
    server = await make_server(public_url="https://login.example.com")
    b1 = await browser(server, cookie_jar=CookieJar(unsafe=True, treat_as_secure_origin=[
        str(server.make_url("/"))]))
    response = await b1.post("/api/scenes")
    assert response.status == 201
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie["__Host-wxlogin"]
    assert morsel["secure"] and morsel["httponly"] and morsel["samesite"] == "Lax"
    assert not morsel["domain"]
    response = await b1.post("/api/scenes", headers={"Origin": "https://evil.example"})
    assert response.status == 403
    response = await b1.post("/api/scenes", headers={"Origin": "https://login.example.com"})
    assert response.status == 201


async def test_sessions_expire_by_the_clock(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    await push(await browser(), scene, fw.mint())
    await poll(b1, scene, wait=0)
    assert await me(b1) == 200
    clock.advance(7 * 24 * 3600 + 1)
    assert await me(b1) == 401


async def test_session_ids_are_unique_and_only_hashes_are_stored(
    browser: MakeBrowser, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    ids = set()
    b = await browser()
    for _ in range(50):
        b.session.cookie_jar.clear()  # a new browser each round
        await new_scene(b)
        ids.add(session_cookie(b))
    assert len(ids) == 50
    rows = await db.fetch("SELECT id_hash FROM wxlogin.sessions")
    stored = {bytes(row["id_hash"]) for row in rows}
    assert len(stored) == 50
    assert not any(cookie and cookie.encode() in stored for cookie in ids)


async def test_logout_with_the_pre_login_cookie_kills_its_unused_successor(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    await push(await browser(), scene, fw.mint())
    minted = await login_lost(browser, b1, scene)
    assert (await b1.post("/api/logout")).status == 204  # b1 still holds the pre-login cookie
    assert await me(await with_cookie(browser, minted)) == 401
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions") == 0


async def test_two_scenes_logged_in_at_once_leave_one_session(
    browser: MakeBrowser, fw: FakeWeChat, db: asyncpg.Connection[asyncpg.Record]
) -> None:
    b1, phone = await browser(), await browser()
    first = await new_scene(b1)
    await push(phone, first, fw.mint("same-person"))
    second = await new_scene(b1)  # a new one: the first is no longer pending
    await push(phone, second, fw.mint("same-person"))
    minted_first = await login_lost(browser, b1, first)
    minted_second = await login_lost(browser, b1, second)
    assert minted_first != minted_second
    assert await me(await with_cookie(browser, minted_second)) == 200  # first use
    assert await me(await with_cookie(browser, minted_first)) == 401  # its sibling is gone
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions") == 1
    assert (await (await with_cookie(browser, minted_second)).post("/api/logout")).status == 204
    assert await db.fetchval("SELECT count(*) FROM wxlogin.sessions") == 0


async def test_a_lost_answer_is_not_delivered_after_the_scene_expires(
    browser: MakeBrowser, fw: FakeWeChat, clock: FakeClock
) -> None:
    b1 = await browser()
    scene = await new_scene(b1)
    await push(await browser(), scene, fw.mint())
    await login_lost(browser, b1, scene)
    clock.advance(301)
    response = await b1.get(f"/api/scenes/{scene}", params={"wait": "0"})
    assert response.status == 409
    assert (await response.json())["error"] == "login_already_used"
    assert await me(b1) == 401


async def test_logout_clears_a_host_prefixed_cookie_with_its_attributes(
    make_server: MakeServer, browser: MakeBrowser
) -> None:
    server = await make_server(public_url="https://login.example.com")
    b1 = await browser(server, cookie_jar=CookieJar(unsafe=True, treat_as_secure_origin=[
        str(server.make_url("/"))]))
    assert (await b1.post("/api/scenes")).status == 201
    response = await b1.post("/api/logout")
    assert response.status == 204
    cookie = SimpleCookie()
    cookie.load(response.headers["Set-Cookie"])
    morsel = cookie["__Host-wxlogin"]
    assert morsel.value == "" and morsel["max-age"] == "0"
    assert morsel["secure"] and morsel["path"] == "/" and not morsel["domain"]


def test_loopback_names_are_one_origin_and_nothing_else_is() -> None:
    from wxlogin.http.origin import same_origin

    assert same_origin("http://localhost:8080", "http://127.0.0.1:8080")
    assert same_origin("http://[::1]:8080", "http://localhost:8080")
    for origin, public in (
        ("http://localhost0:8080", "http://127.0.0.10:8080"),
        ("http://127.0.0.1.evil.com:8080", "http://localhost.evil.com:8080"),
        ("http://localhost:8081", "http://127.0.0.1:8080"),
        ("https://localhost:8080", "http://127.0.0.1:8080"),
        ("http://evil.example", "http://127.0.0.1:8080"),
        ("null", "http://127.0.0.1:8080"),
        ("http://[::1", "http://127.0.0.1:8080"),
    ):
        assert not same_origin(origin, public), (origin, public)
