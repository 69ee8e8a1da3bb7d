"""The browser's and the phone's steps of a login, over the HTTP client; the stand-in's codes;
long-polls opened in batches."""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from urllib.parse import urlsplit

from .client import Conn, Failed, Reply, gauge
from .common import now

OPEN = ("pending", "scanned")


async def create_scene(browser: Conn) -> tuple[str, str]:
    reply = await browser.request("POST", "/api/scenes")
    if reply.status != 201:
        raise Failed(reply.label("POST /api/scenes"))
    body = reply.json()
    return body["scene"], urlsplit(body["code_url"]).path


async def draw(browser: Conn, code_path: str) -> None:
    reply = await browser.request("GET", code_path)
    if reply.status != 200 or not reply.body:
        raise Failed(reply.label("GET code"))


async def phone_step(phone: Conn, path: str, payload: dict[str, str]) -> Reply:
    reply = await phone.request("POST", path, payload)
    if reply.status != 200:
        raise Failed(reply.label(f"POST {path.rsplit('/', 1)[-1]}"))
    return reply


async def scan(phone: Conn, scene: str, code: str) -> None:
    await phone_step(phone, f"/api/scenes/{scene}/scan", {"code": code})


async def push(phone: Conn, scene: str, code: str) -> None:
    await phone_step(phone, "/api/pushCode", {"scene": scene, "code": code})


async def poll(browser: Conn, scene: str, wait: int, since: str | None = None) -> str:
    query = f"wait={wait}" + (f"&since={since}" if since else "")
    reply = await browser.request("GET", f"/api/scenes/{scene}?{query}")
    if reply.status != 200:
        raise Failed(reply.label("GET poll"))
    status: str = reply.json()["status"]
    return status


async def until_confirmed(browser: Conn, scene: str, wait: int = 25) -> float:
    """Long-poll as the login page does (passing the last status as `since`); the moment the
    browser learns it is logged in."""
    status = "pending"
    while True:
        status = await poll(browser, scene, wait, status)
        if status == "confirmed":
            return now()
        if status not in OPEN:
            raise Failed(f"GET poll answered {status}")


class Codes:
    """Fresh wx.login codes, minted in batches by the stand-in before they are needed: `per`
    codes for each person (a scan and a pushCode must come from the same WeChat user)."""

    def __init__(self, fake_port: int, per: int = 1) -> None:
        self._conn = Conn(fake_port)
        self._per = per
        self._people: deque[list[str]] = deque()
        self._lock = asyncio.Lock()

    async def fill(self, people: int) -> None:
        async with self._lock:
            while len(self._people) < people:
                want = max(500, min(5000, people - len(self._people)))
                reply = await self._conn.request(
                    "POST", f"/_bench/mint?n={want}&per={self._per}")
                self._people.extend(reply.json()["people"])

    async def person(self) -> list[str]:
        if not self._people:
            await self.fill(1)
        return self._people.popleft()

    async def take(self) -> str:
        return (await self.person())[0]


async def open_polls(
    count: int, start: Callable[[int], None], port: int, batch: int = 250,
    timeout: float = 60.0,
) -> int:
    """Start `count` long-polls in batches, each once the server holds the ones before it
    (its wxlogin_waiting_polls), so setting them up never queues for the database pool.
    Returns how many the server was seen holding at the end."""
    base = await gauge(port, "wxlogin_waiting_polls")
    sent = 0
    seen = base
    for first in range(0, count, batch):
        for index in range(first, min(count, first + batch)):
            start(index)
        sent = min(count, first + batch)
        deadline = now() + timeout
        while now() < deadline:
            await asyncio.sleep(0.02)
            seen = await gauge(port, "wxlogin_waiting_polls")
            if seen - base >= sent:
                break
    return int(seen - base)
