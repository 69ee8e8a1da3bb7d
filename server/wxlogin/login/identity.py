"""The login as an identity provider: the keys relying parties check its tokens with.

The OpenID Connect front door (and the mini program's own token) will sign here; for now this
publishes the JWKS: the signing keys' public halves, the next keys included, so that a relying
party knows a key before it signs anything.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import asyncpg

from ..storage import signing
from ..storage.db import acquire

FULL = {(alg, state) for alg in signing.ALGORITHMS for state in ("current", "next")}


async def jwks(pool: asyncpg.Pool, now: datetime) -> dict[str, Any]:
    """The JSON Web Key Set (RFC 7517) of every key a relying party may meet; the keys are made
    on first need (by whichever process asks first), not at every start."""
    async with acquire(pool) as conn:
        keys = await signing.published(conn, now)
        if not FULL <= {(key.alg, key.state) for key in keys}:
            await signing.ensure(conn, now)
            keys = await signing.published(conn, now)
    return {"keys": [key.public_jwk() for key in keys]}
