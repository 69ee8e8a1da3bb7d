"""The library: the login mounted into a host aiohttp application (examples/blog), sharing its
loop and pool, with `current_user` and `login_required` in the host's own handlers."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from typing import Any

import aiohttp_session
import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from yarl import URL

from examples.blog.app import POOL, create_blog
from tests.fakewechat import FakeWeChat
from wxlogin.http.app import create_app
from wxlogin.http.keys import SERVICES
from wxlogin.http.mount import LOGIN, current_user, login_required, mount
from wxlogin.ops import users
from wxlogin.settings import Settings

HTML = {"Accept": "text/html,application/xhtml+xml"}


async def poll(client: Client, scene: str, prefix: str = "/wxlogin") -> tuple[int, Any]:
    """Long-poll as the login page does, until the scene is settled."""
    since = "pending"
    while True:
        response = await client.get(f"{prefix}/api/scenes/{scene}",
                                    params={"wait": "10", "since": since})
        body = await response.json()
        if response.status != 200 or body["status"] not in ("pending", "scanned"):
            return response.status, body
        since = body["status"]


def next_of(location: str) -> tuple[str, str]:
    url = URL(location)
    return url.path, url.query["next"]


async def blog_server(aiohttp_server: Any, settings: Settings, clock: Any) -> TestServer:
    server: TestServer = await aiohttp_server(create_blog(settings, clock=clock))
    return server


Client = TestClient[Any, Any]


async def log_in(client: Client, phone: Client, fw: FakeWeChat, nickname: str) -> dict[str, Any]:
    """The whole login through the mounted API: every URL it hands out carries the prefix.
    `phone` is a client of its own: the mini program has none of the browser's cookies."""
    made = await client.post("/wxlogin/api/scenes")
    assert made.status == 201, await made.text()
    body = await made.json()
    assert body["code_url"] == f"/wxlogin/api/scenes/{body['scene']}/code"
    drawn = await client.get(body["code_url"])
    assert drawn.status == 200 and await drawn.read() == fw.image
    scene = body["scene"]
    waiting = asyncio.create_task(poll(client, scene))
    scanned = await phone.post(
        f"/wxlogin/api/scenes/{scene}/scan",
        json={"code": fw.mint("o-" + nickname, "u-" + nickname)},
    )
    assert scanned.status == 200, await scanned.text()
    pushed = await phone.post(
        "/wxlogin/api/pushCode",
        json={"scene": scene, "code": fw.mint("o-" + nickname, "u-" + nickname),
              "nickName": nickname},
    )
    assert pushed.status == 200, await pushed.text()
    status, answer = await asyncio.wait_for(waiting, 5)
    assert (status, answer["status"]) == (200, "confirmed"), answer
    user: dict[str, Any] = answer["user"]
    return user


async def test_the_blog_needs_a_login_to_comment_and_shares_its_pool(
    aiohttp_client: Any, aiohttp_server: Any, settings: Settings, fw: FakeWeChat, clock: Any,
    db: asyncpg.Connection[asyncpg.Record],
) -> None:
    server = await blog_server(aiohttp_server, settings, clock)
    client: Client = await aiohttp_client(server)
    blog = server.app
    assert blog[LOGIN][SERVICES].pool is blog[POOL]  # one pool, the blog's

    page = await (await client.get("/posts/hello")).text()
    assert 'href="/wxlogin/login?next=/posts/hello"' in page and "<form" not in page
    # Logged out: a browser's form post goes to the login (and back to the page it was on),
    # a script gets the contract's JSON error; nothing is stored either way.
    refused = await client.post(
        "/posts/hello/comments", data={"body": "first!"}, allow_redirects=False,
        headers={**HTML, "Referer": str(client.make_url("/posts/hello?x=1"))},
    )
    assert refused.status == 303
    assert next_of(refused.headers["Location"]) == ("/wxlogin/login", "/posts/hello?x=1")
    scripted = await client.post("/posts/hello/comments", data={"body": "first!"})
    assert scripted.status == 401
    assert (await scripted.json())["error"] == "not_logged_in"
    assert await db.fetchval("SELECT count(*) FROM public.comments") == 0

    login = await client.get("/wxlogin/login?next=/posts/hello")
    html = await login.text()
    assert login.status == 200
    assert 'src="/wxlogin/static/login.js"' in html and 'href="/wxlogin/static/wxlogin.css"' in html
    assert 'data-next="/posts/hello"' in html and '"base": "/wxlogin"' in html
    assert (await client.get("/wxlogin/static/login.js")).status == 200

    user = await log_in(client, await aiohttp_client(server), fw, "Ada")
    page = await (await client.get("/posts/hello")).text()
    assert '<strong id="me">Ada</strong>' in page and "<form" in page
    posted = await client.post("/posts/hello/comments", data={"body": "Lovely <b>post</b>"},
                               headers=HTML, allow_redirects=False)
    assert (posted.status, posted.headers["Location"]) == (303, "/posts/hello")
    page = await (await client.get("/posts/hello")).text()
    assert "<strong>Ada</strong>: Lovely &lt;b&gt;post&lt;/b&gt;" in page
    assert await db.fetchval("SELECT user_id FROM public.comments") == int(user["id"])
    me = await client.get("/wxlogin/api/me")
    assert (await me.json())["user"]["nickname"] == "Ada"

    # A foreign form is refused, even with the visitor's cookie.
    foreign = await client.post("/posts/hello/comments", data={"body": "spam"},
                                headers={"Origin": "https://evil.example"})
    assert foreign.status == 403
    # Disabled by the owner: the blog no longer sees anyone.
    await users.run(settings.database_url or "", "disable", int(user["id"]))
    page = await (await client.get("/posts/hello")).text()
    assert "<form" not in page and "Log in with WeChat" in page
    assert await db.fetchval("SELECT count(*) FROM public.comments") == 1


