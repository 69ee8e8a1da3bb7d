"""Fixtures: one real PostgreSQL per run, the WeChat stand-in over HTTP, browsers with cookie jars.

The database is the embedded PostgreSQL (or WXLOGIN_TEST_DATABASE_URL), migrated once and emptied
between tests from the catalogue. A missing database fails the run; nothing is skipped.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import CookieJar, web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import Browser as Chromium
from playwright.async_api import async_playwright

from tests.fakewechat import APPID, SECRET, FakeWeChat
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage.embedded_pg import EmbeddedPostgres
from wxlogin.storage.migrations import migrate

COOKIE_SECRET = "cookie-secret-canary-0123456789abcdef0123"

Browser = TestClient[web.Request, web.Application]


async def _migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def pg_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    url = os.environ.get("WXLOGIN_TEST_DATABASE_URL")
    embedded = None
    if not url:
        embedded = EmbeddedPostgres(Path(tmp_path_factory.mktemp("pg")))
        url = embedded.start()
    asyncio.run(_migrate(url))
    yield url
    if embedded is not None:
        embedded.stop()


@pytest.fixture(autouse=True)
async def clean_db(pg_url: str) -> AsyncIterator[None]:
    conn = await asyncpg.connect(pg_url)
    try:
        tables = await conn.fetch(
            # Ours, and public ones of a host application (examples/blog's comments).
            "SELECT quote_ident(schemaname) || '.' || quote_ident(tablename) AS name"
            " FROM pg_tables WHERE schemaname IN ('wxlogin', 'public')"
            " AND (schemaname, tablename) <> ('wxlogin', 'schema_migrations')"
        )
        if tables:
            names = ", ".join(row["name"] for row in tables)
            await conn.execute(f"TRUNCATE {names} RESTART IDENTITY CASCADE")
    finally:
        await conn.close()
    yield


@pytest.fixture
async def db(pg_url: str) -> AsyncIterator[asyncpg.Connection[asyncpg.Record]]:
    """For invariants that cannot be seen from outside: read-only by convention."""
    conn = await asyncpg.connect(pg_url)
    yield conn
    await conn.close()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def fw(aiohttp_server: Any) -> FakeWeChat:
    fake = FakeWeChat()
    server = await aiohttp_server(fake.app())
    fake.url = str(server.make_url("")).rstrip("/")
    return fake


@pytest.fixture
def settings(pg_url: str, fw: FakeWeChat, tmp_path: Path) -> Settings:
    return Settings(
        database_url=pg_url,
        data_dir=tmp_path / "data",
        appid=APPID,
        secret=SECRET,
        wechat_api_base=fw.url,
        cookie_secret=COOKIE_SECRET,
        public_url="http://127.0.0.1:8080",
        # Every test client is 127.0.0.1: the limits have tests of their own (test_limits.py).
        scenes_per_minute=0, steps_per_minute=0, polls_per_session=0, polls_per_ip=0,
        draw_budget=0,
    )


MakeServer = Callable[..., Awaitable[TestServer]]
MakeBrowser = Callable[..., Awaitable[Browser]]


@pytest.fixture
def make_server(
    aiohttp_server: Any, settings: Settings, clock: FakeClock
) -> MakeServer:
    async def make(
        *, listen: bool = False, recheck_every: float = 0.5, **changes: Any
    ) -> TestServer:
        """`listen=True`: on a port known in advance, which WXLOGIN_PUBLIC_URL then names
        (a real browser sends that origin)."""
        port = free_port() if listen else None
        if port is not None:
            changes.setdefault("public_url", f"http://127.0.0.1:{port}")
        app = create_app(replace(settings, **changes), clock=clock, recheck_every=recheck_every)
        server: TestServer = await aiohttp_server(app, port=port)
        return server

    return make


@pytest.fixture
async def server(make_server: MakeServer) -> TestServer:
    return await make_server()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@pytest.fixture
async def sandbox_server(
    aiohttp_server: Any, settings: Settings, clock: FakeClock
) -> TestServer:
    """Sandbox mode: no credentials; the app's own stand-in answers WeChat's API over loopback,
    so the server must listen on the port its settings name."""
    port = free_port()
    sandboxed = replace(settings, appid=None, secret=None, port=port,
                        public_url=f"http://127.0.0.1:{port}")
    server: TestServer = await aiohttp_server(
        create_app(sandboxed, clock=clock, recheck_every=0.5), port=port
    )
    return server


@pytest.fixture
def browser(aiohttp_client: Any, server: TestServer) -> MakeBrowser:
    """A new browser (its own cookie jar) on the test server each call."""

    async def make(target: TestServer | None = None, **kwargs: Any) -> Browser:
        jar = kwargs.pop("cookie_jar", None) or CookieJar(unsafe=True)
        client: Browser = await aiohttp_client(target or server, cookie_jar=jar, **kwargs)
        return client

    return make


# The flags stop Chromium's own outbound connections, which this closed network refuses; the
# resolver rule stops the name lookups (update.googleapis.com, …) the others leave.
FLAGS = [
    "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic",
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1, EXCLUDE localhost",
]


def chromium_path() -> str:
    found = os.environ.get("WXLOGIN_CHROMIUM") or shutil.which("chromium")
    assert found, "Chromium is missing: ./scripts/test installs Debian's `chromium` package"
    return found


@pytest.fixture
async def chromium() -> AsyncIterator[Chromium]:
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(executable_path=chromium_path(), args=FLAGS)
        yield browser
        await browser.close()
