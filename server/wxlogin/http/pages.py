"""HTML pages: the hosted login page, the demo, the account page, an invitation link's page and
the sandbox's phone.

Pages are rendered here with every dynamic value escaped; behaviour lives in /static/*.js (no
inline script: the page's words reach the script in a JSON data block, which is not executed).
No build step and no external CDN.
"""

from __future__ import annotations

import json
import secrets
from html import escape
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urlsplit

from aiohttp import web
from aiohttp_session import get_session

from .. import i18n
from ..errors import InvitationInvalid
from ..storage import invitations
from ..storage.db import acquire
from .browser import browser_key, current_user
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .peer import client_ip

STATIC = Path(__file__).resolve().parent.parent / "static"

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' blob: data: https:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)


def safe_next(value: str | None) -> str:
    """A same-origin path, or "/": every open-redirect trick (//host, /\\host, schemes,
    userinfo, control characters, slashes encoded once more) lands on "/"."""
    if not value or len(value) > 2048:
        return "/"
    for form in (value, unquote(value)):  # whatever decodes it once more must be safe too
        if not form.startswith("/") or form.startswith("//") or "\\" in form:
            return "/"
        if any(ord(c) < 0x20 or ord(c) == 0x7F for c in form):
            return "/"
        parts = urlsplit(form)
        if parts.scheme or parts.netloc:
            return "/"
    # Keep it plain ASCII, so no browser reads a look-alike character as a slash.
    return quote(value, safe="/?&=#%:@!$'()*+,;~-._")


def render(
    request: web.Request,
    *,
    title_key: str,
    body: str,
    scripts: tuple[str, ...] = (),
    data: dict[str, Any] | None = None,
    status: int = 200,
) -> web.Response:
    lang = i18n.language(request)
    words = i18n.STRINGS[lang]
    base = request.app[BASE]
    island = json.dumps(
        {"lang": lang, "strings": words, "base": base, **(data or {})}, ensure_ascii=False
    )
    island = island.replace("<", "\\u003c")  # nothing in it can close the <script> element
    other = "en" if lang == "zh" else "zh"
    switch = escape(f"{request.path}?{urlencode({**request.query, 'lang': other})}")
    tags = "".join(f'<script src="{base}/static/{name}" defer></script>' for name in scripts)
    html = f"""<!doctype html>
<html lang="{'zh-CN' if lang == 'zh' else 'en'}">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(words[title_key])}</title>
<link rel="stylesheet" href="{base}/static/wxlogin.css">
</head>
<body>
{body}
<footer><a href="{switch}" lang="{other}" hreflang="{other}">{escape(words['switch'])}</a></footer>
<script type="application/json" id="wxlogin-data">{island}</script>
{tags}
</body>
</html>
"""
    response = web.Response(text=html, content_type="text/html", status=status)
    i18n.remember(request, response)
    response.headers.update({
        "Content-Security-Policy": CSP,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "same-origin",
        "Cache-Control": "no-store",
    })
    return response


def login_box(words: dict[str, str], next_path: str, *, phone_link: bool) -> str:
    """The code, its state and countdown; /static/login.js brings it to life."""
    link = ""
    if phone_link:
        link = (f'<p class="phone-link"><a id="phone-link" target="_blank" rel="noopener" '
                f'hidden>{escape(words["open_phone"])}</a></p>')
    return f"""<section class="login" id="wxlogin" data-next="{escape(next_path)}">
<h1>{escape(words['heading'])}</h1>
<p class="instruction">{escape(words['instruction'])}</p>
<p class="open-wechat"><a id="wxlogin-open" class="button" hidden>{escape(words['open_wechat'])}</a>
</p>
<div class="code-box" aria-busy="true">
<img id="wxlogin-code" alt="{escape(words['alt'])}" width="280" hidden>
</div>
<p id="wxlogin-press-hint" class="hint" hidden>{escape(words['press_hint'])}</p>
<p id="wxlogin-save-hint" class="hint" hidden>{escape(words['save_hint'])}</p>
<p><a id="wxlogin-save" class="button quiet" download="wechat-login-code.png" hidden>
{escape(words['save_code'])}</a></p>
<p id="wxlogin-status" class="status" role="status" aria-live="polite" tabindex="-1">
{escape(words['state_loading'])}</p>
<p id="wxlogin-countdown" class="countdown"></p>
<button type="button" id="wxlogin-refresh" hidden>{escape(words['refresh'])}</button>
<p><button type="button" id="wxlogin-kind" class="quiet" hidden>{escape(words['use_oa'])}</button>
</p>
{link}
</section>"""


