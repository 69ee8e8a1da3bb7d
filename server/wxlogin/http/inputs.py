"""Parsing of everything a client sends; every failure is a BadInput (400) that changes nothing."""

from __future__ import annotations

import json
import re
from typing import Any

from aiohttp import web
from multidict import MultiDictProxy

from ..errors import BadInput
from ..login.profile import MAX_NICKNAME as MAX_NICKNAME  # the limit, for the OpenAPI file
from ..login.scenes import STATUSES, valid_scene
from ..text import storable

CODE = re.compile(r"[\x21-\x7e]{1,128}")
MAX_WAIT = 50
DEFAULT_WAIT = 25
MAX_AVATAR_URL = 1024
MAX_ENCRYPTED = 64 * 1024


def scene(value: object) -> str:
    if not isinstance(value, str) or not valid_scene(value):
        raise BadInput("`scene` must be 1 to 32 letters and digits.")
    return value


def code(value: object) -> str:
    if not isinstance(value, str) or not CODE.fullmatch(value):
        raise BadInput("`code` must be the code from a fresh wx.login().")
    return value


def wait(value: str | None) -> int:
    if value is None:
        return DEFAULT_WAIT
    try:
        seconds = int(value)
    except ValueError:
        raise BadInput("`wait` must be a whole number of seconds.") from None
    if seconds < 0:
        raise BadInput("`wait` must not be negative.")
    return min(seconds, MAX_WAIT)


def since(value: str | None) -> str:
    if value is None:
        return "pending"
    if value not in STATUSES:
        raise BadInput(f"`since` must be one of {', '.join(STATUSES)}.")
    return value


def optional_text(fields: dict[str, Any], name: str, limit: int) -> str | None:
    value = fields.get(name)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit or not storable(value):
        raise BadInput(f"`{name}` must be text of at most {limit} characters.")
    return value


async def form(request: web.Request) -> MultiDictProxy[str | bytes | bytearray | web.FileField]:
    """A urlencoded or multipart form; malformed ones are a 400, oversized ones a 413."""
    try:
        return await request.post()
    except web.HTTPException:
        raise  # 413 for a body over the limit
    except Exception:  # malformed multipart fails in many ways inside aiohttp
        raise BadInput("The form could not be read.") from None


async def fields(request: web.Request) -> dict[str, Any]:
    """A JSON object, or form fields; nothing else."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        return {key: value for key, value in (await form(request)).items()
                if isinstance(value, str)}
    raw = await request.read()
    try:
        data = json.loads(raw)
    except (ValueError, RecursionError):  # RecursionError: nesting deeper than any real body
        raise BadInput("The body must be a JSON object.") from None
    if not isinstance(data, dict):
        raise BadInput("The body must be a JSON object.")
    return data
