"""The companion mini program's API: scan, pushCode, deny.

These calls carry no cookie and no site Origin; each is judged by its fresh wx.login code, and
identity comes only from WeChat's answer to that code (jscode2session).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
from typing import Any

from aiohttp import web

from ..errors import ApiError, AvatarNotFound, BadInput, PhoneRequired, WeChatUnreachable
from ..login import avatars, oidc, operations
from ..login.profile import https_only, read_profile
from ..login.steps import Answer, user_key
from ..wechat.client import ANSWER_BUDGET, Phone, WeChat, WxSession
from . import inputs
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .oidc import issuer
from .origin import check_origin
from .peer import client_ip

log = logging.getLogger("wxlogin.miniprogram")


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
    avatar = https_only(inputs.optional_text(fields, "avatarUrl", inputs.MAX_AVATAR_URL))
    phone_code = phone_step(settings.phone, fields, wechat.appid)
    # The number costs money and its code is single-use: asked for only within what is left
    # of the step's budget, after the scene was seen to be this person's to confirm.
    budget_ends = asyncio.get_running_loop().time() + ANSWER_BUDGET - 2

    async def number(wx: WxSession) -> Phone | None:
        if not phone_code:
            return None
        await operations.check_confirmable(services.login, scene, user_key(wechat.appid, wx))
        try:
            async with asyncio.timeout(budget_ends - asyncio.get_running_loop().time()):
                return await wechat.phone_number(phone_code)
        except TimeoutError:
            if settings.phone == "required":
                raise WeChatUnreachable() from None
        except ApiError as error:  # refused, busy, unreachable: logged for the owner
            if settings.phone == "required":
                raise
            log.warning("phone numbers: none this time (%s); the login goes on without",
                        error.code)
        return None

    async def confirm(wx: WxSession) -> Answer:
        profile = read_profile(
            wx, appid=wechat.appid, nickname=nickname, avatar_url=avatar, iv=iv,
            encrypted=encrypted, now=clock.now(), max_age=settings.watermark_max_age,
        )
        # Inside the step: a retried push is answered from the ledger and never pays twice.
        phone = await number(wx)
        user = await operations.confirm(
            services.login, scene, appid=wechat.appid, wx=wx, profile=profile,
            avatar_link=lambda avatar_id: avatar_url(request, avatar_id),
            address=client_ip(request, settings.trusted_proxies), phone=phone,
        )
        # Kept in the ledger for retries: never the number (the site reads it from /api/me).
        return Answer(200, {"ok": True, "user": user.public()}, {})

    answer = await services.steps.run(
        step="pushCode", scene=scene, code=code, wechat=wechat, action=confirm,
        fields={"iv": iv, "encryptedData": encrypted, "nickName": nickname, "avatarUrl": avatar,
                "phoneCode": phone_code},
    )
    return respond(answer)


PHONE_ERRNOS = {
    102: "the mini program may not ask for phone numbers (individual or unverified mini "
         "programs cannot): set WXLOGIN_PHONE=off, or verify it as an organisation",
    104: "the mini program has no privacy guide that covers phone numbers: publish one in the "
         "console (用户隐私保护指引)",
    1400001: "the mini program's paid quota of phone numbers is used up: top it up in the "
             "console (WXLOGIN_PHONE=optional lets people in without a number meanwhile)",
}


def phone_step(mode: str, fields: dict[str, Any], appid: str) -> str | None:
    """The `phoneCode` pushCode carries, checked before any code is spent: required and missing
    is a 400 with the scene untouched; `phoneError` (the button's errno) is told to the owner
    in the log."""
    if mode == "off":
        return None
    phone_code = inputs.optional_text(fields, "phoneCode", 128)
    errno = fields.get("phoneError")
    if isinstance(errno, int) and not isinstance(errno, bool) and errno in PHONE_ERRNOS:
        log.warning("phone numbers (%s): errno %s, %s", appid, errno, PHONE_ERRNOS[errno])
    if mode == "required" and not phone_code:
        raise PhoneRequired()
    return phone_code


async def scan(request: web.Request) -> web.Response:
    limit_steps(request)
    settings, services = request.app[SETTINGS], request.app[SERVICES]
    scene = inputs.scene(request.match_info["scene"])
    fields = await inputs.fields(request)
    code, wechat = inputs.code(fields.get("code")), pick_app(request, fields)

    entry = fields.get("entry")
    if not (isinstance(entry, int) and not isinstance(entry, bool) and 1000 <= entry <= 9999):
        entry = None  # how the person arrived (WeChat's scene value), when the phone says

    async def claim(wx: WxSession) -> Answer:
        context = await operations.claim(
            services.login, scene, user_key(wechat.appid, wx), settings.public_url, entry=entry
        )
        return Answer(200, {"status": "scanned", "context": context}, {})

    answer = await services.steps.run(
        step="scan", scene=scene, code=code, wechat=wechat, action=claim,
        fields={"entry": entry},
    )
    return respond(answer)


async def deny(request: web.Request) -> web.Response:
    limit_steps(request)
    services = request.app[SERVICES]
    scene = inputs.scene(request.match_info["scene"])
    fields = await inputs.fields(request)
    code, wechat = inputs.code(fields.get("code")), pick_app(request, fields)

    async def refuse(wx: WxSession) -> Answer:
        await operations.deny(services.login, scene, user_key(wechat.appid, wx))
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
    services = request.app[SERVICES]
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
    await operations.check_scanned(services.login, scene)
    image = await avatars.process(original, services.decoding)

    async def keep(wx: WxSession) -> Answer:
        avatar_id = await operations.attach_avatar(
            services.login, scene, user_key(wechat.appid, wx), image
        )
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
    image = await operations.avatar_image(request.app[SERVICES].login, avatar_id)
    if image is None:
        raise AvatarNotFound()
    return web.Response(body=image, content_type="image/jpeg", headers={
        "Cache-Control": "public, max-age=31536000, immutable",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; sandbox",
    })


AVATAR_ID = re.compile(r"[A-Za-z0-9_-]{22}")


async def miniprogram_token(request: web.Request) -> web.Response:
    """The mini program's own login: a fresh wx.login code for a token to the site's API."""
    limit_steps(request)
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    fields = await inputs.fields(request)
    code, wechat = inputs.code(fields.get("code")), pick_app(request, fields)
    wx = await wechat.code2session(code)
    token, user = await oidc.miniprogram_token(
        services.pool, request.app[CLOCK].now(), issuer(request), wechat.appid, wx,
        registration=settings.registration,
        address=client_ip(request, settings.trusted_proxies),
    )
    return web.json_response({
        "access_token": token, "token_type": "Bearer",
        "expires_in": int(oidc.MINIPROGRAM_TOKEN_LIFETIME.total_seconds()),
        "user": services.login.phones.public(user),
    })
