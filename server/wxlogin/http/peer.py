"""What a request says about its sender: the client IP (behind trusted proxies only) and a rough
place, as the trusted proxy names it."""

from __future__ import annotations

import ipaddress
from collections.abc import Sequence
from urllib.parse import unquote

from aiohttp import web

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def _trusted(address: str, proxies: Sequence[Network]) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in proxies)


def client_ip(request: web.Request, proxies: Sequence[Network]) -> str:
    """The socket's peer, unless it is a trusted proxy: then the nearest untrusted hop of
    X-Forwarded-For, read from the right, since only the proxies' own entries are believable."""
    peer = request.remote or ""
    if not proxies or not _trusted(peer, proxies):
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return peer
    return peer


def place(request: web.Request, proxies: Sequence[Network], header: str | None) -> str:
    """A rough place for the browser's IP, as the trusted proxy in front of us names it in
    `header` (nginx's geoip2 module, Cloudflare's CF-IPCity, …); nobody else is believed."""
    if not header or not proxies or not _trusted(request.remote or "", proxies):
        return ""
    value = request.headers.get(header, "")
    return unquote(value).strip()[:80] if value.isascii() else ""
