"""Small steps shared by the tests: what a browser and the mini program send."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp import ClientResponse

from tests.conftest import Browser


async def new_scene(browser: Browser) -> str:
    response = await browser.post("/api/scenes")
    assert response.status == 201, await response.text()
    body = await response.json()
    scene: str = body["scene"]
    return scene


async def push(phone: Browser, scene: str, code: str, **extra: Any) -> ClientResponse:
    """The mini program's pushCode (the phone carries no cookie; any client will do)."""
    response: ClientResponse = await phone.post(
        "/api/pushCode", json={"scene": scene, "code": code, **extra}
    )
    return response


async def step(phone: Browser, scene: str, name: str, code: str, **extra: Any) -> ClientResponse:
    response: ClientResponse = await phone.post(
        f"/api/scenes/{scene}/{name}", json={"code": code, **extra}
    )
    return response


async def poll(browser: Browser, scene: str, **query: Any) -> tuple[int, dict[str, Any]]:
    params = {key: str(value) for key, value in query.items()}
    response = await browser.get(f"/api/scenes/{scene}", params=params)
    body: dict[str, Any] = await response.json()
    return response.status, body


async def me(browser: Browser) -> int:
    response = await browser.get("/api/me")
    return response.status


def session_cookie(browser: Browser) -> str | None:
    for cookie in browser.session.cookie_jar:
        if cookie.key in ("wxlogin", "__Host-wxlogin"):
            return cookie.value
    return None


def api_error_codes() -> set[str]:
    """Every `error` code the server's ApiError family can answer."""
    from wxlogin.errors import ApiError

    def subclasses(cls: type[ApiError]) -> list[type[ApiError]]:
        found = [cls]
        for child in cls.__subclasses__():
            found += subclasses(child)
        return found

    return {cls.code for cls in subclasses(ApiError)} - {"scene_conflict"}  # abstract parent


async def until_healthy(
    port: int, process: subprocess.Popen[bytes] | None = None, log: Path | None = None,
    path: str = "/healthz",
) -> None:
    """Wait (up to 60 s) for a `wxlogin serve` on `port` to answer /healthz; a process that
    dies meanwhile fails at once, with its log."""
    def output() -> str:
        return log.read_text() if log is not None else ""

    deadline = time.monotonic() + 60
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            assert process is None or process.poll() is None, output()
            try:
                async with http.get(f"http://127.0.0.1:{port}{path}") as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"server on {port} never became healthy:\n{output()}")


async def run_wxlogin(pg_url: str, *args: str) -> tuple[int, str, str]:
    """`python -m wxlogin ARGS` on the test database: (exit status, stdout, stderr)."""
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "wxlogin", *args, cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "WXLOGIN_DATABASE_URL": pg_url},
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()