async def login_page(request: web.Request) -> web.Response:
    words = i18n.STRINGS[i18n.language(request)]
    next_path = safe_next(request.query.get("next"))
    sandbox = request.app[SETTINGS].sandbox
    return render(request, title_key="title", scripts=("login.js",),
                  body=f"<main>{login_box(words, next_path, phone_link=sandbox)}</main>",
                  data=kinds(request))


async def invite_page(request: web.Request) -> web.Response:
    """An invitation link: bound to this browser (made a browser key if it has none), so that
    its next login redeems it; the page is the login itself."""
    words = i18n.STRINGS[i18n.language(request)]
    token = request.match_info["token"]
    services, now = request.app[SERVICES], request.app[CLOCK].now()
    settings = request.app[SETTINGS]
    # Like a new login: each opening counts against the address's budget of new logins.
    services.limits.scenes_by_ip.check(client_ip(request, settings.trusted_proxies),
                                       "new logins from this address")
    found = None
    if 20 <= len(token) <= 64 and token.isascii():
        async with acquire(services.pool) as conn:
            # Only a live invitation gets this browser a session (a key to bind it to).
            found = await invitations.live(conn, token, now)
            if found is not None:
                session = await get_session(request)
                owner = browser_key(session)
                if owner is None:
                    owner = session["browser"] = secrets.token_urlsafe(24)
                await invitations.bind(conn, found, owner, now)
    if found is None:
        if "text/html" not in request.headers.get("Accept", ""):
            raise InvitationInvalid()
        body = (f'<main><section class="card"><h1>{escape(words["invite_title"])}</h1>'
                f'<p id="invite-invalid">{escape(words["invite_invalid"])}</p></section></main>')
        return render(request, title_key="invite_title", body=body, status=410)
    next_path = safe_next(request.query.get("next")) if request.query.get("next") else (
        f"{request.app[BASE]}/account")
    groups = ""
    if found.groups:
        groups = (f'<p class="muted">{escape(words["invite_groups"])}: '
                  f'{escape(", ".join(found.groups))}</p>')
    body = (f'<main><section class="card invite"><h1>{escape(words["invite_heading"])}</h1>'
            f'<p>{escape(words["invite_text"])}</p>{groups}</section>'
            f"{login_box(words, next_path, phone_link=request.app[SETTINGS].sandbox)}</main>")
    return render(request, title_key="invite_title", body=body, scripts=("login.js",),
                  data=kinds(request))


def kinds(request: web.Request) -> dict[str, Any]:
    """Which codes the login box may show: the mini program's first, the account's QR too
    when there is an official account."""
    settings = request.app[SETTINGS]
    return {"oa": settings.oa is not None, "kind": settings.code_kind}


def profile_box(words: dict[str, str], user: Any) -> str:
    avatar = ""
    if user.avatar_url:
        avatar = (f'<img class="avatar" src="{escape(user.avatar_url)}" alt="" '
                  'width="64" height="64">')
    return f"""<section class="profile" id="profile">
{avatar}
<p>{escape(words['logged_in_as'])}
<strong id="profile-nickname">{escape(user.nickname or '—')}</strong></p>
<p class="muted">{escape(words['user_id'])}: <span id="profile-id">{user.id}</span></p>
<button type="button" id="logout">{escape(words['logout'])}</button>
</section>"""


async def demo_page(request: web.Request) -> web.Response:
    words = i18n.STRINGS[i18n.language(request)]
    sandbox = request.app[SETTINGS].sandbox
    user = await current_user(request)
    intro = f"<p class=\"note\">{escape(words['demo_sandbox'])}</p>" if sandbox else ""
    if user is None:
        main = login_box(words, f"{request.app[BASE]}/", phone_link=sandbox)
        main += f"<p>{escape(words['demo_steps'])}</p>" if sandbox else ""
    else:
        main = profile_box(words, user) + f"<p>{escape(words['demo_what'])}</p>"
    body = f"""<main class="demo">
<h1>{escape(words['demo_heading' if sandbox else 'demo_heading_live'])}</h1>
{intro}
{main}
<p class="muted">{escape(words['demo_production']) if sandbox else ''}</p>
</main>"""
    scripts = ("account.js",) if user else ("login.js",)
    return render(request, title_key="demo_title", body=body, scripts=scripts,
                  data=kinds(request))


