"""The OpenID Connect front door: discovery, JWKS, authorization, token and userinfo.

A browser that is not logged in is sent to the hosted login page, which brings it back to the
same authorization request once the scan is done. An unknown client or an unregistered
redirect_uri gets an error page, never a redirect; every other authorization error goes back
to the client with `error` and `state` (RFC 6749 §4.1.2.1).
"""

from __future__ import annotations

import base64
import re
from collections.abc import MutableMapping
from datetime import datetime
from html import escape
from typing import Any
from urllib.parse import unquote_plus, urlencode, urlsplit

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import get_session
from multidict import MultiMapping

from .. import i18n
from ..clients import OidcClient
from ..errors import BadInput, OAuthClientError, OAuthError
from ..login import identity, oidc
from ..text import storable
from . import inputs
from .browser import current_user
from .keys import BASE, CLOCK, SERVICES, SETTINGS
from .origin import check_origin
from .pages import CSP, render
from .peer import client_ip

# Short: a relying party that meets an unknown `kid` fetches again anyway, and the next key is
# published long before it signs (storage/signing.py).
JWKS_MAX_AGE = 300
CHALLENGE = re.compile(r"[A-Za-z0-9._~-]{43,128}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")  # what grants.new_token makes
SECONDS = re.compile(r"[0-9]{1,10}")
MAX_PARAM = 512
MAX_NEXT = 2048  # pages.safe_next's limit
# How long a "log in again" round trip (prompt=login, max_age) may take before it is stale.
FRESH_FOR = 900


def issuer(request: web.Request) -> str:
    return request.app[SETTINGS].public_url.rstrip("/") + request.app[BASE]


def page_language(ui_locales: object) -> str | None:
    """The hosted page's language for OIDC's `ui_locales` (the first one it speaks)."""
    if not isinstance(ui_locales, str):
        return None
    for tag in ui_locales.split()[:10]:
        primary = tag.split("-")[0].lower()
        if primary in ("zh", "en"):
            return primary
    return None


def printable(value: str) -> bool:
    return value.isprintable() and storable(value)


async def find_client(request: web.Request, client_id: str | None) -> OidcClient | None:
    return await oidc.find_client(
        request.app[SERVICES].pool, request.app[SETTINGS].oidc_clients, client_id or ""
    )


