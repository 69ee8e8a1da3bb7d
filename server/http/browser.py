"""The browser's API: create a scene, fetch its code, long-poll it, who am I, log out.

Ownership is the session cookie: a scene belongs to the browser key kept in the session of the
browser that created it. The scene alone, which anyone who sees the screen has, is worth nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from aiohttp_session import Session, get_session

from .. import scenes, store
from ..app import BASE, CLOCK, SERVICES, SETTINGS
from ..context import client_ip, place
from ..db import acquire
from ..errors import (
    DrawBudgetSpent,
    ForbiddenOrigin,
    LoginAlreadyUsed,
    NotLoggedIn,
    SceneClosed,
    SceneExpired,
)
from ..text import header_text
from . import inputs

log = logging.getLogger("wxlogin.browser")


def check_origin(request: web.Request) -> None:
    """Cookie-bound requests with effects are refused when another site sent them."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.app[SETTINGS].public_origin):
        raise ForbiddenOrigin()
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ForbiddenOrigin()


LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def same_origin(origin: str, public: str) -> bool:
    """`Origin` against WXLOGIN_PUBLIC_URL's origin; on this machine, localhost, 127.0.0.1 and
    [::1] are one host, so a developer may open whichever they like."""
    if origin.lower() == public:
        return True
    try:
        theirs, ours = urlsplit(origin.lower()), urlsplit(public)
        ports = (theirs.port, ours.port)
    except ValueError:
        return False
    return (
        theirs.scheme == ours.scheme == "http"
        and ports[0] == ports[1]
        and theirs.hostname in LOOPBACK
        and ours.hostname in LOOPBACK
    )


def browser_key(session: Session) -> str | None:
    value = session.get("browser")
    return value if isinstance(value, str) else None


async def create_scene(request: web.Request) -> web.Response:
    check_origin(request)
    settings, services, now = request.app[SETTINGS], request.app[SERVICES], request.app[CLOCK].now()
    limits, ip = services.limits, client_ip(request, settings.trusted_proxies)
    session = await get_session(request)
    owner = browser_key(session)
    if owner is None:
        limits.scenes_by_ip.check(ip, "new logins from this address")  # before any database work
    async with acquire(services.pool) as conn:
        # A browser that has a live code (a refresh, a second tab) gets it back: no new draw.
        if owner is not None:
            found = await scenes.live_pending(conn, owner, now, settings.scene_ttl / 2)
            if found is not None:
                services.metrics.step("reused")
                return scene_created(request, found.scene, found.expires_in(now))
            limits.scenes_by_ip.check(ip, "new logins from this address")
            limits.scenes_by_session.check(owner, "new logins")
        if settings.draw_budget:
            wait = await store.take_draw(conn, now, settings.draw_budget)
            if wait:
                log.warning("the code-draw budget of this minute is spent")
                raise DrawBudgetSpent(wait)
        if owner is None:
            owner = secrets.token_urlsafe(24)
            session["browser"] = owner  # a changed session is saved, which sets the cookie
        scene = await scenes.create(
            conn,
            owner=owner,
            appid=services.draw_appid,
            browser_agent=header_text(request.headers.get("User-Agent", ""), 512),
            browser_ip=ip,
            browser_place=header_text(
                place(request, settings.trusted_proxies, settings.place_header), 80
            ),
            now=now,
            expires_at=now + timedelta(seconds=settings.scene_ttl),
        )
    services.metrics.step("created")
    return scene_created(request, scene.scene, settings.scene_ttl)


def scene_created(request: web.Request, scene: str, expires_in: int) -> web.Response:
    return web.json_response(
        {
            "scene": scene,
            "status": "pending",
            "expires_in": expires_in,
            "code_url": f"{request.app[BASE]}/api/scenes/{scene}/code",
        },
        status=201,
    )


async def scene_code(request: web.Request) -> web.Response:
    services, clock = request.app[SERVICES], request.app[CLOCK]
    name = inputs.scene(request.match_info["scene"])
    owner = browser_key(await get_session(request))
    async with acquire(services.pool) as conn:
        found = await scenes.get_owned(conn, name, owner)
    state = found.state(clock.now())
    if state == "expired":
        raise SceneExpired()
    if state not in scenes.OPEN:
        raise SceneClosed()
    appid = found.appid if found.appid in services.wechat else services.draw_appid
    image = await services.drawer.get(name, appid)
    return web.Response(body=image.data, content_type=image.content_type)


