"""Which requests with effects come from this site: `Origin` and `Sec-Fetch-Site` against
WXLOGIN_PUBLIC_URL."""

from __future__ import annotations

from urllib.parse import urlsplit

from aiohttp import web

from ..errors import ForbiddenOrigin
from .keys import SETTINGS


def check_origin(request: web.Request) -> None:
    """Cookie-bound requests with effects are refused when another site sent them."""
    origin = request.headers.get("Origin")
    if origin is not None and not same_origin(origin, request.app[SETTINGS].public_origin):
        raise ForbiddenOrigin()
    if request.headers.get("Sec-Fetch-Site") == "cross-site":
        raise ForbiddenOrigin()


LOOPBACK = {"localhost", "127.0.0.1", "::1"}


def same_origin(origin: str, public: str) -> bool:
    """`Origin` against WXLOGIN_PUBLIC_URL's origin; on this machine, localhost, 127.0.0.1 and
    [::1] are one host, so a developer may open whichever they like."""
    if origin.lower() == public:
        return True
    try:
        theirs, ours = urlsplit(origin.lower()), urlsplit(public)
        ports = (theirs.port, ours.port)
    except ValueError:
        return False
    return (
        theirs.scheme == ours.scheme == "http"
        and ports[0] == ports[1]
        and theirs.hostname in LOOPBACK
        and ours.hostname in LOOPBACK
    )