async def discovery(request: web.Request) -> web.Response:
    iss = issuer(request)
    phones_on = request.app[SETTINGS].phone != "off"
    return web.json_response({
        "issuer": iss,
        "authorization_endpoint": f"{iss}/oidc/authorize",
        "token_endpoint": f"{iss}/oidc/token",
        "userinfo_endpoint": f"{iss}/oidc/userinfo",
        "jwks_uri": f"{iss}/oidc/jwks",
        "end_session_endpoint": f"{iss}/oidc/logout",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256", "ES256"],
        "scopes_supported": [scope for scope in oidc.SCOPES if scope != "phone" or phones_on],
        "claims_supported": [
            "sub", "iss", "aud", "azp", "exp", "iat", "auth_time", "nonce", "at_hash", "name",
            "preferred_username", "picture", "email", "email_verified", "groups",
            *(("phone_number", "phone_number_verified") if phones_on else ()),
        ],
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic", "client_secret_post", "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "prompt_values_supported": ["none", "login"],
        "ui_locales_supported": ["zh-CN", "en"],
        "authorization_response_iss_parameter_supported": True,
        "claims_parameter_supported": False,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }, headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"})


async def jwks(request: web.Request) -> web.Response:
    keys = await identity.jwks(request.app[SERVICES].pool, request.app[CLOCK].now())
    return web.json_response(
        keys, content_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )


def error_page(message: str) -> web.Response:
    """For a request that cannot be sent back to its client: said to the person instead."""
    body = (
        '<!doctype html><html lang="en"><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>Login request refused</title><h1>Login request refused</h1><p>{escape(message)}"
        " Go back to the site you came from and try again; if this persists, tell its owner.</p>"
    )
    return web.Response(status=400, text=body, content_type="text/html",
                        headers={"Cache-Control": "no-store"})


def back_to_client(redirect_uri: str, params: dict[str, str]) -> web.HTTPFound:
    joiner = "&" if "?" in redirect_uri else "?"
    return web.HTTPFound(redirect_uri + joiner + urlencode(params))


async def authorize(request: web.Request) -> web.StreamResponse:
    query: MultiMapping[Any] = (
        await inputs.form(request) if request.method == "POST" else request.query
    )

    def one(name: str) -> str | None:
        values = query.getall(name, [])
        if len(values) > 1 or any(not isinstance(v, str) or len(v) > 2048 for v in values):
            raise ValueError(name)
        return values[0] if values else None

    try:
        client_id, redirect_uri = one("client_id"), one("redirect_uri")
    except ValueError:
        return error_page("The request names its client or its return address more than once.")
    client = await find_client(request, client_id)
    if client is None:
        return error_page("The site that sent you here is not registered with this login.")
    if redirect_uri not in client.redirect_uris:
        return error_page("The return address of this request is not registered for its site.")
    assert redirect_uri is not None
    iss = issuer(request)
    try:
        state = one("state")
    except ValueError:
        raise back_to_client(redirect_uri, {
            "error": "invalid_request", "error_description": "state is given more than once.",
            "iss": iss,
        }) from None
    if state is not None and not printable(state):
        raise back_to_client(redirect_uri, {
            "error": "invalid_request", "error_description": "state holds control characters.",
            "iss": iss,
        })

    def fail(error: str, description: str) -> web.HTTPFound:
        params = {"error": error, "error_description": description, "iss": iss}
        if state is not None:
            params["state"] = state
        return back_to_client(redirect_uri, params)

    try:
        response_type, scope, nonce = one("response_type"), one("scope"), one("nonce")
        challenge, method = one("code_challenge"), one("code_challenge_method")
        prompt, max_age_text, after_text = one("prompt"), one("max_age"), one("wxlogin_after")
        response_mode = one("response_mode")
    except ValueError as repeated:
        raise fail("invalid_request", f"{repeated} is given more than once.") from None
    if "request" in query:
        raise fail("request_not_supported", "Request objects are not supported.")
    if "request_uri" in query:
        raise fail("request_uri_not_supported", "request_uri is not supported.")
    if response_mode not in (None, "query"):
        raise fail("invalid_request", "Only response_mode=query is supported.")
    if response_type != "code":
        raise fail("unsupported_response_type", "Only response_type=code is supported.")
    scopes = list(dict.fromkeys((scope or "").split()))
    if "openid" not in scopes:
        raise fail("invalid_scope", "The scope must include openid.")
    scopes = [s for s in scopes if s in oidc.SCOPES]
    if nonce is not None and (len(nonce) > MAX_PARAM or not printable(nonce)):
        raise fail("invalid_request", "The nonce is too long or holds control characters.")
    if challenge is not None and (method != "S256" or not CHALLENGE.fullmatch(challenge)):
        raise fail("invalid_request", "PKCE needs a code_challenge, code_challenge_method=S256.")
    if challenge is None and (method is not None or client.public):
        raise fail("invalid_request", "This client must use PKCE (code_challenge, S256).")
    prompts = set((prompt or "").split())
    if "none" in prompts and len(prompts) > 1:
        raise fail("invalid_request", "prompt=none cannot be combined with other values.")
    max_age = None
    if max_age_text is not None:
        if not SECONDS.fullmatch(max_age_text):
            raise fail("invalid_request", "max_age must be a whole number of seconds.")
        max_age = int(max_age_text)

    now = request.app[CLOCK].now()
    user = await current_user(request)
    services = request.app[SERVICES]
    authenticated = await logged_in_at(request) if user is not None else None
    # Back from a "log in again" round trip (prompt=login, or a login older than max_age): a
    # login made since it began, at most FRESH_FOR ago, is what was asked for. (A marker made up
    # by hand can only stand for "logged in within FRESH_FOR"; relying parties that care check
    # auth_time in the ID token themselves.)
    if after_text is not None:
        after = int(after_text) if SECONDS.fullmatch(after_text) else 0
        stale = authenticated is None or not (
            now.timestamp() - FRESH_FOR <= after <= authenticated.timestamp() + 1
        )
    else:
        stale = authenticated is None or "login" in prompts or (
            max_age is not None and (now - authenticated).total_seconds() > max_age
        )
    if user is None or authenticated is None or stale:
        if "none" in prompts:
            raise fail("login_required", "The person is not logged in (prompt=none).")
        again = [(k, v) for k, v in query.items() if k not in ("prompt", "wxlogin_after")]
        if "login" in prompts or user is not None:
            again.append(("wxlogin_after", str(int(now.timestamp()))))
        back = f"{request.app[BASE]}/oidc/authorize?{urlencode(again)}"
        if len(back) > MAX_NEXT:  # the login page would not bring the browser back
            raise fail("invalid_request", "The authorization request is too long.")
        login_query = {"next": back}
        lang = page_language(query.get("ui_locales"))
        if lang is not None:
            login_query["lang"] = lang
        raise web.HTTPSeeOther(f"{request.app[BASE]}/login?" + urlencode(login_query))
    if client.allowed_groups and not set(client.allowed_groups) & set(user.groups):
        await oidc.refused_by_groups(
            services.pool, now, user_id=user.id, client_id=client.client_id,
            address=client_ip(request, request.app[SETTINGS].trusted_proxies),
        )
        raise fail("access_denied", "This site admits only members of certain groups.")
    code = await oidc.grant_code(
        services.pool, now, client=client, redirect_uri=redirect_uri, user_id=user.id,
        scopes=scopes, nonce=nonce, code_challenge=challenge, authenticated=authenticated,
    )
    params = {"code": code, "iss": iss}
    if state is not None:
        params["state"] = state
    raise back_to_client(redirect_uri, params)


async def authenticate(request: web.Request, form: dict[str, str]) -> OidcClient:
    """The client, by client_secret_basic, client_secret_post, or (public) its id alone."""
    header = request.headers.get("Authorization", "")
    basic = None
    if header[:6].lower() == "basic ":
        try:
            decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
        except ValueError:  # binascii.Error, UnicodeDecodeError, non-ASCII text
            decoded = ""
        if ":" not in decoded:
            raise refused_client("The Basic credentials cannot be read.")
        basic = decoded.split(":", 1)
    if basic is not None and "client_secret" in form:
        raise OAuthError("invalid_request", "Authenticate the client one way, not two.")
    # RFC 6749 §2.3.1 form-urlencodes both parts first; some clients (Nextcloud) do not.
    offered = (
        [(unquote_plus(basic[0]), unquote_plus(basic[1])), (basic[0], basic[1])]
        if basic is not None else [(form.get("client_id", ""), form.get("client_secret"))]
    )
    client = None
    for client_id, _ in offered:
        client = await find_client(request, client_id)
        if client is not None:
            break
    if client is None:
        raise refused_client("Unknown client.")
    if basic is not None and form.get("client_id", client.client_id) != client.client_id:
        raise OAuthError("invalid_request", "client_id differs from the Basic credentials.")
    candidates = {secret for cid, secret in offered if cid == client.client_id and secret}
    if client.public:
        if candidates:
            raise refused_client("This client is public: it has no secret.")
        return client
    if not any(client.secret_matches(candidate) for candidate in candidates):
        raise refused_client("The client's credentials are wrong.")
    return client


def refused_client(message: str) -> OAuthClientError:
    return OAuthClientError("invalid_client", message,
                            headers={"WWW-Authenticate": 'Basic realm="wxlogin"'})


async def token(request: web.Request) -> web.Response:
    if request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send the token request as a form.")
    try:
        raw = await inputs.form(request)
    except BadInput:
        raise OAuthError("invalid_request", "The form cannot be read.") from None
    form: dict[str, str] = {}
    for name in raw:
        values = raw.getall(name)
        if len(values) > 1 or not isinstance(values[0], str) or len(values[0]) > 4096 or (
            not storable(values[0])
        ):
            raise OAuthError("invalid_request", f"{name} must be given once, as text.")
        form[name] = values[0]
    client = await authenticate(request, form)
    services, now = request.app[SERVICES], request.app[CLOCK].now()
    grant = form.get("grant_type")
    if grant == "authorization_code":
        code = grant_field(form, "code", "This code is unknown or expired.")
        answer = await oidc.exchange_code(
            services.pool, now, issuer(request), client, code=code,
            redirect_uri=form.get("redirect_uri"), verifier=form.get("code_verifier"),
            phones=services.login.phones,
        )
    elif grant == "refresh_token":
        refresh = grant_field(form, "refresh_token",
                              "This refresh token is unknown, expired or revoked.")
        answer = await oidc.refresh(services.pool, now, issuer(request), client, refresh,
                                    services.login.phones)
    else:
        raise OAuthError("unsupported_grant_type",
                         "grant_type must be authorization_code or refresh_token.")
    return web.json_response(answer, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


def grant_field(form: dict[str, str], name: str, unknown: str) -> str:
    """The code or refresh token of a token request: missing is a bad request; anything not
    shaped like one of ours is simply unknown (and never reaches the database)."""
    value = form.get(name)
    if not value:
        raise OAuthError("invalid_request", f"The {name} is missing.")
    if not TOKEN.fullmatch(value):
        raise oidc.invalid_grant(unknown)
    return value


async def userinfo(request: web.Request) -> web.Response:
    header = request.headers.get("Authorization", "")
    bearer = header[7:].strip() if header[:7].lower() == "bearer " else ""
    if not bearer and request.method == "POST" and (
        request.content_type == "application/x-www-form-urlencoded"
    ):
        try:
            value = (await inputs.form(request)).get("access_token")
        except BadInput:
            value = None
        bearer = value if isinstance(value, str) else ""
    if not bearer:
        raise oidc.bearer_refused("Send the access token as Authorization: Bearer.", sent=False)
    if not TOKEN.fullmatch(bearer):
        raise oidc.bearer_refused("The access token is unknown, expired or revoked.")
    services = request.app[SERVICES]
    claims = await oidc.userinfo(
        services.pool, request.app[CLOCK].now(), issuer(request),
        request.app[SETTINGS].oidc_clients, bearer, services.login.phones,
    )
    return web.json_response(claims, headers={"Cache-Control": "no-store"})



async def end_session(request: web.Request) -> web.StreamResponse:
    """RP-initiated logout (OpenID Connect RP-Initiated Logout 1.0). With an `id_token_hint`
    that is an ID token of this very login, at once; otherwise the person confirms (a form POST
    from this page, so neither another site nor an old token logs anyone out unasked). Then
    back to the client's registered post_logout_redirect_uri with `state`, or a page that says
    it is done."""
    if request.method == "POST":
        check_origin(request)
        params: MultiMapping[Any] = await inputs.form(request)
    else:
        params = request.query
    values = {name: params.get(name) for name in (
        "id_token_hint", "client_id", "post_logout_redirect_uri", "state", "ui_locales",
        "confirm",
    )}
    if not all(v is None or (isinstance(v, str) and len(v) <= 8192 and storable(v))
               for v in values.values()):
        return error_page("The logout request cannot be read.")
    text = {k: v for k, v in values.items() if isinstance(v, str)}
    services, now, iss = request.app[SERVICES], request.app[CLOCK].now(), issuer(request)
    hint = await identity.verified_claims(services.pool, text["id_token_hint"], iss, now) if (
        "id_token_hint" in text) else None
    audience = hint.get("aud") if hint else None
    if hint is not None and not isinstance(audience, str):
        hint = None  # we only ever give one audience
    if hint is not None and text.get("client_id") not in (None, audience):
        return error_page("The logout request names two different sites.")
    client_id = text.get("client_id") or (audience if hint is not None else None)
    client = await find_client(request, client_id)
    back = text.get("post_logout_redirect_uri")
    if back is not None and (client is None or back not in client.post_logout_redirect_uris):
        return error_page("The address to return to after logging out is not registered.")
    user = await current_user(request)
    if user is not None:
        if not (await this_session(request, hint, user.id)) and not (
            request.method == "POST" and text.get("confirm") == "yes"
        ):
            fields = {k: v for k, v in text.items() if k != "confirm"}
            return confirm_page(request, fields, back)
        # Saving an emptied session deletes its row (and a pre-login predecessor).
        (await get_session(request)).invalidate()
    if back is not None:
        raise back_to_client(back, {"state": text["state"]} if "state" in text else {})
    words = i18n.STRINGS[i18n.language(request)]
    return render(request, title_key="signout_title",
                  body=f"<main><h1>{escape(words['signout_done'])}</h1></main>")


async def this_session(request: web.Request, hint: dict[str, Any] | None, user_id: int) -> bool:
    """Whether the hint is an ID token of this very login: its person, and its login time
    (`auth_time`) that of this browser's session. Any older token of the person would let
    whoever holds it log them out without asking."""
    if hint is None:
        return False
    started = await logged_in_at(request)
    return (
        started is not None and hint.get("auth_time") == int(started.timestamp())
        and hint["sub"] == await oidc.subject_of(request.app[SERVICES].pool, user_id)
    )


async def logged_in_at(request: web.Request) -> datetime | None:
    """When this browser logged in (its session's start: OIDC's `auth_time`)."""
    session = await get_session(request)
    if session.identity is None:
        return None
    services = request.app[SERVICES]
    return await oidc.auth_time(services.pool, services.storage.id_hash(session.identity))


def confirm_page(request: web.Request, fields: dict[str, str], back: str | None
                 ) -> web.Response:
    words = i18n.STRINGS[i18n.language(request)]
    site = urlsplit(request.app[SETTINGS].public_url).hostname or ""
    hidden = "".join(f'<input type="hidden" name="{escape(k)}" value="{escape(v)}">'
                     for k, v in fields.items())
    body = (
        f"<main><h1>{escape(words['signout_title'])}</h1>"
        f"<p>{escape(words['signout_question'].format(site=site))}</p>"
        f'<form method="post" action="{escape(request.app[BASE])}/oidc/logout">{hidden}'
        f'<button type="submit" name="confirm" value="yes">{escape(words["signout_confirm"])}'
        "</button></form></main>"
    )
    response = render(request, title_key="signout_title", body=body)
    response.headers["Cache-Control"] = "no-store"
    target = origin_of(back) if back is not None else None
    if target is not None:
        # Chromium and Safari hold the form's redirect to form-action too: the registered
        # address the confirmed logout goes back to must be allowed.
        response.headers["Content-Security-Policy"] = CSP.replace(
            "form-action 'self'", f"form-action 'self' {target}"
        )
    return response


# Where an in-browser public client calls from: the four endpoints it needs, no others.
ORIGIN_HOST = re.compile(r"[a-z0-9.:-]+")
CORS_PATHS = frozenset((
    "/.well-known/openid-configuration", "/oidc/jwks", "/oidc/token", "/oidc/userinfo",
))


def origin_of(url: str) -> str | None:
    """The origin a browser sends for pages at `url` (None for a URL that has none)."""
    try:
        parts = urlsplit(url)
        port_number = parts.port
    except ValueError:
        return None
    host = (parts.hostname or "").lower()
    if not host or parts.scheme not in ("http", "https") or not ORIGIN_HOST.fullmatch(host):
        return None
    default = {"http": 80, "https": 443}[parts.scheme]
    port = "" if port_number in (None, default) else f":{port_number}"
    return f"{parts.scheme}://{f'[{host}]' if ':' in host else host}{port}"


@web.middleware
async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """CORS for public clients' origins (those of their redirect URIs), on CORS_PATHS only.
    Their answers always say `Vary: Origin`, so that a shared cache keeps them apart."""
    if request.path[len(request.app[BASE]):] not in CORS_PATHS:
        return await handler(request)
    origin = request.headers.get("Origin")
    allowed: dict[str, str] = {}
    if origin is not None:
        try:
            public = await oidc.public_clients(
                request.app[SERVICES].pool, request.app[SETTINGS].oidc_clients
            )
        except Exception:  # the database is away: no CORS, and the handler answers as it would
            public = []
        if origin in {origin_of(uri) for client in public for uri in client.redirect_uris}:
            allowed = {"Access-Control-Allow-Origin": origin}
    if allowed and request.method == "OPTIONS":  # a preflight: no route of its own
        return web.Response(status=204, headers={
            **allowed, "Vary": "Origin", "Access-Control-Allow-Methods": "GET, POST",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600",
        })
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        exc.headers.update(allowed)
        add_vary(exc.headers)
        raise
    response.headers.update(allowed)
    add_vary(response.headers)
    return response


def add_vary(headers: MutableMapping[str, str]) -> None:
    present = [v.strip() for v in headers.get("Vary", "").split(",") if v.strip()]
    if "origin" not in {v.lower() for v in present}:
        headers["Vary"] = ", ".join([*present, "Origin"])
