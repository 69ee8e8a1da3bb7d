"""`wxlogin doctor`: is this installation able to log people in? It checks the database, each
mini program's credentials (a fresh access token from WeChat) and draws one code for the
configured page, and says in plain words what to change when something fails.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Iterator
from contextlib import contextmanager

import aiohttp
import asyncpg

from ..clock import SystemClock
from ..errors import ApiError, PhoneCodeRejected, WeChatError
from ..settings import Settings
from ..storage.migrations import SCHEMA, discover
from ..wechat.client import LinkRefused, WeChatClient

OK, FAIL = "ok  ", "FAIL"


@contextmanager
def wechat_explanations() -> Iterator[list[str]]:
    """What the WeChat client logs while a check runs: its explanations (errcode, hint)."""
    heard: list[str] = []

    class Collect(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if record.levelno >= logging.WARNING:
                heard.append(record.getMessage())

    handler = Collect()
    logger = logging.getLogger("wxlogin.wechat")
    logger.addHandler(handler)
    try:
        yield heard
    finally:
        logger.removeHandler(handler)


async def check_database(url: str, out: list[str]) -> tuple[asyncpg.Pool | None, bool]:
    """The pool, and whether the schema is up to date."""
    try:
        pool = await asyncpg.create_pool(url, min_size=1, max_size=2, timeout=5)
    except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
        out.append(f"{FAIL} database: cannot connect ({type(exc).__name__}: {exc}). "
                   "Check WXLOGIN_DATABASE_URL, that PostgreSQL runs, and the password.")
        return None, False
    async with pool.acquire() as conn:
        version = await conn.fetchval("SHOW server_version")
        exists = await conn.fetchval("SELECT to_regclass($1) IS NOT NULL",
                                     f"{SCHEMA}.schema_migrations")
        done = set()
        if exists:
            done = {r["version"] for r in await conn.fetch(
                f"SELECT version FROM {SCHEMA}.schema_migrations")}
    missing = [m.name for m in discover() if m.version not in done]
    state = ("migrations up to date" if not missing else
             f"{len(missing)} migration(s) to apply ({', '.join(missing)}): `wxlogin serve` "
             "applies them at start, or run `wxlogin migrate`")
    out.append(f"{OK} database: PostgreSQL {version}; {state}")
    return pool, not missing


async def check_app(client: WeChatClient, role: str, settings: Settings, out: list[str]) -> bool:
    """The credentials, then one code drawn; stops at the first that fails."""

    async def credentials() -> str:
        lifetime = await client.check_credentials()
        return f"WeChat gave an access token valid for {lifetime} s"

    async def code() -> str:
        image = await client.draw_code("doctor" + secrets.token_hex(8))
        return (f"drew a {len(image.data)}-byte {image.content_type} for page {settings.page} "
                f"({settings.env_version} build)")

    async def phones() -> str:
        # A code nobody minted: "bad code" (40029) means the API is open to this mini program;
        # 48001 that it is not (individual or unverified), which WeChat's button shows as 102.
        try:
            await client.phone_number("wxlogin-doctor-" + secrets.token_hex(8))
        except PhoneCodeRejected:
            return (f"getuserphonenumber is open to this mini program (WXLOGIN_PHONE="
                    f"{settings.phone}); the button also needs a privacy guide that covers "
                    "phone numbers (errno 104 without one)")
        return "getuserphonenumber answered a made-up code (unexpected)"

    async def link() -> str:
        try:
            made = await client.mobile_link(settings.mobile_link, "doctor" + secrets.token_hex(8))
        except LinkRefused as refused:
            raise WeChatError(
                f"WeChat makes no {settings.mobile_link} for this mini program (errcode "
                f"{refused.errcode}: 40002 an individual mini program, 85079 not published, "
                "else a quota); phones then get \"save the code\" instead"
            ) from None
        return f"made a {settings.mobile_link} ({made.split(':', 1)[0]}://…)"

    checks = [("credentials", credentials), ("code", code)]
    if settings.phone != "off":
        checks.append(("phone numbers", phones))
    if settings.mobile_link != "plain":
        checks.append(("phone-browser link", link))
    for name, check in checks:
        with wechat_explanations() as heard:
            try:
                out.append(f"{OK} {client.appid} ({role}) {name}: {await check()}")
            except ApiError as error:
                out.append(f"{FAIL} {client.appid} ({role}) {name}: {error.message}")
                out.extend(f"       {line}" for line in heard)
                return False
    return True


async def run(settings: Settings) -> tuple[bool, list[str]]:
    """(all fine, the report's lines). `settings.database_url` must be set."""
    assert settings.database_url is not None
    out: list[str] = []
    pool, current = await check_database(settings.database_url, out)
    if settings.sandbox:
        out.append(f"{OK} sandbox mode: no WeChat credentials to check (set WXLOGIN_APPID and "
                   "WXLOGIN_SECRET for your mini program)")
        if pool is not None:
            await pool.close()
        return pool is not None, out
    if pool is None or not current:
        out.append(f"{FAIL} WeChat: not checked before the database is ready (the access token "
                   "is kept there)")
        if pool is not None:
            await pool.close()
        return False, out
    fine = True
    try:
        async with aiohttp.ClientSession(trust_env=False) as http:
            for app in settings.all_apps:
                role = "primary" if app.appid == settings.appid else "standby"
                if app.appid == (settings.draw_appid or settings.appid):
                    role += ", draws the codes"
                client = WeChatClient(
                    http=http, api_base=settings.wechat_api_base, appid=app.appid,
                    secret=app.secret, pool=pool, clock=SystemClock(), page=settings.page,
                    env_version=settings.env_version,
                )
                fine = await check_app(client, role, settings, out) and fine
    finally:
        await pool.close()
    return fine, out
