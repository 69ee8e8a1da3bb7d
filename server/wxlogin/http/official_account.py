"""The official account's callback, `/wechat/oa` (WECHAT.md 11).

So far its URL check: the console's "server configuration" sends a GET with `signature`,
`timestamp`, `nonce` and `echostr`, and a server that knows the Token answers `echostr`
unchanged. Anything unsigned is refused with nothing done. Without an official account
configured the address does not exist.
"""

from __future__ import annotations

from aiohttp import web

from ..errors import BadSignature
from ..wechat.oa_crypto import signed
from .keys import SETTINGS

MAX_FIELD = 128


async def url_check(request: web.Request) -> web.Response:
    oa = request.app[SETTINGS].oa
    if oa is None:
        raise web.HTTPNotFound()
    query = request.query
    fields = [query.get(name, "") for name in ("signature", "timestamp", "nonce", "echostr")]
    given, timestamp, nonce, echostr = fields
    if not all(fields) or any(len(value) > MAX_FIELD or not value.isascii() for value in fields):
        raise BadSignature()
    if not signed(given, oa.token, timestamp, nonce):
        raise BadSignature()
    return web.Response(text=echostr, content_type="text/plain")
