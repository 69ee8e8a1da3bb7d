"""`wxlogin`: serve, migrate."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import logging
import re
import resource
import socket
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace

import asyncpg
from aiohttp import web

from .. import logs
from ..clock import SystemClock
from ..errors import ApiError
from ..http.app import create_app
from ..http.keys import SERVICES
from ..settings import Settings, SettingsError
from ..storage import signing
from ..storage.db import PoolUnavailable, acquire
from ..storage.embedded_pg import EmbeddedPostgres, EmbeddedPostgresError
from ..storage.migrations import migrate
from ..storage.queries import GROUP
from ..storage.secrets import SecretUnreadable, cookie_secret
from . import clients, doctor, invites, keys, users
from .workers import listen, supervise

log = logging.getLogger("wxlogin")


def _settings() -> Settings:
    try:
        return Settings.from_env()
    except SettingsError as error:
        print("wxlogin: the configuration has problems:", file=sys.stderr)
        for problem in error.problems:
            print(f"  - {problem}", file=sys.stderr)
        raise SystemExit(2) from None


@contextmanager
def database(settings: Settings) -> Iterator[Settings]:
    """The settings with a database URL: the given one, or the embedded PostgreSQL's,
    which is stopped again on the way out (SIGINT and SIGTERM included)."""
    if settings.database_url:
        yield settings
        return
    embedded = EmbeddedPostgres(settings.data_dir)
    try:
        url = embedded.start()
    except EmbeddedPostgresError as error:
        print(f"wxlogin: could not start the embedded PostgreSQL: {error}", file=sys.stderr)
        raise SystemExit(1) from None
    log.info("embedded PostgreSQL running in %s", embedded.pgdata)
    try:
        yield settings.with_database_url(url)
    finally:
        embedded.stop()


SANDBOX_BANNER = """\
================================================================================
  SANDBOX MODE: no WeChat account needed, and nothing here is real.
  Open {url}/ in a browser, then scan the code with your phone's camera
  (or follow the link under it) and confirm as a test user.
  To use your real mini program, set WXLOGIN_APPID and WXLOGIN_SECRET.
