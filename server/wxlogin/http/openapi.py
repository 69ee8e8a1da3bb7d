"""The OpenAPI 3.1 description of the HTTP API, served at GET /api/openapi.json.

Written by hand beside the handlers and kept true by tests/test_openapi.py: its operations must be
exactly the app's API routes, and a live server is fuzzed against it (schemathesis), so an answer
it does not describe fails the suite. docs/api.md is the prose reference for the same API.
"""

from __future__ import annotations

import copy
from typing import Any

from aiohttp import web

from ..login.scenes import STATUSES
from ..version import __version__
from . import inputs
from .keys import BASE
from .openapi_oidc import oidc_paths
from .openapi_schema import (
    ALWAYS,
    DATABASE,
    ERRORS,
    FORM,
    HEADERS,
    JSON,
    MULTIPART,
    Schema,
    json_body,
    obj,
    operation,
    ref,
    text,
)

# A mini-program step: a fresh code, checked by WeChat, on an open scene.
STEP = (
    "bad_request", "code_rejected", "code_already_used", "code_reused", "forbidden_origin",
    "scene_not_found", "scene_expired", "body_too_large", "rate_limited", "wechat_error",
    "wechat_busy", "wechat_unreachable", *DATABASE,
)
CLAIMED = ("scene_already_claimed", "scene_already_confirmed", "scene_denied")
REFUSED = ("approval_pending", "not_invited", "user_disabled")  # login/access.py


SCENE: Schema = {
    "type": "string",
    "pattern": "^[0-9A-Za-z]{1,32}$",  # scenes.valid_scene
    "minLength": 1,
    "maxLength": 32,
    "description": "A login attempt: 1 to 32 letters and digits.",
}
CODE: Schema = {
    "type": "string",
    "pattern": f"^{inputs.CODE.pattern}$",
    "description": "A fresh `wx.login()` code: every step takes its own.",
}
APPID: Schema = {
    "type": "string",
    "description": "The calling mini program, when the server runs several (`WXLOGIN_APPS`); "
    "absent or empty means the primary one.",
}
SCHEMAS: dict[str, Schema] = {
    "Error": {
        **obj({
            "error": {"type": "string", "enum": sorted(ERRORS)},
            "message": {"type": "string", "description": "A sentence a person can act on."},
        }),
        "description": "Every error answer; each response below narrows `error` to its codes.",
    },
    "User": obj({
        "id": {"type": "string", "pattern": "^[0-9]+$"},
        "nickname": {"type": "string", "description": "At most 64 characters; may be empty."},
        "avatar_url": {
            "type": "string",
            "description": "An https URL, this server's address of an uploaded avatar, or empty.",
        },
        "groups": {"type": "array", "items": {"type": "string"},
                   "description": "The groups the owner put this user in (may be empty)."},
        "phone": {"type": "string", "pattern": "^\\+[0-9]{5,19}$",
                  "description": "E.164, verified by WeChat: only when `WXLOGIN_PHONE` is not "
                  "off and the person shared it."},
    }, "phone"),
    "Status": {
        "type": "string",
        "enum": list(STATUSES),
        "description": "pending → scanned → confirmed | denied; any open status → expired. "
        "Clients treat a status they do not know as still waiting.",
    },
}


def _step_body(properties: dict[str, Schema], *optional: str, **more: Any) -> Schema:
    """A mini-program step's body: a JSON object, or the same fields as a form."""
    schema = {**obj(properties, *optional, closed=False), **more}
    return {
        "required": True,
        "content": {JSON: {"schema": schema}, FORM: {"schema": schema}},
    }


SCENE_PARAMETER: Schema = {"name": "scene", "in": "path", "required": True, "schema": SCENE}
OPTIONAL_SESSION: list[Schema] = [{}, {"session": []}]
SESSION: list[Schema] = [{"session": []}]