async def account_page(request: web.Request) -> web.Response:
    user = await current_user(request)
    if user is None:
        base = request.app[BASE]
        raise web.HTTPFound(f"{base}/login?" + urlencode({"next": f"{base}/account"}))
    words = i18n.STRINGS[i18n.language(request)]
    body = f"<main><h1>{escape(words['account_title'])}</h1>{profile_box(words, user)}</main>"
    return render(request, title_key="account_title", body=body, scripts=("account.js",))


def test_user_fields(words: dict[str, str], *, follows: bool = False) -> str:
    """The sandbox's "who are you?": a test user picked or typed, with or without a unionId
    (and for the official account, whether they follow it already)."""
    extra = (f'<label class="check"><input type="checkbox" id="oa-follows">\n'
             f"{escape(words['oa_sandbox_follows'])}</label>\n" if follows else "")
    return f"""<fieldset>
<legend>{escape(words['phone_who'])}</legend>
<label for="phone-user">{escape(words['phone_pick'])}</label>
<select id="phone-user"></select>
<label for="phone-nickname">{escape(words['phone_new'])}</label>
<input id="phone-nickname" maxlength="32" autocomplete="off">
<label class="check"><input type="checkbox" id="phone-unionid">
{escape(words['phone_unionid'])}</label>
{extra}</fieldset>"""


async def phone_page(request: web.Request) -> web.Response:
    """Sandbox only: plays the companion mini program's login page for a scene."""
    words = i18n.STRINGS[i18n.language(request)]
    body = f"""<main class="phone" id="phone">
<h1>{escape(words['phone_title'])}</h1>
<form id="phone-who">
{test_user_fields(words)}
<button type="submit" id="phone-continue">{escape(words['phone_continue'])}</button>
</form>
<section id="phone-context" hidden>
<p>{escape(words['phone_request'])}</p>
<dl>
<dt>{escape(words['phone_site'])}</dt><dd id="ctx-site"></dd>
<dt>{escape(words['phone_browser'])}</dt><dd id="ctx-browser"></dd>
<dt>{escape(words['phone_os'])}</dt><dd id="ctx-os"></dd>
<dt>{escape(words['phone_when'])}</dt><dd id="ctx-when"></dd>
</dl>
<div class="choices">
<button type="button" id="phone-confirm">{escape(words['phone_confirm'])}</button>
<button type="button" id="phone-decline">{escape(words['phone_decline'])}</button>
</div>
<p><button type="button" id="phone-share" class="quiet" hidden>
{escape(words['phone_share'])}</button></p>
</section>
<p id="phone-status" role="status" aria-live="polite"></p>
</main>"""
    # A scanned code carries `scene`; a link that opened "the mini program" carries `s` and
    # the entry scene value it would have (WECHAT.md 10).
    entry = request.query.get("entry", "")
    told = entry.isascii() and entry.isdigit() and len(entry) == 4
    return render(request, title_key="phone_title", body=body, scripts=("phone.js",),
                  data={"scene": request.query.get("scene") or request.query.get("s", ""),
                        "entry": int(entry) if told else 1047})


async def oa_phone_page(request: web.Request) -> web.Response:
    """Sandbox only: plays WeChat when a test user scans the official account's QR: the event
    goes, signed and encrypted, to the real callback, and its reply shows as a chat bubble."""
    words = i18n.STRINGS[i18n.language(request)]
    body = f"""<main class="phone" id="oa-phone">
<h1>{escape(words['oa_sandbox_title'])}</h1>
<form id="oa-who">
{test_user_fields(words, follows=True)}
<button type="submit" id="oa-scan">{escape(words['oa_sandbox_scan'])}</button>
</form>
<section id="oa-chat" class="chat" hidden>
<p class="bubble" id="oa-reply"></p>
<p><a id="oa-reply-link" class="button"></a></p>
</section>
<p id="phone-status" role="status" aria-live="polite"></p>
</main>"""
    return render(request, title_key="oa_sandbox_title", body=body, scripts=("oa-phone.js",),
                  data={"scene": request.query.get("scene", "")})


def routes(sandbox: bool) -> list[web.AbstractRouteDef]:
    found: list[web.AbstractRouteDef] = [
        web.get("/login", login_page),
        web.get("/", demo_page),
        web.get("/account", account_page),
        web.get("/invite/{token}", invite_page),
        web.static("/static", STATIC, append_version=False),
    ]
    if sandbox:
        found.append(web.get("/sandbox/phone", phone_page))
        found.append(web.get("/sandbox/oa", oa_phone_page))
    return found