async def poll(request: web.Request) -> web.Response:
    services, clock = request.app[SERVICES], request.app[CLOCK]
    name = inputs.scene(request.match_info["scene"])
    wait = inputs.wait(request.query.get("wait"))
    since = inputs.since(request.query.get("since"))
    check_origin(request)
    session = await get_session(request)
    owner = browser_key(session)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    ip = client_ip(request, request.app[SETTINGS].trusted_proxies)
    limits = services.limits
    with limits.polls_by_ip.hold(ip, "waiting logins from this address"), \
            limits.polls_by_session.hold(owner or ip, "waiting logins in this browser"), \
            services.hub.watch(name, since) as waiter:
        while True:
            waiter.event.clear()  # before the read, so a change during it is not lost
            async with acquire(services.pool) as conn:
                found = await scenes.get_owned(conn, name, owner)
            now = clock.now()
            state, remaining = found.state(now), deadline - loop.time()
            if state != since or remaining <= 0 or services.hub.closing:
                break
            if state in scenes.OPEN:  # wake for the expiry too
                remaining = min(remaining, found.seconds_left(now) + 0.01)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(remaining):
                    await waiter.event.wait()
    body: dict[str, Any] = {
        "scene": name,
        "status": state,
        "expires_in": found.expires_in(now),
    }
    if state == "confirmed":
        assert owner is not None
        body["user"] = await log_in(request, session, found, owner)
    return web.json_response(body)


async def log_in(
    request: web.Request, session: Session, found: scenes.Scene, owner: str
) -> dict[str, Any]:
    """The owner's poll of a confirmed scene logs this browser in, exactly once."""
    services, now = request.app[SERVICES], request.app[CLOCK].now()
    storage = services.storage
    async with acquire(services.pool) as conn:
        if found.user_id is not None and session.get("user_id") == found.user_id:
            user = await store.get_user(conn, found.user_id)  # another tab got here first
            if user is not None and not user.disabled:
                return user.public()
        async with conn.transaction():
            nonce = secrets.token_bytes(16)
            opened = await scenes.open_login_gate(conn, found.scene, owner, nonce, now)
            if opened is not None and opened.user_id is not None:
                user = await store.get_user(conn, opened.user_id)
                if user is None or user.disabled:
                    raise NotLoggedIn("This account cannot log in.")
                await storage.login(
                    conn, request, session_id=storage.derived_id(found.scene, nonce),
                    browser=owner, user_id=user.id, now=now,
                )
                services.metrics.step("logged_in")
                return user.public()
        # The gate was used before. If this browser's answer was lost, it still holds the
        # pre-login session: hand out the same post-login session again, never a second one.
        current = await scenes.get(conn, found.scene)
        if (
            session.identity is not None
            and current is not None
            and current.login_nonce
            and current.expires_at > now  # re-delivery lasts as long as the scene would
        ):
            session_id = storage.derived_id(found.scene, current.login_nonce)
            user_id = await storage.pending_login(conn, session_id, session.identity)
            user = await store.get_user(conn, user_id) if user_id is not None else None
            if user is not None and not user.disabled:
                storage.adopt(request, session_id, {"browser": owner, "user_id": user.id})
                return user.public()
    raise LoginAlreadyUsed()


async def me(request: web.Request) -> web.Response:
    user = await current_user(request)
    if user is None:
        raise NotLoggedIn()
    return web.json_response({"user": user.public()})


async def current_user(request: web.Request) -> store.User | None:
    user_id = (await get_session(request)).get("user_id")
    if not isinstance(user_id, int):
        return None
    async with acquire(request.app[SERVICES].pool) as conn:
        user = await store.get_user(conn, user_id)
    return None if user is None or user.disabled else user


async def logout(request: web.Request) -> web.Response:
    check_origin(request)
    # Saving an emptied session deletes its row (and a pre-login predecessor) and the cookie.
    (await get_session(request)).invalidate()
    return web.Response(status=204)
