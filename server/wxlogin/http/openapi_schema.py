"""The OpenAPI description's building blocks: content types, the error vocabulary and the small
helpers every part of the description (openapi.py, openapi_oidc.py) builds its operations with."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from .keys import MAX_BODY

Schema = dict[str, Any]

JSON = "application/json"
FORM = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"

HEADERS: dict[str, Schema] = {
    "Retry-After": {
        "description": "Seconds to wait before retrying.",
        "required": True,
        "schema": {"type": "integer", "minimum": 1},
    },
    "Set-Cookie": {
        "description": "The session cookie (`wxlogin`, or `__Host-wxlogin` when "
        "`WXLOGIN_PUBLIC_URL` is https): a random id, HttpOnly, SameSite=Lax.",
        "schema": {"type": "string"},
    },
}

# Every `error` code: its status, and what it means to a client (as in docs/api.md).
ERRORS: dict[str, tuple[int, str]] = {
    "bad_request": (400, "the input is malformed (the message says which field)"),
    "code_rejected": (400, "WeChat refused the code: wx.login() again and retry"),
    "code_already_used": (400, "this code was already used on another scene"),
    "invalid_avatar": (400, "the upload is not a JPEG, PNG, WebP or GIF of at most 2048×2048"),
    "invalid_encrypted_data": (400, "`encryptedData` failed a check (one answer for all)"),
    "phone_required": (400, "WXLOGIN_PHONE=required: pushCode needs `phoneCode`"),
    "phone_code_rejected": (400, "WeChat refused the phone button's code: tap it again"),
    "not_logged_in": (401, "no logged-in session"),
    "invalid_client": (401, "OpenID Connect: the client's credentials, or the bearer token, are "
                       "wrong (the answer's `error` is the protocol's code)"),
    "forbidden_origin": (403, "the request came from another site"),
    "not_in_group": (403, "logged in, but not in the group `/api/auth?group=` asks for"),
    "approval_pending": (403, "WXLOGIN_REGISTRATION=approval: the account waits for the owner"),
    "not_invited": (403, "WXLOGIN_REGISTRATION=invite: a newcomer without an invitation link"),
    "user_disabled": (403, "the owner disabled this account"),
    "bad_signature": (403, "`/wechat/oa`: not signed with the official account's Token"),
    "not_owner": (403, "the owner's page and its actions are for members of `admin`"),
    "scene_not_found": (404, "no such scene, or not this browser's (indistinguishable)"),
    "not_found": (404, "no such address"),
    "method_not_allowed": (405, "wrong method for this address"),
    "scene_already_claimed": (409, "someone else scanned this code"),
    "scene_already_confirmed": (409, "already confirmed"),
    "scene_denied": (409, "the login was declined"),
    "scene_not_scanned": (409, "nobody scanned the scene yet: scan first"),
    "code_reused": (409, "this code was used for another step or with other data"),
    "link_unavailable": (409, "WeChat makes no link for this mini program: show the code"),
    "login_already_used": (409, "the confirmed login was already taken: start again"),
    "invitation_invalid": (410, "the invitation link is unknown, expired, revoked or used up"),
    "confirm_link_invalid": (410, "an official account's confirm link used, expired or not yours"),
    "scene_expired": (410, "the code expired: make a new scene"),
    "scene_closed": (410, "the scene is finished; its code is no longer served"),
    "body_too_large": (413, f"bodies are limited to {MAX_BODY // 1024} KiB"),
    "rate_limited": (429, "too many requests: retry after `Retry-After` seconds"),
    "internal_error": (500, "a bug (reported in the server log); never expected"),
    "wechat_error": (502, "WeChat answered something unexpected"),
    "wechat_busy": (503, "WeChat is busy: retry after `Retry-After` seconds, with a fresh code"),
    "login_busy": (503, "this minute's budget of code draws is spent: retry after `Retry-After`"),
    "database_unavailable": (503, "the database is unreachable: retry after `Retry-After`"),
    "wechat_unreachable": (504, "WeChat did not answer in time: retry with a fresh code"),
}

# What every operation may answer: a bug is still a JSON error.
ALWAYS = ("internal_error",)
# Whatever reads the database (the session included).
DATABASE = ("database_unavailable", *ALWAYS)
def text(max_length: int, description: str) -> Schema:
    return {"type": "string", "maxLength": max_length, "description": description}


def obj(properties: dict[str, Schema], *optional: str, closed: bool = True) -> Schema:
    """An object whose properties are all required but `optional`; `closed`: nothing else."""
    schema: Schema = {
        "type": "object",
        "required": [name for name in properties if name not in optional],
        "properties": properties,
    }
    if closed:
        schema["additionalProperties"] = False
    return schema


def ref(name: str) -> Schema:
    return {"$ref": f"#/components/schemas/{name}"}


def error_schema(codes: list[str]) -> Schema:
    return {
        "type": "object",
        "required": ["error", "message"],
        "properties": {"error": {"type": "string", "enum": codes}, "message": {"type": "string"}},
        "additionalProperties": False,
    }


def errors_for(*codes: str) -> dict[str, Schema]:
    """The error answers for these codes, one response per status."""
    by_status: dict[int, list[str]] = defaultdict(list)
    for code in dict.fromkeys(codes):
        by_status[ERRORS[code][0]].append(code)
    responses: dict[str, Schema] = {}
    for status, group in sorted(by_status.items()):
        response: Schema = {
            "description": "; ".join(f"`{code}`: {ERRORS[code][1]}" for code in group),
            "content": {JSON: {"schema": error_schema(group)}},
        }
        if status in (429, 503):
            response["headers"] = {"Retry-After": HEADERS["Retry-After"]}
        responses[str(status)] = response
    return responses


def json_body(description: str, schema: Schema, headers: dict[str, Schema] | None = None) -> Schema:
    response: Schema = {"description": description, "content": {JSON: {"schema": schema}}}
    if headers:
        response["headers"] = headers
    return response


def operation(
    operation_id: str,
    tag: str,
    summary: str,
    responses: dict[str, Schema],
    errors: tuple[str, ...],
    **more: Any,
) -> Schema:
    return {
        "operationId": operation_id,
        "tags": [tag],
        "summary": summary,
        **more,
        "responses": {**responses, **errors_for(*errors)},
    }
