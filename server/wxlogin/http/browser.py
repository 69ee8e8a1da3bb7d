"""The browser's API: create a scene, fetch its code, long-poll it, who am I, log out.

Ownership is the session cookie: a scene belongs to the browser key kept in the session of the
browser that created it. The scene alone, which anyone who sees the screen has, is worth nothing.
"""

from __future__ import annotations

import logging
import secrets
from typing import Any

from aiohttp import web
from aiohttp_session import Session, get_session

from ..errors import BadInput, DrawBudgetSpent, NotLoggedIn
from ..login import links, operations
from ..storage import queries
from ..text import header_text
from . import inputs
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .origin import check_origin
from .peer import client_ip, place

log = logging.getLogger("wxlogin.browser")


def browser_key(session: Session) -> str | None:
    value = session.get("browser")
    return value if isinstance(value, str) else None


async def create_scene(request: web.Request) -> web.Response:
    check_origin(request)
    settings, services = request.app[SETTINGS], request.app[SERVICES]
    limits, ip = services.limits, client_ip(request, settings.trusted_proxies)
    appid = await code_kind(request)
    session = await get_session(request)
    owner = browser_key(session)
    if owner is not None:
        found = await operations.reusable(services.login, owner, settings.scene_ttl / 2, appid)
        if found is not None:
            return scene_created(request, found.scene, found.expires_in(request.app[CLOCK].now()))
    limits.scenes_by_ip.check(ip, "new logins from this address")  # before any writes
    if owner is not None:
        limits.scenes_by_session.check(owner, "new logins")
    try:
        scene = await operations.start(
            services.login,
            owner=owner or secrets.token_urlsafe(24),
            appid=appid,
            agent=header_text(request.headers.get("User-Agent", ""), 512),
            ip=ip,
            place=header_text(place(request, settings.trusted_proxies, settings.place_header), 80),
            ttl=settings.scene_ttl,
            draw_budget=settings.draw_budget,
        )
    except DrawBudgetSpent:
        log.warning("the code-draw budget of this minute is spent")
        raise
    if owner is None:
        session["browser"] = scene.owner  # a changed session is saved, which sets the cookie
    return scene_created(request, scene.scene, settings.scene_ttl)


async def code_kind(request: web.Request) -> str:
    """Whose code the new scene shows: the mini program's (`wxacode`) or the official
    account's QR (`oa`), as `{"kind"}` asks, by default `WXLOGIN_CODE_KIND`; as its appid."""
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    kind: object = settings.code_kind
    if request.body_exists:
        kind = (await inputs.fields(request)).get("kind") or kind
    if kind == "oa":
        if services.official_account is None:
            raise BadInput("This server has no official account (WXLOGIN_OA_APPID).")
        return services.official_account.appid
    if kind != "wxacode":
        raise BadInput("`kind` is wxacode or oa.")
    return services.draw_appid


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
    services = request.app[SERVICES]
    name = inputs.scene(request.match_info["scene"])
    owner = browser_key(await get_session(request))
    image = await operations.code_image(services.login, name, owner, services.draw_appid)
    return web.Response(body=image.data, content_type=image.content_type)


async def scene_link(request: web.Request) -> web.Response:
    """A link that opens the mini program on this scene, for its owner on a phone."""
    settings, services = request.app[SETTINGS], request.app[SERVICES]
    name = inputs.scene(request.match_info["scene"])
    owner = browser_key(await get_session(request))
    url = await links.mobile_link(
        services.login, name, owner, kind=settings.mobile_link,
        wechat=services.wechat[services.draw_appid], page=settings.page,
        env_version=settings.env_version,
    )
    return web.json_response({"url": url, "kind": settings.mobile_link})


async def poll(request: web.Request) -> web.Response:
    services = request.app[SERVICES]
    name = inputs.scene(request.match_info["scene"])
    wait = inputs.wait(request.query.get("wait"))
    since = inputs.since(request.query.get("since"))
    check_origin(request)
    session = await get_session(request)
    owner = browser_key(session)
    ip = client_ip(request, request.app[SETTINGS].trusted_proxies)
    limits = services.limits
    with limits.polls_by_ip.hold(ip, "waiting logins from this address"), \
            limits.polls_by_session.hold(owner or ip, "waiting logins in this browser"):
        found, now = await operations.wait_for_change(services.login, name, owner, since, wait)
    state = found.state(now)
    body: dict[str, Any] = {"scene": name, "status": state, "expires_in": found.expires_in(now)}
    if state == "denied" and found.deny_reason:
        body["reason"] = found.deny_reason  # the owner's rules, not the person, said no
    if state == "confirmed":
        assert owner is not None
        done = await operations.log_in(
            services.login, found, owner, session_id=session.identity,
            session_user=session.get("user_id"),
        )
        if done.session_id is not None:
            services.storage.adopt(request, done.session_id, done.session)
        body["user"] = services.login.phones.public(done.user)
    return web.json_response(body)


async def me(request: web.Request) -> web.Response:
    user = await current_user(request)
    if user is None:
        raise NotLoggedIn()
    return web.json_response({"user": request.app[SERVICES].login.phones.public(user)})


async def current_user(request: web.Request) -> queries.User | None:
    user_id = (await get_session(request)).get("user_id")
    return await operations.active_user(request.app[SERVICES].login, user_id)


async def logout(request: web.Request) -> web.Response:
    check_origin(request)
    # Saving an emptied session deletes its row (and a pre-login predecessor) and the cookie.
    (await get_session(request)).invalidate()
    return web.Response(status=204)
