"""The OpenID Connect provider's operations: an authorization code for a logged-in browser, the
code exchanged for tokens (once), refresh tokens rotated, and userinfo.

The hosted page and the scan are how a person proves who they are; the browser's wxlogin
session is the provider's login session. Everything a token says comes from the users table.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ..clients import OidcClient
from ..errors import OAuthClientError, OAuthError
from ..storage import grants, queries
from ..storage.db import Conn, acquire
from . import identity

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(hours=1)  # storage/sweeper.py keeps used codes as long
ID_TOKEN_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=30)
SCOPES = ("openid", "profile", "email", "offline_access")


def s256(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


async def auth_time(pool: asyncpg.Pool, session_hash: bytes) -> datetime | None:
    """When the browser behind this (logged-in) session logged in."""
    async with acquire(pool) as conn:
        return await grants.session_started(conn, session_hash)


async def grant_code(
    pool: asyncpg.Pool, now: datetime, *, client: OidcClient, redirect_uri: str, user_id: int,
    scopes: list[str], nonce: str | None, code_challenge: str | None, authenticated: datetime,
) -> str:
    code = grants.new_token()
    async with acquire(pool) as conn:
        await grants.put_code(
            conn, code, client_id=client.client_id, redirect_uri=redirect_uri, user_id=user_id,
            scope=" ".join(scopes), nonce=nonce, code_challenge=code_challenge,
            auth_time=authenticated, now=now, expires_at=now + CODE_LIFETIME,
        )
    return code


def invalid_grant(message: str) -> OAuthError:
    return OAuthError("invalid_grant", message)


async def exchange_code(
    pool: asyncpg.Pool, now: datetime, issuer: str, client: OidcClient, *, code: str,
    redirect_uri: str | None, verifier: str | None,
) -> dict[str, Any]:
    """Tokens for an authorization code, once. The code is spent by the first attempt whatever
    it brings; presented again, it revokes every token that first attempt issued."""
    async with acquire(pool) as conn:
        found = await grants.redeem_code(conn, code, now)
        if found is None:
            if await grants.code_was_redeemed(conn, code):
                await grants.revoke_grant(conn, code, now)
                raise invalid_grant("This code was already used; its tokens are revoked.")
            raise invalid_grant("This code is unknown or expired.")
        if found.client_id != client.client_id:
            raise invalid_grant("This code was issued to another client.")
        if redirect_uri != found.redirect_uri:
            raise invalid_grant("redirect_uri is not the one the code was issued for.")
        if found.code_challenge is not None:
            if verifier is None or not hmac.compare_digest(s256(verifier), found.code_challenge):
                raise invalid_grant("code_verifier does not match the code_challenge.")
        elif verifier is not None:  # a downgrade: the request had no challenge
            raise invalid_grant("code_verifier was sent, but the request had no code_challenge.")
        return await issue(
            conn, now, issuer, client, user_id=found.user_id, scopes=found.scope.split(),
            nonce=found.nonce, authenticated=found.auth_time, grant_hash=grants.digest(code),
        )


async def refresh(
    pool: asyncpg.Pool, now: datetime, issuer: str, client: OidcClient, token: str
) -> dict[str, Any]:
    """New tokens for a refresh token, which is then spent; a spent one presented again
    revokes its whole family (everything issued from the same code)."""
    async with acquire(pool) as conn:
        used = await grants.spend_refresh(conn, token, now)
        if used is None:
            family = await grants.family_of(conn, token)
            if family is not None:
                await grants.revoke_family(conn, family, now)
                raise invalid_grant("This refresh token was already used; its family is revoked.")
            raise invalid_grant("This refresh token is unknown, expired or revoked.")
        if used.client_id != client.client_id:
            raise invalid_grant("This refresh token was issued to another client.")
        return await issue(
            conn, now, issuer, client, user_id=used.user_id, scopes=used.scope.split(),
            nonce=None, authenticated=used.auth_time, grant_hash=used.grant_hash,
        )


async def issue(
    conn: Conn, now: datetime, issuer: str, client: OidcClient, *, user_id: int,
    scopes: list[str], nonce: str | None, authenticated: datetime, grant_hash: bytes,
) -> dict[str, Any]:
    user = await queries.get_user(conn, user_id)
    if user is None or user.disabled:
        raise invalid_grant("This account cannot log in.")
    access = grants.new_token()
    answer: dict[str, Any] = {
        "access_token": access, "token_type": "Bearer",
        "expires_in": int(ACCESS_LIFETIME.total_seconds()), "scope": " ".join(scopes),
    }
    async with conn.transaction():
        for kind, token, lifetime in (
            ("access", access, ACCESS_LIFETIME),
            *([("refresh", grants.new_token(), REFRESH_LIFETIME)]
              if "offline_access" in scopes else []),
        ):
            await grants.put_token(
                conn, token, kind=kind, grant_hash=grant_hash, client_id=client.client_id,
                user_id=user.id, scope=" ".join(scopes), auth_time=authenticated, now=now,
                expires_at=now + lifetime,
            )
            if kind == "refresh":
                answer["refresh_token"] = token
        sub = await grants.subject(conn, user.id)
    claims = {
        "iss": issuer, "aud": client.client_id, "azp": client.client_id,
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()), "iat": int(now.timestamp()),
        "auth_time": int(authenticated.timestamp()), "at_hash": identity.left_hash(access),
        **identity.profile_claims(user, sub, set(scopes), client.email, issuer),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    answer["id_token"] = await identity.sign(conn, claims, now)
    return answer


def bearer_refused(message: str) -> OAuthClientError:
    return OAuthClientError(
        "invalid_token", message,
        headers={"WWW-Authenticate": f'Bearer error="invalid_token", error_description='
                                     f'"{message}"'},
    )


async def userinfo(
    pool: asyncpg.Pool, now: datetime, issuer: str, clients: Mapping[str, OidcClient],
    token: str,
) -> dict[str, Any]:
    async with acquire(pool) as conn:
        found = await grants.live_token(conn, token, "access", now)
        user = await queries.get_user(conn, found.user_id) if found else None
        if found is None or user is None or user.disabled:
            raise bearer_refused("The access token is unknown, expired or revoked.")
        sub = await grants.subject(conn, user.id)
    client = clients.get(found.client_id)
    email = client.email if client is not None else None
    return identity.profile_claims(user, sub, set(found.scope.split()), email, issuer)
