"""The official account's callback, `/wechat/oa`, and the confirm page its replies link to.

- GET: the console's URL check (`echostr` back when signed with the Token).
- POST: an event. `signature` (and in safe mode `msg_signature` over the `Encrypt`) is checked
  in constant time before anything else; a bad one is refused with nothing done. The XML is
  parsed only without a DTD (so no entities) and within the body limit. Each event counts once
  (FromUserName + CreateTime, in PostgreSQL), its reply kept for WeChat's retries. `subscribe`
  with `qrscene_SCENE` and `SCAN` with `SCENE` claim the scene and answer a passive text reply
  with the context and a confirm link; everything else gets `success`. The answer comes within
  WeChat's 5 s whatever the database does: else `success`, with nothing half-done.
- `/oa/confirm/{token}`: the page (phone-sized, zh/en) and its form POST, `action=confirm` or
  `action=deny`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from html import escape
from xml.etree import ElementTree

import defusedxml.ElementTree as defused  # type: ignore[import-untyped]
from aiohttp import web
from defusedxml import DefusedXmlException

from .. import i18n
from ..errors import ApiError, BadInput, BadSignature, WeChatBusy, WeChatUnreachable
from ..login import official_account as oa_login
from ..settings import OfficialAccount
from ..wechat.oa_crypto import BadMessage, MessageCrypto, signature, signed
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .origin import check_origin
from .pages import render
from .peer import client_ip

log = logging.getLogger("wxlogin.official_account")

MAX_FIELD = 128
ANSWER_WITHIN = 4.0  # WeChat waits 5 s
FRESH_FOR = 300  # seconds between WeChat's timestamp and now
EVENT_KEPT = 3600  # seconds: WeChat's retries come within 15 s


def account(request: web.Request) -> OfficialAccount:
    oa = request.app[SETTINGS].oa
    if oa is None:
        raise web.HTTPNotFound()
    return oa


def query_fields(request: web.Request, *names: str) -> list[str]:
    values = [request.query.get(name, "") for name in names]
    if not all(values) or any(len(v) > MAX_FIELD or not v.isascii() for v in values):
        raise BadSignature()
    return values


async def url_check(request: web.Request) -> web.Response:
    oa = account(request)
    given, timestamp, nonce, echostr = query_fields(
        request, "signature", "timestamp", "nonce", "echostr")
    if not signed(given, oa.token, timestamp, nonce):
        raise BadSignature()
    return web.Response(text=echostr, content_type="text/plain")


def parse(body: bytes) -> dict[str, str]:
    """A flat <xml> of WeChat's, parsed by defusedxml: no DTD, no entity, no external fetch."""
    try:
        root = defused.fromstring(body, forbid_dtd=True)
    except (ElementTree.ParseError, DefusedXmlException, ValueError):
        raise BadInput("The body is not WeChat's XML.") from None
    return {child.tag: (child.text or "") for child in root}


def cdata(text: str) -> str:
    return "<![CDATA[" + text.replace("]]>", "]]]]><![CDATA[>") + "]]>"


def text_reply(to_user: str, from_user: str, content: str) -> str:
    return (f"<xml><ToUserName>{cdata(to_user)}</ToUserName>"
            f"<FromUserName>{cdata(from_user)}</FromUserName>"
            f"<CreateTime>{int(time.time())}</CreateTime><MsgType>{cdata('text')}</MsgType>"
            f"<Content>{cdata(content)}</Content></xml>")


def words(language: str) -> dict[str, str]:
    return i18n.STRINGS[language]


