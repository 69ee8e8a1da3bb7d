"""The companion mini program's API: scan, pushCode, deny.

These calls carry no cookie and no site Origin; each is judged by its fresh wx.login code, and
identity comes only from WeChat's answer to that code (jscode2session).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web

from .. import avatars, crypto, scenes, store
from ..app import BASE, CLOCK, SERVICES, SETTINGS
from ..context import client_ip, describe_agent
from ..db import acquire
from ..errors import AvatarNotFound, BadInput, InvalidEncryptedData, SceneAlreadyClaimed
from ..steps import Answer, user_key
from ..wechat import WeChat, WxSession
from . import inputs
from .browser import check_origin


def pick_app(request: web.Request, fields: dict[str, Any]) -> WeChat:
    services = request.app[SERVICES]
    appid = fields.get("appid")
    if appid is None or appid == "":
        return services.wechat[services.primary_appid]
    if not isinstance(appid, str) or appid not in services.wechat:
        raise BadInput("`appid` names no mini program this server knows.")
    return services.wechat[appid]


def respond(answer: Answer) -> web.Response:
    return web.json_response(answer.body, status=answer.status, headers=answer.headers)


def limit_steps(request: web.Request) -> None:
    """Every mini-program step, before anything else: a phone floods from its own address.
    The mini program sends no `Origin`; a web page of another site that does is refused."""
    check_origin(request)
    ip = client_ip(request, request.app[SETTINGS].trusted_proxies)
    request.app[SERVICES].limits.steps_by_ip.check(ip, "login steps from this address")


async def push_code(request: web.Request) -> web.Response:
    limit_steps(request)
    settings, services, clock = request.app[SETTINGS], request.app[SERVICES], request.app[CLOCK]
    fields = await inputs.fields(request)
    scene, code = inputs.scene(fields.get("scene")), inputs.code(fields.get("code"))
    wechat = pick_app(request, fields)
    iv = inputs.optional_text(fields, "iv", 64)
    encrypted = inputs.optional_text(fields, "encryptedData", inputs.MAX_ENCRYPTED)
    if (iv is None) != (encrypted is None):
        raise BadInput("Send `iv` and `encryptedData` together, or neither.")
    nickname = inputs.optional_text(fields, "nickName", inputs.MAX_NICKNAME)
    avatar = inputs.avatar_url(inputs.optional_text(fields, "avatarUrl", inputs.MAX_AVATAR_URL))

    async def confirm(wx: WxSession) -> Answer:
        profile = crypto.Profile(nickname, avatar)
        if iv is not None and encrypted is not None:
            try:
                decrypted = crypto.decrypt_profile(
                    wx.session_key, iv, encrypted, appid=wechat.appid, openid=wx.openid,
                    unionid=wx.unionid, now=clock.now(), max_age=settings.watermark_max_age,
                )
            except crypto.DecryptError:
                raise InvalidEncryptedData() from None
            if decrypted.nickname in store.PLACEHOLDER_NICKNAMES:
                # getUserInfo's anonymised answer: its name and grey avatar are no profile, so
                # whatever the mini program filled in itself stands.
                decrypted = crypto.Profile(None, None)
            profile = crypto.Profile(
                (decrypted.nickname or "")[: inputs.MAX_NICKNAME] or nickname,
                inputs.avatar_url(decrypted.avatar_url) or avatar,
            )
        claimant = user_key(wechat.appid, wx)
        async with acquire(services.pool) as conn, conn.transaction():
            uploaded = await store.avatar_for(conn, scene, claimant)
            user = await store.upsert_user(
                conn, appid=wechat.appid, openid=wx.openid, unionid=wx.unionid,
                nickname=profile.nickname,
                avatar_url=avatar_url(request, uploaded) if uploaded else profile.avatar_url,
                now=clock.now(),
            )
            await scenes.transition(
                conn, scene, "confirm", claimant=claimant, now=clock.now(), user_id=user.id
            )
        services.hub.wake(scene)
        services.metrics.step("confirmed")
        return Answer(200, {"ok": True, "user": user.public()}, {})

    answer = await services.steps.run(
        step="pushCode", scene=scene, code=code, wechat=wechat, action=confirm,
        fields={"iv": iv, "encryptedData": encrypted, "nickName": nickname, "avatarUrl": avatar},
    )
    return respond(answer)


async def scan(request: web.Request) -> web.Response:
    limit_steps(request)
    settings, services, clock = request.app[SETTINGS], request.app[SERVICES], request.app[CLOCK]
    scene = inputs.scene(request.match_info["scene"])
    fields = await inputs.fields(request)
    code, wechat = inputs.code(fields.get("code")), pick_app(request, fields)

    async def claim(wx: WxSession) -> Answer:
        now = clock.now()
        async with acquire(services.pool) as conn:
            moved = await scenes.transition(
                conn, scene, "scan", claimant=user_key(wechat.appid, wx), now=now
            )
        services.hub.wake(scene)
        services.metrics.step("scanned")
        browser, system = describe_agent(moved.browser_agent)
        context = {
            "site": urlsplit(settings.public_url).hostname or settings.public_url,
            "browser": browser,
            "os": system,
            "created_seconds_ago": max(0, int((now - moved.created_at).total_seconds())),
        }
        if moved.browser_place:
            context["place"] = moved.browser_place
        return Answer(200, {"status": "scanned", "context": context}, {})

    answer = await services.steps.run(
        step="scan", scene=scene, code=code, wechat=wechat, action=claim, fields={}
    )
    return respond(answer)


async def deny(request: web.Request) -> web.Response:
    limit_steps(request)
    services, clock = request.app[SERVICES], request.app[CLOCK]
    scene = inputs.scene(request.match_info["scene"])
    fields = await inputs.fields(request)
    code, wechat = inputs.code(fields.get("code")), pick_app(request, fields)

    async def refuse(wx: WxSession) -> Answer:
        async with acquire(services.pool) as conn:
            await scenes.transition(
                conn, scene, "deny", claimant=user_key(wechat.appid, wx), now=clock.now()
            )
        services.hub.wake(scene)
        services.metrics.step("denied")
        return Answer(200, {"status": "denied"}, {})

    answer = await services.steps.run(
        step="deny", scene=scene, code=code, wechat=wechat, action=refuse, fields={}
    )
    return respond(answer)


def avatar_url(request: web.Request, avatar_id: str) -> str:
    base = f"{request.app[SETTINGS].public_url}{request.app[BASE]}"
    return f"{base}/api/avatars/{avatar_id}.jpg"


async def upload_avatar(request: web.Request) -> web.Response:
    """The fill-in avatar, from the scene's claimant (a fresh code proves who sends it)."""
    limit_steps(request)
    services, clock = request.app[SERVICES], request.app[CLOCK]
    if request.content_type != "multipart/form-data":
        raise BadInput("Send the avatar as multipart/form-data (wx.uploadFile does).")
    form = await inputs.form(request)
    upload = form.get("avatar")
    if not isinstance(upload, web.FileField):
        raise BadInput("Send the image in the `avatar` field.")
    fields = {k: v for k, v in form.items() if isinstance(v, str)}
    scene, code = inputs.scene(fields.get("scene")), inputs.code(fields.get("code"))
    wechat = pick_app(request, fields)
    original = upload.file.read()
    # Nothing is decoded for a scene nobody scanned, and a bad image costs no WeChat call.
    async with acquire(services.pool) as conn:
        found, now = await scenes.get(conn, scene), clock.now()
    if found is None or found.state(now) != "scanned":
        raise scenes.refuse(found, now)
    image = await avatars.process(original, services.decoding)

    async def keep(wx: WxSession) -> Answer:
        claimant = user_key(wechat.appid, wx)
        avatar_id = secrets.token_urlsafe(16)
        async with acquire(services.pool) as conn, conn.transaction():
            found, now = await scenes.get(conn, scene), clock.now()
            # Only while the uploader holds the claim (an avatar is not a state change, so a
            # read is enough: one that lands as the scene closes is simply never used).
            if found is None or found.state(now) != "scanned":
                raise scenes.refuse(found, now)
            if found.claimant != claimant:
                raise SceneAlreadyClaimed()
            await store.avatar_put(conn, avatar_id, scene, claimant, image, now)
        return Answer(200, {"avatar_url": avatar_url(request, avatar_id)}, {})

    answer = await services.steps.run(
        step="avatar", scene=scene, code=code, wechat=wechat, action=keep,
        fields={"avatar": hashlib.sha256(original).hexdigest()},
    )
    return respond(answer)


async def avatar(request: web.Request) -> web.Response:
    avatar_id = request.match_info["avatar"]
    if not AVATAR_ID.fullmatch(avatar_id):
        raise AvatarNotFound()
    async with acquire(request.app[SERVICES].pool) as conn:
        image = await store.avatar_image(conn, avatar_id)
    if image is None:
        raise AvatarNotFound()
    return web.Response(body=image, content_type="image/jpeg", headers={
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


AVATAR_ID = re.compile(r"[A-Za-z0-9_-]{22}")
