"""The OpenID Connect front door: for now its JWKS."""

from __future__ import annotations

from aiohttp import web

from ..login import identity
from .keys import CLOCK, SERVICES

# Short: a relying party that meets an unknown `kid` fetches again anyway, and the next key is
# published long before it signs (storage/signing.py).
JWKS_MAX_AGE = 300


async def jwks(request: web.Request) -> web.Response:
    keys = await identity.jwks(request.app[SERVICES].pool, request.app[CLOCK].now())
    return web.json_response(
        keys, content_type="application/jwk-set+json",
        headers={"Cache-Control": f"public, max-age={JWKS_MAX_AGE}"},
    )