async def test_logout_through_the_mount_ends_the_blog_session(
    aiohttp_client: Any, aiohttp_server: Any, settings: Settings, fw: FakeWeChat, clock: Any,
) -> None:
    server = await blog_server(aiohttp_server, settings, clock)
    client: Client = await aiohttp_client(server)
    await log_in(client, await aiohttp_client(server), fw, "Bo")
    assert "<form" in await (await client.get("/posts/hello")).text()
    assert (await client.post("/wxlogin/api/logout")).status == 204
    assert "<form" not in await (await client.get("/posts/hello")).text()
    account = await client.get("/wxlogin/account", allow_redirects=False)
    assert next_of(account.headers["Location"]) == ("/wxlogin/login", "/wxlogin/account")


async def test_a_host_running_aiohttp_session_keeps_its_own_session(
    aiohttp_client: Any, settings: Settings, fw: FakeWeChat, clock: Any,
) -> None:
    # Both use aiohttp-session's request keys; neither may save the other's session.
    host = web.Application(
        middlewares=[aiohttp_session.session_middleware(aiohttp_session.SimpleCookieStorage())]
    )

    async def visits(request: web.Request) -> web.Response:
        session = await aiohttp_session.get_session(request)
        session["visits"] = session.get("visits", 0) + 1
        user = await current_user(request)
        return web.json_response({"visits": session["visits"],
                                  "user": user.nickname if user else None})

    host.router.add_get("/visits", visits)
    mount(host, "/auth", settings=settings, clock=clock)
    client: Client = await aiohttp_client(host)
    phone: Client = await aiohttp_client(client.server)
    assert await (await client.get("/visits")).json() == {"visits": 1, "user": None}
    made = await client.post("/auth/api/scenes")
    assert made.status == 201
    scene = (await made.json())["scene"]
    pushed = await phone.post("/auth/api/pushCode", json={
        "scene": scene, "code": fw.mint("o-cy"), "nickName": "Cy"})
    assert pushed.status == 200
    status, answer = await poll(client, scene, prefix="/auth")
    assert answer["status"] == "confirmed"
    assert await (await client.get("/visits")).json() == {"visits": 2, "user": "Cy"}
    theirs = client.session.cookie_jar.filter_cookies(client.make_url("/"))["AIOHTTP_SESSION"]
    assert '"visits": 2' in theirs.value and "user_id" not in theirs.value, theirs.value


async def test_a_guarded_handler_of_the_host(
    aiohttp_client: Any, settings: Settings, clock: Any,
) -> None:
    host = web.Application()

    @login_required
    async def secret(request: web.Request) -> web.Response:
        user = await current_user(request)
        assert user is not None
        return web.Response(text=f"hello {user.id}")

    host.router.add_get("/admin/", secret)
    mount(host, "/login-server", settings=settings, clock=clock)
    client: Client = await aiohttp_client(host)
    page = await client.get("/admin/?tab=1", headers=HTML, allow_redirects=False)
    assert page.status == 302
    assert next_of(page.headers["Location"]) == ("/login-server/login", "/admin/?tab=1")
    api = await client.get("/admin/", headers={"Accept": "application/json"})
    assert api.status == 401 and (await api.json())["error"] == "not_logged_in"


def test_a_mount_needs_a_database_url_and_a_path(settings: Settings) -> None:
    with pytest.raises(ValueError, match="database_url"):
        mount(web.Application(), "/wxlogin", settings=replace(settings, database_url=None))
    for bad in ("wxlogin", "/wxlogin/"):
        with pytest.raises(ValueError, match="base must be"):
            create_app(settings, clock=None, base=bad)  # type: ignore[arg-type]
