"""Operations: health, and forward auth for nginx `auth_request` and friends."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..errors import BadInput, DatabaseUnavailable, NotInGroup, NotLoggedIn
from ..storage.queries import GROUP
from .browser import current_user
from .keys import METRICS, SERVICES


async def healthz(request: web.Request) -> web.Response:
    try:
        async with request.app[SERVICES].pool.acquire(timeout=2) as conn:
            await conn.fetchval("SELECT 1", timeout=2)
    except Exception:  # any failure to reach the database is the answer, not an error
        raise DatabaseUnavailable() from None
    return web.json_response({"ok": True})


async def metrics(request: web.Request) -> web.Response:
    """Prometheus's text format. Not for the public: the documented proxy setups do not route
    /metrics, so scrape the server's own address."""
    return request.app[METRICS].exposition()


async def forward_auth(request: web.Request) -> web.Response:
    """200 with the user in headers for a logged-in session, else 401; with `?group=G`, 403 for
    a user not in G. Identity comes only from the session; the proxy must overwrite any
    X-Wxlogin-* headers a client sends."""
    wanted = request.query.get("group")
    if wanted is not None and not GROUP.fullmatch(wanted):
        raise BadInput("`group` must be 1 to 64 letters, digits, '_', '.' or '-'.")
    user = await current_user(request)
    if user is None:
        raise NotLoggedIn()
    if wanted is not None and wanted not in user.groups:
        raise NotInGroup()
    return web.Response(
        status=200,
        headers={
            "X-Wxlogin-User-Id": str(user.id),
            "X-Wxlogin-Nickname": quote(user.nickname, safe=""),
            "X-Wxlogin-Groups": ",".join(user.groups),
        },
    )