def _paths() -> dict[str, Schema]:
    user = {"user": ref("User")}
    return {
        "/api/scenes": {"post": operation(
            "createScene", "browser",
            "Start a login attempt bound to this browser (a live one of the same kind is handed "
            "back). No body, or `{\"kind\"}`.",
            {"201": json_body(
                "The scene: show its code (`code_url`) and poll it.",
                obj({
                    "scene": SCENE,
                    "status": {"const": "pending"},
                    "expires_in": {"type": "integer", "minimum": 0},
                    "code_url": {
                        "type": "string",
                        "pattern": "/api/scenes/[0-9A-Za-z]{1,32}/code$",
                        "description": "Where the code's image is, under the base path.",
                    },
                }),
                {"Set-Cookie": HEADERS["Set-Cookie"]},
            )},
            ("bad_request", "forbidden_origin", "body_too_large", "rate_limited", "login_busy",
             *DATABASE),
            security=OPTIONAL_SESSION,
            requestBody={"required": False, "content": {JSON: {"schema": obj({
                "kind": {"enum": ["wxacode", "oa"], "description": "The mini program's code "
                         "(default `WXLOGIN_CODE_KIND`), or the official account's QR."},
            }, "kind", closed=False)}}},
        )},
        "/api/scenes/{scene}/code": {"get": operation(
            "sceneCode", "browser",
            "The scene's mini-program code, drawn by WeChat at most once; owner only.",
            {"200": {
                "description": "WeChat's image, its bytes unchanged.",
                "content": {"image/png": {}, "image/jpeg": {}},
            }},
            ("bad_request", "scene_not_found", "not_found", "scene_expired", "scene_closed",
             "wechat_error", "wechat_busy", "wechat_unreachable", *DATABASE),
            parameters=[SCENE_PARAMETER],
            security=SESSION,
        )},
        "/api/scenes/{scene}/link": {"get": operation(
            "sceneLink", "browser",
            "For the scene's owner on a phone: a link that opens the mini program on the scene "
            "(`WXLOGIN_MOBILE_LINK`: a URL Link, an encrypted scheme or a plain scheme; the "
            "scene travels as query `s`). Made once per scene; a kind WeChat refuses (an "
            "individual or unpublished mini program, quotas) is remembered, and answered 409 "
            "`link_unavailable` at once: show the code instead.",
            {"200": json_body("The link.", obj({
                "url": {"type": "string"},
                "kind": {"enum": ["url_link", "scheme", "plain"]},
            }))},
            ("bad_request", "scene_not_found", "scene_expired", "scene_closed", "link_unavailable",
             "not_found", "wechat_error", "wechat_busy", "wechat_unreachable", *DATABASE),
            parameters=[SCENE_PARAMETER],
            security=SESSION,
        )},
        "/api/scenes/{scene}": {"get": operation(
            "pollScene", "browser",
            "Long-poll the scene: answers once its status differs from `since`, or after "
            "`wait` seconds. `confirmed` logs this browser in (and includes `user`); `denied` "
            "by the owner's rules carries `reason`.",
            {"200": json_body(
                "The scene's status.",
                {
                    **obj({
                        "scene": SCENE,
                        "status": ref("Status"),
                        "expires_in": {"type": "integer", "minimum": 0},
                        "reason": {"enum": ["approval_pending", "not_invited", "user_disabled"]},
                        **user,
                    }, "user", "reason"),
                    "if": {"properties": {"status": {"const": "confirmed"}}},
                    "then": {"required": ["user"]},
                    "else": {"not": {"required": ["user"]}},
                },
                {"Set-Cookie": HEADERS["Set-Cookie"]},
            )},
            ("bad_request", "not_logged_in", "forbidden_origin", "scene_not_found", "not_found",
             "login_already_used", "rate_limited", *DATABASE),
            parameters=[
                SCENE_PARAMETER,
                {
                    "name": "wait", "in": "query",
                    "description": f"Seconds to hold the answer for a change (more than "
                    f"{inputs.MAX_WAIT} counts as {inputs.MAX_WAIT}).",
                    "schema": {"type": "integer", "minimum": 0, "default": inputs.DEFAULT_WAIT},
                },
                {
                    "name": "since", "in": "query",
                    "description": "The last status this client saw.",
                    "schema": {**ref("Status"), "default": "pending"},
                },
            ],
            security=SESSION,
        )},
        "/api/me": {"get": operation(
            "me", "browser", "Who is logged in.",
            {"200": json_body("The logged-in user.", obj(user))},
            ("not_logged_in", *DATABASE),
            security=SESSION,
        )},
        "/api/logout": {"post": operation(
            "logout", "browser", "Log out: the session and its cookie are gone.",
            {"204": {
                "description": "Logged out.",
                "headers": {"Set-Cookie": HEADERS["Set-Cookie"]},
            }},
            ("forbidden_origin", "body_too_large", *DATABASE),
            security=OPTIONAL_SESSION,
        )},
        "/api/auth": {"get": operation(
            "forwardAuth", "browser",
            "Forward auth (nginx `auth_request` and friends): the user in headers.",
            {"200": {
                "description": "Logged in; no body.",
                "headers": {
                    "X-Wxlogin-User-Id": {
                        "required": True, "schema": {"type": "string", "pattern": "^[0-9]+$"},
                    },
                    "X-Wxlogin-Nickname": {
                        "required": True,
                        "description": "The nickname, percent-encoded UTF-8.",
                        "schema": {"type": "string"},
                    },
                    "X-Wxlogin-Groups": {
                        "required": True,
                        "description": "The user's groups, comma-separated (may be empty).",
                        "schema": {"type": "string"},
                    },
                },
            }},
            ("bad_request", "not_logged_in", "not_in_group", *DATABASE),
            parameters=[{
                "name": "group", "in": "query", "required": False,
                "description": "Admit only members of this group (403 `not_in_group` else).",
                "schema": {"type": "string"},
            }],
            security=SESSION,
        )},
        "/api/pushCode": {"post": operation(
            "pushCode", "mini program",
            "Confirm the scene (claiming it first if nobody scanned it).",
            {"200": json_body("Confirmed.", obj({"ok": {"const": True}, **user}))},
            ("invalid_encrypted_data", "phone_required", "phone_code_rejected", *REFUSED,
             *CLAIMED, *STEP),
            requestBody=_step_body({
                "code": CODE,
                "scene": SCENE,
                "appid": APPID,
                "iv": text(64, "With `encryptedData`, from a call made after `wx.login()`."),
                "encryptedData": text(
                    inputs.MAX_ENCRYPTED, "The profile, encrypted; it only adds profile fields."
                ),
                "nickName": text(inputs.MAX_NICKNAME, "A plain profile field."),
                "avatarUrl": text(inputs.MAX_AVATAR_URL, "Kept only when it is https://."),
                "phoneCode": text(128, "The getPhoneNumber button's code (`WXLOGIN_PHONE` not "
                                  "off); required when it is `required`."),
                "phoneError": {"type": "integer", "description": "The button's `errno` (102, "
                               "104, 1400001), told to the owner in the server log."},
            }, "appid", "iv", "encryptedData", "nickName", "avatarUrl", "phoneCode", "phoneError",
                dependentRequired={"iv": ["encryptedData"], "encryptedData": ["iv"]}),
        )},
        "/api/scenes/{scene}/scan": {"post": operation(
            "scan", "mini program",
            "Claim the scene for the WeChat user behind `code`; the browser's poll answers "
            "`scanned`.",
            {"200": json_body("Claimed; what to show before the user confirms.", obj({
                "status": {"const": "scanned"},
                "context": obj({
                    "site": {"type": "string"},
                    "browser": {"type": "string"},
                    "os": {"type": "string"},
                    "place": {
                        "type": "string",
                        "description": "The browser's rough location, when a trusted proxy "
                        "names it (`WXLOGIN_PLACE_HEADER`).",
                    },
                    "created_seconds_ago": {"type": "integer", "minimum": 0},
                    "phone": {"enum": ["off", "optional", "required"],
                              "description": "Whether to show WeChat's phone button, and how."},
                }, "place"),
            }))},
            (*CLAIMED, "not_found", *STEP),
            parameters=[SCENE_PARAMETER],
            requestBody=_step_body({"code": CODE, "appid": APPID, "entry": {
                "type": "integer", "minimum": 1000, "maximum": 9999,
                "description": "How the person arrived: WeChat's scene value (1047 a scanned "
                "code, 1048 a long-press, 1049 the album, 1065 a URL scheme, 1194 a URL link, "
                "1286 a plain scheme).",
            }}, "appid", "entry"),
        )},
        "/api/scenes/{scene}/deny": {"post": operation(
            "deny", "mini program", "Decline the login, for whoever scanned the scene.",
            {"200": json_body("Declined.", obj({"status": {"const": "denied"}}))},
            (*CLAIMED, "scene_not_scanned", "not_found", *STEP),
            parameters=[SCENE_PARAMETER],
            requestBody=_step_body({"code": CODE, "appid": APPID}, "appid"),
        )},
        "/api/miniprogram/token": {"post": operation(
            "miniprogramToken", "mini program",
            "The mini program's own login: a fresh `wx.login()` code for a JWT access token to "
            "the site's own API (RS256, `iss` the issuer, `sub` the user's OpenID Connect sub, "
            "`aud` the mini program's appid), verifiable through `/oidc/jwks`.",
            {"200": json_body("Logged in.", obj({
                "access_token": {"type": "string"}, "token_type": {"const": "Bearer"},
                "expires_in": {"type": "integer", "minimum": 1}, "user": ref("User"),
            }))},
            ("bad_request", "code_rejected", "forbidden_origin", *REFUSED,
             "body_too_large", "rate_limited", "wechat_error", "wechat_busy",
             "wechat_unreachable", *DATABASE),
            requestBody=_step_body({"code": CODE, "appid": APPID}, "appid"),
        )},
        "/api/avatar": {"post": operation(
            "uploadAvatar", "mini program",
            "The scanner's chosen avatar: re-encoded (256×256 JPEG, no metadata); it becomes "
            "the user's avatar when the same person confirms the scene.",
            {"200": json_body("Kept.", obj({
                "avatar_url": {
                    "type": "string", "pattern": "/api/avatars/[A-Za-z0-9_-]{22}\\.jpg$",
                },
            }))},
            ("invalid_avatar", *CLAIMED, "scene_not_scanned", *STEP),
            requestBody={
                "required": True,
                "content": {MULTIPART: {
                    "schema": obj({
                        "avatar": {
                            "type": "string",
                            "format": "binary",
                            "description": "A JPEG, PNG, WebP or GIF image.",
                        },
                        "scene": SCENE,
                        "code": CODE,
                        "appid": APPID,
                    }, "appid", closed=False),
                    "encoding": {"avatar": {"contentType": "image/*"}},
                }},
            },
        )},
        "/api/avatars/{avatar}.jpg": {"get": operation(
            "avatar", "mini program", "An uploaded avatar.",
            {"200": {
                "description": "The re-encoded image; it never changes.",
                "headers": {"Cache-Control": {
                    "schema": {"const": "public, max-age=31536000, immutable"},
                }},
                "content": {"image/jpeg": {}},
            }},
            ("not_found", *DATABASE),
            parameters=[{
                "name": "avatar", "in": "path", "required": True,
                "schema": {"type": "string", "pattern": "^[A-Za-z0-9_-]{22}$"},
            }],
        )},
        "/healthz": {"get": operation(
            "health", "operations", "Whether the server can reach its database.",
            {"200": json_body("Healthy.", obj({"ok": {"const": True}}))},
            DATABASE,
        )},
        "/metrics": {"get": operation(
            "metrics", "operations", "Prometheus metrics of this process.",
            {"200": {
                "description": "The Prometheus text exposition format.",
                "content": {"text/plain": {"schema": {"type": "string"}}},
            }},
            ALWAYS,
        )},
        "/api/openapi.json": {"get": operation(
            "openapi", "operations", "This description.",
            {"200": json_body("OpenAPI 3.1.", {
                "type": "object", "required": ["openapi", "info", "paths"],
            })},
            ALWAYS,
        )},
    }