def scanned_text(w: dict[str, str], context: dict[str, object], link: str) -> str:
    """The passive reply: who asks (site, browser, system, place, how long ago), and the link."""
    # WeChat renders a text reply's <a href>: every value is escaped, only our link is a link.
    lines = [w["oa_request"].format(site=escape(str(context["site"]))),
             f"{w['phone_browser']}: {escape(str(context['browser']))} / "
             f"{escape(str(context['os']))}"]
    if context.get("place"):
        lines.append(escape(str(context["place"])))
    lines.append(w["phone_seconds_ago"].replace("{n}", str(context["created_seconds_ago"])))
    lines.append(f'<a href="{escape(link)}">{w["oa_confirm_link"]}</a>')
    return "\n".join(lines)


async def event(request: web.Request) -> web.Response:
    oa = account(request)
    given, timestamp, nonce = query_fields(request, "signature", "timestamp", "nonce")
    if not signed(given, oa.token, timestamp, nonce):
        raise BadSignature()
    now = request.app[CLOCK].now().timestamp()
    outer = parse(await request.read())
    crypto = None
    # With an EncodingAESKey, only safe mode: msg_signature covers the (encrypted) body.
    if oa.aes_key is not None or request.query.get("encrypt_type") == "aes" or "Encrypt" in outer:
        if oa.aes_key is None:
            raise BadSignature("Safe mode needs WXLOGIN_OA_AES_KEY.")
        if "Encrypt" not in outer:
            raise BadSignature("This account is in safe mode: the event must be encrypted.")
        (msg_signature,) = query_fields(request, "msg_signature")
        sealed = outer.get("Encrypt", "")
        if not signed(msg_signature, oa.token, timestamp, nonce, sealed):
            raise BadSignature()
        crypto = MessageCrypto(oa.appid, oa.aes_key, oa.aes_key_previous)
        try:
            outer = parse(crypto.decrypt(sealed).encode())
        except BadMessage:
            raise BadSignature() from None
    elif not timestamp.isdigit() or abs(now - int(timestamp)) > FRESH_FOR:
        # In plaintext mode the signature covers no body and has no expiry of its own: an old
        # signed query string (a log line) must not carry a new body. (In safe mode the body is
        # signed, so an old message can only be itself again, and is counted once.)
        raise BadSignature("This request's timestamp is too far from now.")
    try:
        async with asyncio.timeout(ANSWER_WITHIN):
            reply = await answer(request, outer)
    except TimeoutError:
        log.warning("an official-account event took too long; answered success")
        reply = None
    if reply is None:
        return web.Response(text="success", content_type="text/plain")
    if crypto is not None:
        sealed = crypto.encrypt(reply)
        stamp, once = str(int(now)), nonce
        reply = (f"<xml><Encrypt>{cdata(sealed)}</Encrypt><MsgSignature>"
                 f"{cdata(signature(oa.token, stamp, once, sealed))}</MsgSignature>"
                 f"<TimeStamp>{stamp}</TimeStamp><Nonce>{cdata(once)}</Nonce></xml>")
    return web.Response(text=reply, content_type="application/xml")


