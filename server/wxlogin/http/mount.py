"""The login inside an existing aiohttp application.

    from wxlogin import current_user, login_required, mount

    mount(app, "/wxlogin", settings=Settings.from_env(), pool=DB)  # DB: the host's pool key

The whole server (API, hosted login page, static files, the sandbox when it is on) then answers
under the prefix, on the host's event loop and port. The session cookie is the site's (path
"/"), so the host's own handlers learn who is logged in with `await current_user(request)` or
guard themselves with `@login_required`.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable
from urllib.parse import urlencode, urlsplit

import asyncpg
from aiohttp import web

from ..clock import Clock, SystemClock
from ..errors import NotLoggedIn
from ..login import operations
from ..settings import Settings
from ..storage import queries
from .app import create_app
from .keys import BASE, SERVICES

LOGIN = web.AppKey("wxlogin_app", web.Application)
USER: web.RequestKey[queries.User | None] = web.RequestKey("wxlogin_user")

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def mount(
    host: web.Application,
    prefix: str = "/wxlogin",
    *,
    settings: Settings | None = None,
    pool: asyncpg.Pool | web.AppKey[asyncpg.Pool] | None = None,
    clock: Clock | None = None,
) -> web.Application:
    """Serve the login under `prefix` inside `host`; returns the mounted application.

    `pool` shares the host's connection pool: the pool itself, or the key under which the
    host's own startup (a cleanup context) puts it. Unset, the login opens a pool of its own.
    Either way `settings.database_url` is needed, for the one connection that LISTENs."""
    settings = settings if settings is not None else Settings.from_env()
    if settings.database_url is None:
        raise ValueError("mount needs settings.database_url (e.g. WXLOGIN_DATABASE_URL)")
    shared: asyncpg.Pool | Callable[[], asyncpg.Pool] | None
    if isinstance(pool, web.AppKey):
        key = pool
        # The host's cleanup contexts run before any sub-application starts.
        shared = lambda: host[key]  # noqa: E731
    else:
        shared = pool
    login = create_app(settings, clock=clock or SystemClock(), pool=shared, base=prefix)
    host.add_subapp(prefix, login)
    host[LOGIN] = login
    return login


async def current_user(request: web.Request) -> queries.User | None:
    """The logged-in visitor of this request, or None (also for a disabled user)."""
    if USER in request:
        return request[USER]
    services = request.config_dict[LOGIN][SERVICES]
    session = await services.storage.load_session(request)
    user = await operations.active_user(services.login, session.get("user_id"))
    request[USER] = user
    return user


def login_url(request: web.Request, next_path: str) -> str:
    prefix = request.config_dict[LOGIN][BASE]
    return f"{prefix}/login?" + urlencode({"next": next_path})


def login_required(handler: Handler) -> Handler:
    """Run `handler` for a logged-in visitor only. A browser is sent to the login page, which
    brings it back; a script asking for JSON gets 401 `not_logged_in`."""

    @functools.wraps(handler)
    async def guarded(request: web.Request) -> web.StreamResponse:
        if await current_user(request) is not None:
            return await handler(request)
        if "text/html" not in request.headers.get("Accept", ""):
            return NotLoggedIn().response()
        if request.method in ("GET", "HEAD"):
            raise web.HTTPFound(login_url(request, request.path_qs))
        # A form posted by someone logged out: back to the page the form was on, afterwards.
        referer = urlsplit(request.headers.get("Referer", ""))
        same_site = referer.netloc == request.host and referer.path.startswith("/")
        back = referer._replace(scheme="", netloc="", fragment="").geturl() if same_site else "/"
        raise web.HTTPSeeOther(login_url(request, back))

    return guarded
