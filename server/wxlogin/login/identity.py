"""The login as an identity provider: its keys, what it signs, and what it says of a user.

The JWKS holds the signing keys' public halves, the next keys included, so that a relying party
knows a key before it signs anything. Tokens are signed by the current key of their algorithm.
"""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import asyncpg
from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import KeySet

from ..storage import queries, signing
from ..storage.db import Conn, acquire

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


async def sign(conn: Conn, claims: dict[str, Any], now: datetime, alg: str = "RS256",
               typ: str = "JWT") -> str:
    """A JWT of `claims`, signed by the current key of `alg` (made if there is none yet)."""
    key = await signing.current(conn, alg)
    if key is None:
        await signing.ensure(conn, now)
        key = await signing.current(conn, alg)
        assert key is not None
    return jwt.encode({"alg": alg, "kid": key.kid, "typ": typ}, claims, key.imported())


def b64url(data: bytes) -> str:
    """base64url without padding, as JOSE and PKCE write bytes."""
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def left_hash(value: str) -> str:
    """`at_hash` (OIDC Core §3.1.3.6): the left half of SHA-256."""
    return b64url(hashlib.sha256(value.encode("ascii")).digest()[:16])


def profile_claims(
    user: queries.User, sub: str, scopes: set[str], email: str | None, issuer: str,
    phone: str | None = None,
) -> dict[str, Any]:
    """What `profile`, `groups`, `phone` (when the site gets numbers and the user shared one;
    WeChat verified it) and `email` (for clients that need a made-up one) say of a user."""
    claims: dict[str, Any] = {"sub": sub}
    if "profile" in scopes:
        handle = f"wx_{sub[:12]}"
        claims["name"] = user.nickname or handle  # a relying party shows it: never empty
        claims["preferred_username"] = handle
        if user.avatar_url:
            claims["picture"] = user.avatar_url
    if "groups" in scopes:
        claims["groups"] = list(user.groups)
    if "phone" in scopes and phone is not None:
        claims["phone_number"] = phone
        claims["phone_number_verified"] = True
    if "email" in scopes and email == "substitute":
        host = urlsplit(issuer).hostname or ""
        if not host or ":" in host:  # an IPv6 literal makes no domain
            host = "localhost"
        claims["email"] = f"{sub}@{host}.invalid"
        claims["email_verified"] = False
    return claims


async def verified_claims(pool: asyncpg.Pool, token: str, issuer: str, now: datetime
                          ) -> dict[str, Any] | None:
    """The claims of an ID token this server signed (with any key still published) for this
    issuer; None for anything else. Its expiry is not checked: an `id_token_hint` may be old."""
    async with acquire(pool) as conn:
        keys = await signing.published(conn, now)
    if not keys or len(token) > 8192:
        return None
    try:
        decoded = jwt.decode(token, KeySet([key.imported() for key in keys]),
                             algorithms=list(signing.ALGORITHMS))
    except (JoseError, ValueError, TypeError, KeyError):
        return None
    if decoded.header.get("typ") != "JWT":  # an ID token, not the mini program's at+jwt
        return None
    claims = dict(decoded.claims)
    return claims if claims.get("iss") == issuer and isinstance(claims.get("sub"), str) else None
