"""PostgreSQL going away and coming back (R4, R17): clear 503s, then recovery without a restart."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import MakeBrowser
from tests.fakewechat import FakeWeChat
from tests.helpers import me, new_scene, poll, push
from wxlogin.clock import FakeClock
from wxlogin.http.app import create_app
from wxlogin.settings import Settings
from wxlogin.storage.embedded_pg import EmbeddedPostgres


@pytest.fixture
def own_postgres(tmp_path: Path) -> Iterator[EmbeddedPostgres]:
    pg = EmbeddedPostgres(tmp_path / "outage")
    pg.start()
    yield pg
    pg.stop()


async def until(predicate: Any, seconds: float = 15) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await predicate():
            return
        await asyncio.sleep(0.1)
    raise AssertionError("condition not reached in time")


async def test_a_database_restart_is_survived(
    own_postgres: EmbeddedPostgres, settings: Settings, clock: FakeClock, fw: FakeWeChat,
    aiohttp_server: Any, browser: MakeBrowser,
) -> None:
    ready = replace(settings, database_url=own_postgres.url)
    server_a = await aiohttp_server(create_app(ready, clock=clock, recheck_every=0.5))
    server_b = await aiohttp_server(create_app(ready, clock=clock, recheck_every=0.5))
    b1, phone = await browser(server_a), await browser(server_b)
    scene = await new_scene(b1)

    own_postgres.stop()
    response = await b1.get("/healthz")
    assert response.status == 503
    assert (await response.json())["error"] == "database_unavailable"
    response = await phone.post("/api/pushCode", json={"scene": scene, "code": fw.mint()})
    assert response.status == 503 and "Retry-After" in response.headers
    assert fw.calls["jscode2session"] == 0  # nothing was spent while the database was away

    own_postgres.start()

    async def healthy() -> bool:
        return (await b1.get("/healthz")).status == 200

    await until(healthy)
    waiting = asyncio.create_task(poll(b1, scene, wait=20))
    await asyncio.sleep(0.2)
    started = time.monotonic()
    assert (await push(phone, scene, fw.mint())).status == 200
    status, body = await asyncio.wait_for(waiting, 10)
    assert (status, body["status"]) == (200, "confirmed")
    assert time.monotonic() - started < 5
    assert await me(b1) == 200