DESCRIPTION = """\
Scan with WeChat to log in. A browser creates a login attempt (a *scene*), shows its code and
long-polls it; the companion mini program scans the code, then confirms or declines. docs/api.md
is the prose reference for the same API.

Browser endpoints are bound by the session cookie. A `POST` whose `Origin` is not
`WXLOGIN_PUBLIC_URL`'s origin is refused (403 `forbidden_origin`), and so is a poll sent with
`Sec-Fetch-Site: cross-site`. Mini-program steps carry no cookie: each is judged by its fresh
`wx.login()` code; sending the very same request again answers the same.

Every error is `{"error", "message"}`; an address that matches no route answers 404 `not_found`,
a method it does not take 405 `method_not_allowed`, and a body over 64 KiB 413. Every answer under
`/api/` carries `Cache-Control: no-store` (the avatars excepted).

Not described here, because they are not API: the HTML pages (`/login`, `/`, `/account`, an
invitation link's `/invite/{token}`), the owner's page `/admin` and its form actions
(`/api/admin/…`, answering 303 or a page, and the errors below), WeChat's callback for the
official account (`/wechat/oa`, signed by WeChat) and the confirm page its replies link to
(`/oa/confirm/{token}`), their
scripts and styles (`/static/…`), and sandbox mode's stand-ins (`/sandbox/…`).
"""


def document(base: str = "") -> dict[str, Any]:
    """The description of the API as served under `base` (the path the app is mounted at)."""
    return copy.deepcopy({  # its parts are shared module constants
        "openapi": "3.1.0",
        "info": {
            "title": "wxacode-login",
            "version": __version__,
            "summary": "Scan-with-WeChat login for any website.",
            "description": DESCRIPTION,
            "license": {"name": "MIT", "identifier": "MIT"},
        },
        "servers": [{"url": base or "/", "description": "this server"}],
        "tags": [
            {"name": "browser", "description": "Same origin, bound by the session cookie."},
            {"name": "mini program", "description": "The companion mini program's steps."},
            {"name": "operations", "description": "For operators and their tools."},
            {"name": "identity", "description": "For relying parties (OpenID Connect)."},
        ],
        "paths": {**_paths(), **oidc_paths()},
        "components": {
            "schemas": SCHEMAS,
            "securitySchemes": {"session": {
                "type": "apiKey",
                "in": "cookie",
                "name": "wxlogin",
                "description": HEADERS["Set-Cookie"]["description"],
            }},
        },
    })


async def openapi(request: web.Request) -> web.Response:
    return web.json_response(document(request.app[BASE]))