async def answer(request: web.Request, message: dict[str, str]) -> str | None:
    """The passive reply to an event (None: `success`), made once across processes."""
    services, settings = request.app[SERVICES], request.app[SETTINGS]
    oa = settings.oa
    assert oa is not None
    from_user, to_user = message.get("FromUserName", ""), message.get("ToUserName", "")
    created = message.get("CreateTime", "")
    if (message.get("MsgType") != "event" or not from_user or len(from_user) > MAX_FIELD
            or not (created.isascii() and created.isdigit() and len(created) <= 18)):
        return None
    kind, key = message.get("Event", ""), message.get("EventKey", "")
    if kind not in ("subscribe", "SCAN"):
        return None
    w = words("zh")
    scene = oa_login.scene_of(kind, key)
    if scene is None and kind == "subscribe" and not key:
        services.metrics.oa_followed()
        return None  # followed from elsewhere: nothing to log in
    unionid = None
    if scene is not None:
        client = services.official_account
        assert client is not None
        try:
            unionid = await client.unionid(from_user)
        except (WeChatBusy, WeChatUnreachable):
            # Passing trouble: without the unionid this person could become a second user.
            return text_reply(from_user, to_user, w["oa_try_again"])
        except ApiError as error:  # WeChat's definite no (not bound, unknown): by openid
            log.warning("no unionid for a follower (%s); they log in by their openid",
                        error.code)
    link_base = f"{settings.public_url}{request.app[BASE]}/oa/confirm/"

    def reply(outcome: oa_login.Scanned | ApiError | None) -> str:
        if isinstance(outcome, oa_login.Scanned):
            return text_reply(from_user, to_user,
                              scanned_text(w, outcome.context, link_base + outcome.token))
        if isinstance(outcome, ApiError):
            said = w.get("oa_scene_" + outcome.code, w["oa_scene_scene_closed"])
            return text_reply(from_user, to_user, said)
        return text_reply(from_user, to_user, w["oa_not_a_login"])

    found, fresh = await oa_login.answer_event(
        services.login, appid=oa.appid, from_user=from_user, created=int(created), scene=scene,
        unionid=unionid, public_url=settings.public_url, reply=reply,
    )
    if kind == "subscribe" and fresh:
        services.metrics.oa_followed()
    return found


async def confirm_page(request: web.Request) -> web.Response:
    account(request)
    settings, services = request.app[SETTINGS], request.app[SERVICES]
    w = i18n.STRINGS[i18n.language(request)]
    token = request.match_info["token"]
    if request.method == "POST":
        check_origin(request)
        form = await request.post()
        action = form.get("action")
        if action not in ("confirm", "deny"):
            raise BadInput("`action` is confirm or deny.")
        assert settings.oa is not None
        try:
            await oa_login.decide(services.login, token, confirm=action == "confirm",
                                  appid=settings.oa.appid,
                                  address=client_ip(request, settings.trusted_proxies))
        except oa_login.ConfirmLinkInvalid:
            return said(request, w["oa_link_invalid"], 410)
        except ApiError as refused:
            return said(request, refused.message, refused.status)
        return said(request, w["phone_done"] if action == "confirm" else w["phone_declined"])
    try:
        found = await oa_login.pending(services.login, token, settings.public_url)
    except oa_login.ConfirmLinkInvalid:
        return said(request, w["oa_link_invalid"], 410)
    c = found.context
    ago = w["phone_seconds_ago"].replace("{n}", str(c["created_seconds_ago"]))
    place = (f"<dt>{escape(w['oa_place'])}</dt><dd>{escape(str(c['place']))}</dd>"
             if c.get("place") else "")
    body = f"""<main class="phone"><section class="card">
<h1>{escape(w['oa_title'])}</h1>
<p>{escape(w['phone_request'])}</p>
<dl>
<dt>{escape(w['phone_site'])}</dt><dd id="ctx-site">{escape(str(c['site']))}</dd>
<dt>{escape(w['phone_browser'])}</dt><dd id="ctx-browser">{escape(str(c['browser']))}</dd>
<dt>{escape(w['phone_os'])}</dt><dd id="ctx-os">{escape(str(c['os']))}</dd>
{place}
<dt>{escape(w['phone_when'])}</dt>
<dd id="ctx-when">{escape(ago)}</dd>
</dl>
<form method="post" class="choices">
<button type="submit" name="action" value="confirm" id="oa-confirm">
{escape(w['phone_confirm'])}</button>
<button type="submit" name="action" value="deny" id="oa-decline">
{escape(w['phone_decline'])}</button>
</form></section></main>"""
    return render(request, title_key="oa_title", body=body)


def said(request: web.Request, text: str, status: int = 200) -> web.Response:
    w = i18n.STRINGS[i18n.language(request)]
    body = (f'<main class="phone"><section class="card"><h1>{escape(w["oa_title"])}</h1>'
            f'<p id="oa-status">{escape(text)}</p></section></main>')
    return render(request, title_key="oa_title", body=body, status=status)