================================================================================"""


def more_open_files() -> int:
    """Raise this process's open-file limit to the most allowed; returns the new limit.

    Every waiting browser is an open socket, and the usual soft limit (1,024) would refuse
    connections long before memory or CPU run short.
    """
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != resource.RLIM_INFINITY and (hard == resource.RLIM_INFINITY or soft < hard):
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return 1 << 30 if soft == resource.RLIM_INFINITY else soft


async def freeze_startup(_app: web.Application) -> None:
    """Start-up's objects (modules, the app, its pool and clients) live as long as the process:
    out of the collector's sight they are not walked again by every full pass, which at 10,000
    waiting polls stalls the loop."""
    gc.collect()
    gc.freeze()


async def make_signing_keys(app: web.Application) -> None:
    """The OpenID Connect signing keys exist from the first start, before any relying party
    asks (the first process makes them; the others find them). Made on first need otherwise."""
    try:
        async with acquire(app[SERVICES].pool) as conn:
            await signing.ensure(conn, SystemClock().now())
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        log.warning("signing keys not made at start (%s); they will be on first need", exc)


def run(
    app: web.Application, *, host: str | None = None, port: int | None = None,
    sock: socket.socket | None = None,
) -> None:
    app.on_startup.append(make_signing_keys)
    app.on_startup.append(freeze_startup)  # after the pool, the hub and the clients exist
    try:
        web.run_app(
            app, host=host, port=port, sock=sock, handler_cancellation=True, print=None,
            access_log=logging.getLogger("wxlogin.access"), access_log_class=logs.AccessLogger,
            # Waiting polls are answered at once on SIGTERM; this bounds everything else.
            shutdown_timeout=5.0,
        )
    except (PoolUnavailable, SecretUnreadable) as exc:
        print(f"wxlogin: {exc}", file=sys.stderr)
        raise SystemExit(1) from None


def serve(settings: Settings, workers: int = 1) -> None:
    if settings.sandbox:
        if workers > 1:
            print("wxlogin: sandbox mode runs in one process (its stand-in keeps the codes it "
                  "issues in memory); drop --workers", file=sys.stderr)
            raise SystemExit(2)
        print(SANDBOX_BANNER.format(url=settings.public_url), flush=True)
    files = more_open_files()
    if files < 4096:
        print(f"wxlogin: only {files} open files allowed, so at most about that many browsers "
              "can wait at once; raise it (LimitNOFILE= in systemd)", file=sys.stderr)
    with database(settings) as ready:
        where = f"listening on {ready.host}:{ready.port}"
        if workers == 1:
            print(f"wxlogin: serving {ready.public_url} ({where})", flush=True)
            run(create_app(ready, clock=SystemClock()), host=ready.host, port=ready.port)
            return
        # Once, before they all start: the migrations, and the cookie secret (so that each
        # worker does not check, and warn about, an old data-dir key again).
        try:
            secret = asyncio.run(_prepare(ready))
        except SecretUnreadable as exc:
            print(f"wxlogin: {exc}", file=sys.stderr)
            raise SystemExit(1) from None
        ready = replace(ready, cookie_secret=secret)
        sock = listen(ready.host, ready.port)
        print(f"wxlogin: serving {ready.public_url} ({where}, {workers} workers)", flush=True)
        status = supervise(workers, lambda _index: run(
            create_app(ready, clock=SystemClock()), sock=sock))
        sock.close()
    if status:
        raise SystemExit(status)


async def _prepare(settings: Settings) -> str:
    conn = await asyncpg.connect(settings.database_url)
    try:
        await migrate(conn)
        await signing.ensure(conn, SystemClock().now())  # once, not by every worker at once
        return await cookie_secret(
            conn, settings.cookie_secret, settings.data_dir, SystemClock().now()
        )
    finally:
        await conn.close()


async def _migrate(url: str) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        return await migrate(conn)
    finally:
        await conn.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="wxlogin", description="Scan-with-WeChat login server")
    commands = parser.add_subparsers(dest="command", required=True)
    serving = commands.add_parser("serve", help="serve in the foreground until SIGINT/SIGTERM")
    serving.add_argument(
        "--workers", type=int, default=1, metavar="N",
        help="processes answering on the one port (default 1; e.g. one per CPU core)",
    )
    commands.add_parser("migrate", help="apply database migrations, then exit")
    commands.add_parser(
        "doctor", help="check the database, the WeChat credentials and drawing a code"
    )
    signing_keys = commands.add_parser(
        "keys", help="list the OpenID Connect signing keys, or rotate them"
    )
    signing_keys.add_argument("action", choices=("list", "rotate"))
    signing_keys.add_argument(
        "--force", action="store_true",
        help="rotate even if the next key was published less than an hour ago",
    )
    oidc_clients = commands.add_parser(
        "clients", help="OpenID Connect clients kept in the database: add, list, remove, "
        "rotate-secret (a secret is printed once)",
    )
    oidc_clients.add_argument("action", choices=("add", "list", "remove", "rotate-secret"))
    oidc_clients.add_argument("name", nargs="?", help="add: the site's name; else: client_id")
    oidc_clients.add_argument("--redirect-uri", action="append", metavar="URI")
    oidc_clients.add_argument("--post-logout-redirect-uri", action="append", metavar="URI")
    oidc_clients.add_argument("--public", action="store_true",
                              help="no secret; the client must use PKCE")
    oidc_clients.add_argument("--email-substitute", action="store_true",
                              help="give <sub>@<host>.invalid to sites that demand an email")
    oidc_clients.add_argument("--allowed-group", action="append", metavar="GROUP")
    owner = commands.add_parser(
        "users", help="list, show, approve, disable or enable users; their groups"
    )
    owner.add_argument("action",
                       choices=("list", "show", "approve", "disable", "enable", "groups"))
    owner.add_argument("user_id", nargs="?", type=int)
    owner.add_argument("change", nargs="?", choices=("add", "remove"),
                       help="groups: add or remove (absent: list them)")
    owner.add_argument("group", nargs="?", help="groups: the group's name")
    owner.add_argument("--json", action="store_true", help="list: as JSON")
    inviting = commands.add_parser(
        "invite", help="print an invitation link (the next login in the browser that opens it "
        "gets an approved account, with the groups); or list or revoke invitations",
    )
    inviting.add_argument("--group", action="append", metavar="GROUP", default=[],
                          help="a group the account joins (repeatable; e.g. admin)")
    inviting.add_argument("--uses", type=int, default=1, metavar="N", help="default 1")
    inviting.add_argument("--days", type=float, default=7, metavar="D", help="default 7")
    inviting.add_argument("--note", default="", metavar="TEXT", help="for your own memory")
    inviting.add_argument("--prefix", default="", metavar="PATH",
                          help="where wxlogin is mounted in your aiohttp app (e.g. /wxlogin); "
                          "empty when it is served on its own")
    inviting.add_argument("--list", action="store_true", help="list the invitations")
    inviting.add_argument("--revoke", type=int, metavar="ID", help="revoke an invitation")
    auditing = commands.add_parser(
        "audit", help="the owner's actions and the refused logins, newest first"
    )
    auditing.add_argument("--limit", type=int, default=100, metavar="N")
    auditing.add_argument("--json", action="store_true")
    args = parser.parse_args(argv)
    if args.command == "invite":
        if not 1 <= args.uses <= 100_000:
            parser.error("--uses must be 1 to 100000")
        if not 0 < args.days <= 3660:
            parser.error("--days must be more than 0 and at most 3660")
        if any(not GROUP.fullmatch(g) for g in args.group):
            parser.error("a group's name is 1 to 64 letters, digits, '_', '.' or '-'")
        if len(args.note) > 200:
            parser.error("--note is at most 200 characters")
        if args.prefix and not re.fullmatch(r"(/[A-Za-z0-9._~-]+)+", args.prefix):
            parser.error("--prefix is a path such as /wxlogin")
    if args.command == "clients" and args.action != "list" and not args.name:
        parser.error(f"wxlogin clients {args.action} needs a "
                     + ("name" if args.action == "add" else "client_id"))
    if args.command == "users" and args.action != "list" and args.user_id is None:
        parser.error(f"wxlogin users {args.action} needs a user id")

    settings = _settings()
    # aiohttp-session keeps its session under a string request key, as its API requires.
    for module in ("aiohttp_session", "wxlogin.storage.sessions"):
        warnings.filterwarnings("ignore", category=web.NotAppKeyWarning, module=module)
    logs.configure(settings.log_level, settings.log_format)
    if args.command == "serve":
        if not 1 <= args.workers <= 64:
            parser.error("--workers must be 1 to 64")
        serve(settings, args.workers)
    elif args.command == "doctor":
        with database(settings) as ready:
            fine, lines = asyncio.run(doctor.run(ready))
        print("\n".join(lines))
        print("all good: this server can log people in" if fine else
              "something above needs fixing")
        raise SystemExit(0 if fine else 1)
    elif args.command == "clients":
        with database(settings) as ready:
            assert ready.database_url is not None
            try:
                out = asyncio.run(clients.run(
                    ready.database_url, args.action, args, SystemClock().now()
                ))
            except clients.ClientProblem as problem:
                print(f"wxlogin: {problem}", file=sys.stderr)
                raise SystemExit(1) from None
        print(out)
    elif args.command == "keys":
        with database(settings) as ready:
            assert ready.database_url is not None
            lines = asyncio.run(keys.run(
                ready.database_url, args.action, SystemClock().now(), force=args.force
            ))
        print("\n".join(lines))
    elif args.command == "invite":
        with database(settings) as ready:
            assert ready.database_url is not None
            try:
                lines = asyncio.run(invites.run_invite(
                    ready.database_url, settings.public_url, prefix=args.prefix,
                    groups=args.group, uses=args.uses,
                    days=args.days, note=args.note, revoke=args.revoke, listing=args.list,
                    now=SystemClock().now(),
                ))
            except ApiError as error:
                print(f"wxlogin: {error.message}", file=sys.stderr)
                raise SystemExit(1) from None
        print("\n".join(lines))
    elif args.command == "audit":
        with database(settings) as ready:
            assert ready.database_url is not None
            lines = asyncio.run(invites.run_audit(
                ready.database_url, limit=max(1, args.limit), as_json=args.json
            ))
        print("\n".join(lines))
    elif args.command == "users":
        with database(settings) as ready:
            assert ready.database_url is not None
            try:
                lines = asyncio.run(users.run(
                    ready.database_url, args.action, args.user_id, as_json=args.json,
                    change=args.change, group=args.group, now=SystemClock().now(),
                ))
            except users.BadGroup:
                print("wxlogin: a group's name is 1 to 64 letters, digits, '_', '.' or '-'",
                      file=sys.stderr)
                raise SystemExit(2) from None
            except users.NoSuchUser:
                print(f"wxlogin: there is no user {args.user_id}", file=sys.stderr)
                raise SystemExit(1) from None
        print("\n".join(lines))
    else:
        with database(settings) as ready:
            assert ready.database_url is not None
            applied = asyncio.run(_migrate(ready.database_url))
        print("applied: " + ", ".join(applied) if applied else "the database is up to date")
