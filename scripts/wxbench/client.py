"""A tiny HTTP/1.1 client on asyncio streams: one keep-alive connection, one cookie."""

from __future__ import annotations

import asyncio
import json
import math
import re
from dataclasses import dataclass
from typing import Any

from .common import HOST

COOKIE = "wxlogin"
USER_AGENT = (
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0 Safari/537.36 wxbench"
)


class Failed(Exception):
    """A step answered other than expected; str() is its label in the error counts."""


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self) -> Any:
        return json.loads(self.body)

    def label(self, what: str) -> str:
        try:
            error = self.json().get("error", "")
        except (ValueError, AttributeError):
            error = ""
        return f"{what} {self.status} {error}".strip()


class Conn:
    """A browser (its own connection and cookie) or a phone (no cookie is ever set for it)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.cookie: str | None = None
        self.requests = 0
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self._reader, self._writer = await asyncio.open_connection(HOST, self.port)

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._reader = self._writer = None

    async def request(self, method: str, path: str, payload: Any = None) -> Reply:
        body = b"" if payload is None else json.dumps(payload).encode()
        lines = [f"{method} {path} HTTP/1.1", f"Host: {HOST}:{self.port}",
                 f"User-Agent: {USER_AGENT}", "Accept: */*"]
        if self.cookie:
            lines.append(f"Cookie: {COOKIE}={self.cookie}")
        if payload is not None:
            lines.append("Content-Type: application/json")
        if method != "GET":
            lines.append(f"Content-Length: {len(body)}")
        data = ("\r\n".join(lines) + "\r\n\r\n").encode() + body
        for attempt in (0, 1):
            if self._writer is None or self._writer.is_closing():
                await self.open()
            reader, writer = self._reader, self._writer
            assert reader is not None and writer is not None
            try:
                writer.write(data)
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError) as exc:
                # A keep-alive connection the server had closed: once more on a new one.
                self.close()
                partial = isinstance(exc, asyncio.IncompleteReadError) and exc.partial
                if attempt or partial:
                    raise
        assert reader is not None
        status_line, *header_lines = head[:-4].decode("latin-1").split("\r\n")
        status = int(status_line.split(" ", 2)[1])
        headers: dict[str, str] = {}
        for line in header_lines:
            name, _, value = line.partition(":")
            name, value = name.strip().lower(), value.strip()
            if name == "set-cookie":
                self._keep_cookie(value)
            else:
                headers[name] = value
        if "content-length" in headers:
            content = await reader.readexactly(int(headers["content-length"]))
        elif headers.get("transfer-encoding", "").lower() == "chunked":
            content = await self._chunked(reader)
        elif status in (204, 304) or method == "HEAD":
            content = b""
        else:
            content = await reader.read()
            self.close()
        if headers.get("connection", "").lower() == "close":
            self.close()
        self.requests += 1
        return Reply(status, content, headers)

    @staticmethod
    async def _chunked(reader: asyncio.StreamReader) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            if size == 0:
                await reader.readuntil(b"\r\n")
                return b"".join(parts)
            parts.append((await reader.readexactly(size + 2))[:-2])

    def _keep_cookie(self, value: str) -> None:
        name, _, rest = value.partition("=")
        if name.strip() == COOKIE:
            cookie = rest.split(";", 1)[0].strip()
            self.cookie = cookie if cookie and cookie != '""' else None


async def get_metrics(port: int) -> str:
    conn = Conn(port)
    try:
        reply = await conn.request("GET", "/metrics")
        return reply.body.decode()
    finally:
        conn.close()


async def gauge(port: int, name: str) -> float:
    match = re.search(rf"^{name} (\S+)$", await get_metrics(port), re.MULTILINE)
    return float(match.group(1)) if match else math.nan
