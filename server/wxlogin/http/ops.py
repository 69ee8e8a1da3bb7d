"""Operations: health, and forward auth for nginx `auth_request` and friends."""

from __future__ import annotations

from urllib.parse import quote

from aiohttp import web

from ..errors import DatabaseUnavailable, NotLoggedIn
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
    """200 with the user in headers for a logged-in session, else 401. Identity comes only from
    the session; the proxy must overwrite any X-Wxlogin-* headers a client sends."""
    user = await current_user(request)
    if user is None:
        raise NotLoggedIn()
    return web.Response(
        status=200,
        headers={
            "X-Wxlogin-User-Id": str(user.id),
            "X-Wxlogin-Nickname": quote(user.nickname, safe=""),
        },
    )
