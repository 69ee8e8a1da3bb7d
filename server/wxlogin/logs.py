"""Logs: one JSON object per line in production, readable lines in a terminal. Every line
written while a request is served carries its request id (also sent back as X-Request-Id).

What is never logged: secrets (the AppSecret, tokens, js_codes, session ids), personal data
(nicknames, openids, unionids, IP addresses) and query strings. The access log names the route
(`/api/scenes/{scene}`), not the path, so scene ids stay out of it too.
"""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

from aiohttp import web
from aiohttp.abc import AbstractAccessLogger

REQUEST_ID: ContextVar[str] = ContextVar("wxlogin_request_id", default="-")
REQUEST_ID_KEY = web.RequestKey("wxlogin_request_id", str)
# A proxy's own id (nginx's $request_id) is kept when it looks like one; anything else is replaced.
GOOD_ID = re.compile(r"[A-Za-z0-9._-]{8,64}")
FIELDS = ("method", "route", "status", "ms")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s [%(request_id)s] %(message)s"


def request_id(request: web.Request) -> str:
    offered = request.headers.get("X-Request-Id", "")
    return offered if GOOD_ID.fullmatch(offered) else secrets.token_hex(8)


def route_of(request: web.Request) -> str:
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "unmatched"


def stamp_request_ids() -> None:
    """Every log record made from now on carries the request id of the code that made it
    (whichever handler writes it: ours, pytest's, a host application's). Idempotent."""
    make = logging.getLogRecordFactory()
    if getattr(make, "stamps_request_ids", False):
        return

    def stamped(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        record.request_id = REQUEST_ID.get()
        return record

    stamped.stamps_request_ids = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(stamped)


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": getattr(record, "request_id", "-"),
        }
        for name in FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info:
            entry["error"] = self.formatException(record.exc_info)
        return json.dumps(entry, ensure_ascii=False)


def configure(level: str, form: str) -> None:
    """`form`: "json", "text", or "auto" (text on a terminal, JSON otherwise)."""
    if form == "auto":
        form = "text" if sys.stderr.isatty() else "json"
    stamp_request_ids()
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if form == "json" else logging.Formatter(TEXT_FORMAT))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)


class AccessLogger(AbstractAccessLogger):
    """One line per answer: method, route, status and time taken; no address, no query."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        route = route_of(request) if isinstance(request, web.Request) else "unmatched"
        ms = round(time * 1000, 1)
        # Written after the handler's context is gone: its id comes back for this one line.
        token = REQUEST_ID.set(request.get(REQUEST_ID_KEY, "-"))
        try:
            self.logger.info(
                "%s %s %s %.1f ms", request.method, route, response.status, ms,
                extra={"method": request.method, "route": route, "status": response.status,
                       "ms": ms},
            )
        finally:
            REQUEST_ID.reset(token)
