"""The one app factory: every dependency injected, every resource in a paired lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping, MutableMapping
from dataclasses import dataclass

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler, Middleware
from aiohttp_session import SESSION_KEY, STORAGE_KEY, session_middleware

from .clock import Clock
from .codes import CodeDrawer
from .db import PoolUnavailable, keep_session
from .errors import error_middleware
from .limits import Buckets, Concurrency, Limits, Rate
from .logs import REQUEST_ID, REQUEST_ID_KEY, request_id, route_of, stamp_request_ids
from .metrics import Metrics
from .migrations import migrate
from .notify import LISTENER, Hub
from .sandbox import SandboxState, SandboxWeChat
from .sessions import PgStorage
from .settings import App, Settings, load_cookie_secret
from .steps import Steps
from .sweeper import sweep_forever
from .wechat import WeChat, WeChatClient

log = logging.getLogger("wxlogin")

MAX_BODY = 64 * 1024
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


@dataclass(frozen=True)
class Services:
    """What exists only while the app runs (made in `services_ctx`)."""

    pool: asyncpg.Pool
    wechat: Mapping[str, WeChat]
    primary_appid: str  # the mini program meant when a request names none
    draw_appid: str  # the mini program whose codes new scenes show
    hub: Hub
    storage: PgStorage
    drawer: CodeDrawer
    steps: Steps
    session_middleware: Middleware
    decoding: asyncio.Semaphore  # avatar decodes at a time
    limits: Limits
    metrics: Metrics


SETTINGS = web.AppKey("settings", Settings)
# The path the app is mounted under inside a host application ("" when it runs on its own):
# every URL it hands out, in JSON, HTML and the scripts, starts with it.
BASE = web.AppKey("base", str)
METRICS = web.AppKey("metrics", Metrics)
CLOCK = web.AppKey("clock", Clock)
SERVICES = web.AppKey("services", Services)


@web.middleware
async def sessions(request: web.Request, handler: Handler) -> web.StreamResponse:
    # aiohttp-session's middleware wants its storage at construction, and the storage exists
    # only once the pool does, so it is built in services_ctx and kept with the services.
    # A host application may run aiohttp-session too, under the same request keys: its
    # session is set aside while ours is in use, so neither saves the other's.
    theirs = {key: request.pop(key) for key in (SESSION_KEY, STORAGE_KEY) if key in request}
    try:
        return await request.app[SERVICES].session_middleware(request, handler)
    finally:
        for key in (SESSION_KEY, STORAGE_KEY):
            request.pop(key, None)
        request.update(theirs)


@web.middleware
async def body_limit(request: web.Request, handler: Handler) -> web.StreamResponse:
    # Reading the body enforces client_max_size (413) even where a handler ignores it; the
    # body is cached, so handlers read it again for free. A multipart body is parsed from the
    # stream, so it is left to the handler (which aiohttp bounds the same way) unless its
    # declared length already says too much.
    if request.content_type == "multipart/form-data":
        if (request.content_length or 0) > MAX_BODY:
            raise web.HTTPRequestEntityTooLarge(MAX_BODY, request.content_length or 0)
    elif request.body_exists:
        await request.read()
    return await handler(request)


# For everything but the HTML pages, which set their own (pages.CSP): nothing may run or load.
DEFAULT_CSP = "default-src 'none'; frame-ancestors 'none'; base-uri 'none'"


@web.middleware
async def observe(request: web.Request, handler: Handler) -> web.StreamResponse:
    """A request id for the logs and the answer; every answer counted by route and status."""
    rid = request[REQUEST_ID_KEY] = request_id(request)
    token = REQUEST_ID.set(rid)
    status = 500
    try:
        response = await handler(request)
        status = response.status
        response.headers["X-Request-Id"] = rid
        return response
    except web.HTTPException as exc:
        status = exc.status
        exc.headers["X-Request-Id"] = rid
        raise
    finally:
        REQUEST_ID.reset(token)
        method = request.method if request.method in METHODS else "other"  # bounded labels
        request.app[METRICS].requests.labels(method, route_of(request), str(status)).inc()


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    """On every answer, errors and redirects included."""
    try:
        response = await handler(request)
    except web.HTTPException as exc:  # redirects (errors are answers by now)
        add_security_headers(request, exc.headers)
        raise
    add_security_headers(request, response.headers)
    return response


def add_security_headers(request: web.Request, headers: MutableMapping[str, str]) -> None:
    headers.setdefault("Content-Security-Policy", DEFAULT_CSP)
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "same-origin")
    headers.setdefault("X-Frame-Options", "DENY")  # frame-ancestors, for older browsers
    if request.app[SETTINGS].secure_cookies:  # served over https
        headers.setdefault("Strict-Transport-Security", "max-age=31536000")
    path = request.path[len(request.app[BASE]):]
    if path.startswith("/api/") or path == "/healthz":
        headers.setdefault("Cache-Control", "no-store")  # answers are per browser


def create_app(
    settings: Settings,
    *,
    clock: Clock,
    wechat: Mapping[str, WeChat] | None = None,
    pool: asyncpg.Pool | Callable[[], asyncpg.Pool] | None = None,
    recheck_every: float = 5.0,
    sweep_every: float = 60.0,
    base: str = "",
) -> web.Application:
    from .http import routes  # the handlers import the keys above

    database_url = settings.database_url
    if database_url is None:
        raise ValueError("create_app needs settings.database_url (the LISTEN connection uses it)")
    if base and (not base.startswith("/") or base.endswith("/")):
        raise ValueError(f"base must be empty or a path like /login, not {base!r}")
    cookie_secret = load_cookie_secret(settings)
    # Sandbox mode: the stand-in is served by this app, and the ordinary client reaches it over
    # loopback HTTP; with credentials configured it does not exist at all.
    stand_in = None
    if settings.sandbox and wechat is None:
        stand_in = SandboxWeChat(
            SandboxState.load(settings.data_dir), settings.public_url + base, clock
        )
    apps = (
        (App(stand_in.state.appid, stand_in.state.secret),) if stand_in else settings.all_apps
    )
    api_base = settings.sandbox_api_base(base) if stand_in else settings.wechat_api_base
    if wechat is None and not apps:
        raise ValueError("create_app needs WeChat credentials or a WeChat implementation")

    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[observe, security_headers, error_middleware, body_limit, sessions],
    )
    app[SETTINGS] = settings
    app[CLOCK] = clock
    app[BASE] = base
    stamp_request_ids()
    metrics = app[METRICS] = Metrics()

    async def services_ctx(app: web.Application) -> AsyncIterator[None]:
        # A pool given as a function is a host's, which exists only once the host has started.
        owned = pool is None
        if pool is None:
            try:
                db = await asyncpg.create_pool(
                    # Opened whole at start and kept: a rise in traffic (after a quiet night,
                    # too) must not wait for new connections, which cost both sides CPU.
                    database_url, min_size=settings.pool_size, max_size=settings.pool_size,
                    max_inactive_connection_lifetime=0, command_timeout=10, reset=keep_session,
                )
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                raise PoolUnavailable(
                    f"cannot open the database pool of {settings.pool_size} connections"
                    f" ({type(exc).__name__}: {exc}). Check WXLOGIN_DATABASE_URL, and that"
                    " PostgreSQL's max_connections covers every process's pool plus one each"
                    " (WXLOGIN_DB_POOL_SIZE; docs/deploy/README.md, section 12)"
                ) from exc
        else:
            db = pool() if callable(pool) else pool
        http: aiohttp.ClientSession | None = None
        tasks: list[asyncio.Task[None]] = []
        try:
            async with db.acquire() as conn:
                await migrate(conn)
                await conn.reset()  # whatever a migration SET, the pool's no-op reset would keep
            clients: Mapping[str, WeChat]
            if wechat is not None:
                clients = wechat
            else:
                http = aiohttp.ClientSession(trust_env=False)
                clients = {
                    app_.appid: WeChatClient(
                        http=http, api_base=api_base, appid=app_.appid, secret=app_.secret,
                        pool=db, clock=clock, page=settings.page,
                        env_version=settings.env_version, observe=metrics.wechat_call,
                    )
                    for app_ in apps
                }
            # Named, so that an operator (and a test) can tell it in pg_stat_activity.
            listener = {"application_name": LISTENER}
            hub = Hub(
                lambda: asyncpg.connect(database_url, server_settings=listener),
                clock, recheck_every=recheck_every,
            )
            storage = PgStorage(
                db, clock, cookie_secret, ttl=settings.session_ttl,
                secure=settings.secure_cookies,
            )
            primary = next(iter(clients))
            draws = settings.draw_appid
            app[SERVICES] = Services(
                pool=db, wechat=clients, primary_appid=primary,
                draw_appid=draws if draws is not None and draws in clients else primary, hub=hub,
                storage=storage,
                drawer=CodeDrawer(db, clock, dict(clients), drawn=lambda: metrics.step("drawn")),
                steps=Steps(db, clock), session_middleware=session_middleware(storage),
                decoding=asyncio.Semaphore(2),
                metrics=metrics,
                limits=Limits(
                    scenes_by_ip=Buckets(clock, Rate(settings.scenes_per_minute)),
                    # A browser's own ceiling, below its address's (which a NAT shares).
                    scenes_by_session=Buckets(clock, Rate(min(settings.scenes_per_minute, 10))),
                    steps_by_ip=Buckets(clock, Rate(settings.steps_per_minute)),
                    polls_by_session=Concurrency(settings.polls_per_session),
                    polls_by_ip=Concurrency(settings.polls_per_ip),
                ),
            )
            metrics.watch(lambda: hub.waiting, db.get_size, db.get_idle_size)

            def swept(deleted: dict[str, int]) -> None:
                for table, count in deleted.items():
                    if table == "expired":
                        metrics.funnel.labels("expired").inc(count)
                    else:
                        metrics.swept.labels(table).inc(count)

            tasks = [
                asyncio.create_task(hub.listen()),
                asyncio.create_task(sweep_forever(db, clock, sweep_every, swept)),
                asyncio.create_task(metrics.sample_loop_lag()),
            ]
            yield
        finally:
            for task in tasks:
                task.cancel()
            for task in tasks:
                with contextlib.suppress(asyncio.CancelledError):
                    await task
            if http is not None:
                await http.close()
            if owned:
                await db.close()

    async def answer_waiting_polls(app: web.Application) -> None:
        # Shutting down (SIGTERM): the listening socket is closed; every held long-poll now
        # answers with its scene's current status, so browsers poll again elsewhere at once
        # instead of being cut when the grace period ends.
        if SERVICES in app:
            app[SERVICES].hub.close()

    app.cleanup_ctx.append(services_ctx)
    app.on_shutdown.append(answer_waiting_polls)
    app.add_routes(routes(sandbox=stand_in is not None))
    if stand_in is not None:
        app.add_routes(stand_in.routes())
    return app
