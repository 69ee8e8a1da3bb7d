"""The middlewares every answer passes: request ids and counts, security headers, the body limit
and the login's own sessions beside a host's."""

from __future__ import annotations

from collections.abc import MutableMapping

from aiohttp import web
from aiohttp.typedefs import Handler
from aiohttp_session import SESSION_KEY, STORAGE_KEY

from ..logs import REQUEST_ID, REQUEST_ID_KEY, request_id, route_of
from .keys import BASE, MAX_BODY, METRICS, SERVICES, SETTINGS

METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


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
