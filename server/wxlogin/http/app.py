"""The one app factory: every dependency injected, every resource in a paired lifecycle."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import replace
from datetime import timedelta

import aiohttp
import asyncpg
from aiohttp import web
from aiohttp_session import session_middleware

from ..clock import Clock
from ..errors import error_middleware
from ..login.codes import CodeDrawer
from ..login.notify import LISTENER, Hub
from ..login.operations import Login
from ..login.phones import PhoneBook
from ..login.steps import Steps
from ..logs import stamp_request_ids
from ..metrics import Metrics
from ..settings import App, Settings
from ..storage.db import PoolUnavailable, keep_session
from ..storage.migrations import migrate
from ..storage.secrets import cookie_secret
from ..storage.sessions import PgStorage
from ..storage.sweeper import sweep_forever
from ..wechat.client import WeChat, WeChatClient
from ..wechat.official_account import OfficialAccountClient
from ..wechat.sandbox import SandboxState, SandboxWeChat
from .keys import BASE, CLOCK, MAX_BODY, METRICS, SERVICES, SETTINGS, Services
from .limits import Buckets, Concurrency, Limits, Rate
from .middleware import body_limit, observe, security_headers, sessions
from .oidc import cors
from .routes import routes

log = logging.getLogger("wxlogin")


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
    database_url = settings.database_url
    if database_url is None:
        raise ValueError("create_app needs settings.database_url (the LISTEN connection uses it)")
    if base and (not base.startswith("/") or base.endswith("/")):
        raise ValueError(f"base must be empty or a path like /login, not {base!r}")
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
    if stand_in is not None and settings.oa is None:  # the sandbox plays an account too
        settings = replace(settings, oa=stand_in.state.official_account())
    api_base = settings.sandbox_api_base(base) if stand_in else settings.wechat_api_base
    if wechat is None and not apps:
        raise ValueError("create_app needs WeChat credentials or a WeChat implementation")

    app = web.Application(
        client_max_size=MAX_BODY,
        middlewares=[observe, security_headers, cors, error_middleware, body_limit, sessions],
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
                secret = await cookie_secret(
                    conn, settings.cookie_secret, settings.data_dir, clock.now()
                )
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
                db, clock, secret, ttl=settings.session_ttl,
                secure=settings.secure_cookies,
            )
            official = None
            if settings.oa is not None:  # the account's QR is drawn like a code, by its appid
                if http is None:
                    http = aiohttp.ClientSession(trust_env=False)
                official = OfficialAccountClient(
                    http=http, api_base=api_base, appid=settings.oa.appid,
                    secret=settings.oa.secret, pool=db, clock=clock, ttl=settings.scene_ttl,
                    observe=metrics.wechat_call,
                )
            drawing = {**clients, **({official.appid: official} if official else {})}
            primary = next(iter(clients))
            draws = settings.draw_appid
            app[SERVICES] = Services(
                pool=db, wechat=clients, primary_appid=primary,
                draw_appid=draws if draws is not None and draws in clients else primary, hub=hub,
                login=Login(
                    db, clock, hub, storage,
                    CodeDrawer(db, clock, drawing, drawn=lambda: metrics.step("drawn")),
                    counted=metrics.step, arrived=metrics.arrived,
                    registration=settings.registration,
                    phones=PhoneBook.for_secret(
                        settings.phone, apps[0].secret if apps else secret
                    ),
                ),
                storage=storage,
                steps=Steps(db, clock), session_middleware=session_middleware(storage),
                decoding=asyncio.Semaphore(2),
                metrics=metrics, official_account=official,
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
                asyncio.create_task(sweep_forever(
                    db, clock, sweep_every, swept, timedelta(days=settings.audit_days)
                )),
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
