"""The OpenID Connect provider's operations: an authorization code for a logged-in browser, the
code exchanged for tokens (once), refresh tokens rotated, and userinfo.

The hosted page and the scan are how a person proves who they are; the browser's wxlogin
session is the provider's login session. Everything a token says comes from the users table.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import asyncpg

from ..clients import OidcClient
from ..errors import REFUSALS, OAuthClientError, OAuthError
from ..storage import audit, grants, oidc_clients, queries
from ..storage.db import Conn, acquire
from ..text import storable
from ..wechat.client import WxSession
from ..wechat.crypto import Profile
from . import access, identity
from .phones import PhoneBook

CODE_LIFETIME = timedelta(seconds=60)
ACCESS_LIFETIME = timedelta(hours=1)  # storage/sweeper.py keeps used codes as long
ID_TOKEN_LIFETIME = timedelta(hours=1)
REFRESH_LIFETIME = timedelta(days=30)
SCOPES = ("openid", "profile", "email", "phone", "groups", "offline_access")


def s256(verifier: str) -> str:
    """PKCE's S256 (RFC 7636 §4.2): the challenge a verifier answers."""
    return identity.b64url(hashlib.sha256(verifier.encode("ascii")).digest())


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


VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")  # RFC 7636 §4.1


def pkce_problem(client: OidcClient, challenge: str | None, verifier: str | None) -> str | None:
    if challenge is not None:
        if verifier is None or not VERIFIER.fullmatch(verifier):
            return "code_verifier is missing or malformed."
        if not hmac.compare_digest(s256(verifier), challenge):
            return "code_verifier does not match the code_challenge."
        return None
    if verifier is not None:  # a downgrade: the authorization request had no challenge
        return "code_verifier was sent, but the request had no code_challenge."
    if client.public:
        return "A public client's code must come with PKCE."
    return None


async def exchange_code(
    pool: asyncpg.Pool, now: datetime, issuer: str, client: OidcClient, *, code: str,
    redirect_uri: str | None, verifier: str | None, phones: PhoneBook,
) -> dict[str, Any]:
    """Tokens for an authorization code, once. The code is spent by the first attempt whatever
    it brings; presented again, it revokes every token that attempt issued. Spending, checking
    and storing the tokens are one transaction, so a replay racing the first attempt waits for
    it (on the code's row) and then revokes what it stored."""
    async with acquire(pool) as conn:
        async with conn.transaction():  # commits a revocation or a spent code before refusing
            found = await grants.redeem_code(conn, code, now)
            issued: Issued | None = None
            problem: str | None
            if found is None:
                replayed = await grants.code_was_redeemed(conn, code)
                # Also for a code the sweeper has removed: its tokens may still live.
                revoked = await grants.revoke_family(conn, grants.digest(code), now)
                problem = ("This code was already used; its tokens are revoked."
                           if replayed or revoked else "This code is unknown or expired.")
            elif found.client_id != client.client_id:
                problem = "This code was issued to another client."
            elif redirect_uri != found.redirect_uri:
                problem = "redirect_uri is not the one the code was issued for."
            else:
                problem = pkce_problem(client, found.code_challenge, verifier)
                if problem is None:
                    issued = await store_tokens(
                        conn, now, client, user_id=found.user_id, scopes=found.scope.split(),
                        authenticated=found.auth_time, grant_hash=grants.digest(code),
                    )
                    problem = "This account cannot log in." if issued is None else None
        if found is None or issued is None:
            raise invalid_grant(problem or "This code cannot be used.")
        return await finish(conn, now, issuer, client, issued, nonce=found.nonce, phones=phones)


async def refresh(
    pool: asyncpg.Pool, now: datetime, issuer: str, client: OidcClient, token: str,
    phones: PhoneBook,
) -> dict[str, Any]:
    """New tokens for a refresh token, which is then spent; a spent one presented again
    revokes its whole family (everything issued from the same code)."""
    async with acquire(pool) as conn:
        async with conn.transaction():
            used = await grants.spend_refresh(conn, token, now)
            issued = None
            if used is None:
                family = await grants.family_of(conn, token)
                if family is not None:
                    await grants.revoke_family(conn, family, now)
                problem = ("This refresh token was already used; its family is revoked."
                           if family is not None else
                           "This refresh token is unknown, expired or revoked.")
            elif used.client_id != client.client_id:
                problem = "This refresh token was issued to another client."
            else:
                problem = "This account cannot log in."
                issued = await store_tokens(
                    conn, now, client, user_id=used.user_id, scopes=used.scope.split(),
                    authenticated=used.auth_time, grant_hash=used.grant_hash,
                )
        if issued is None:
            raise invalid_grant(problem)
        return await finish(conn, now, issuer, client, issued, nonce=None, phones=phones)


@dataclass(frozen=True)
class Issued:
    user: queries.User
    sub: str
    scopes: list[str]
    authenticated: datetime
    answer: dict[str, Any]


async def store_tokens(
    conn: Conn, now: datetime, client: OidcClient, *, user_id: int, scopes: list[str],
    authenticated: datetime, grant_hash: bytes,
) -> Issued | None:
    """An access token (and a refresh token for offline_access), stored; None for a user who
    may not log in (gone or disabled)."""
    user = await queries.get_user(conn, user_id)
    if user is None or not user.active:
        return None
    answer: dict[str, Any] = {
        "token_type": "Bearer", "expires_in": int(ACCESS_LIFETIME.total_seconds()),
        "scope": " ".join(scopes),
    }
    kinds = [("access_token", "access", ACCESS_LIFETIME)]
    if "offline_access" in scopes:
        kinds.append(("refresh_token", "refresh", REFRESH_LIFETIME))
    for field, kind, lifetime in kinds:
        answer[field] = grants.new_token()
        await grants.put_token(
            conn, answer[field], kind=kind, grant_hash=grant_hash, client_id=client.client_id,
            user_id=user.id, scope=" ".join(scopes), auth_time=authenticated, now=now,
            expires_at=now + lifetime,
        )
    sub = await grants.subject(conn, user.id)
    return Issued(user, sub, scopes, authenticated, answer)


async def finish(
    conn: Conn, now: datetime, issuer: str, client: OidcClient, issued: Issued, *,
    nonce: str | None, phones: PhoneBook,
) -> dict[str, Any]:
    """The token answer with its ID token (signed once the tokens are stored)."""
    claims = {
        "iss": issuer, "aud": client.client_id, "azp": client.client_id,
        "exp": int((now + ID_TOKEN_LIFETIME).timestamp()), "iat": int(now.timestamp()),
        "auth_time": int(issued.authenticated.timestamp()),
        "at_hash": identity.left_hash(issued.answer["access_token"]),
        **identity.profile_claims(issued.user, issued.sub, set(issued.scopes), client.email,
                                  issuer, phones.shown(issued.user)),
    }
    if nonce is not None:
        claims["nonce"] = nonce
    id_token = await identity.sign(conn, claims, now, alg=client.id_token_alg)
    return {**issued.answer, "id_token": id_token}


def bearer_refused(message: str, *, sent: bool = True) -> OAuthClientError:
    """RFC 6750 §3: `error` only when a token was sent; the header's text is plain ASCII."""
    challenge = 'Bearer realm="wxlogin"'
    if sent:
        challenge += ', error="invalid_token"'
    return OAuthClientError("invalid_token", message, headers={"WWW-Authenticate": challenge})


async def userinfo(
    pool: asyncpg.Pool, now: datetime, issuer: str, declared: Sequence[OidcClient], token: str,
    phones: PhoneBook,
) -> dict[str, Any]:
    async with acquire(pool) as conn:
        found = await grants.live_token(conn, token, "access", now)
        user = await queries.get_user(conn, found.user_id) if found else None
        if found is None or user is None or not user.active:
            raise bearer_refused("The access token is unknown, expired or revoked.")
        sub = await grants.subject(conn, user.id)
    client = await find_client(pool, declared, found.client_id)
    email = client.email if client is not None else None
    return identity.profile_claims(user, sub, set(found.scope.split()), email, issuer,
                                   phones.shown(user))


async def subject_of(pool: asyncpg.Pool, user_id: int) -> str:
    async with acquire(pool) as conn:
        return await grants.subject(conn, user_id)


async def find_client(
    pool: asyncpg.Pool, declared: Sequence[OidcClient], client_id: str
) -> OidcClient | None:
    """A client declared in WXLOGIN_OIDC_CLIENTS (which wins), or one kept in the database."""
    for client in declared:
        if client.client_id == client_id:
            return client
    if not client_id or len(client_id) > 255 or not storable(client_id):
        return None
    async with acquire(pool) as conn:
        return await oidc_clients.get(conn, client_id)


async def public_clients(
    pool: asyncpg.Pool, declared: Sequence[OidcClient]
) -> list[OidcClient]:
    """The public clients (the only ones CORS is for): declared ones, then kept ones."""
    ids = {client.client_id for client in declared}
    async with acquire(pool) as conn:
        kept = await oidc_clients.public(conn)
    return [c for c in declared if c.public] + [c for c in kept if c.client_id not in ids]


MINIPROGRAM_TOKEN_LIFETIME = timedelta(hours=2)


async def refused_by_groups(pool: asyncpg.Pool, now: datetime, *, user_id: int,
                            client_id: str, address: str) -> None:
    """A client's `allowed_groups` turned this user away: a refused login, for the audit."""
    async with acquire(pool) as conn:
        await audit.record(conn, at=now, actor=f"user:{user_id}", action="login_refused",
                           subject=f"client:{client_id}",
                           detail={"reason": "not_in_allowed_groups"}, address=address)


async def miniprogram_token(
    pool: asyncpg.Pool, now: datetime, issuer: str, appid: str, wx: WxSession, *,
    registration: str = "open", address: str = "",
) -> tuple[str, queries.User]:
    """The mini program's own login: the person behind `wx` (WeChat's answer to a fresh
    wx.login code) as a user (the same one as their browser logins, by unionId), and a JWT
    access token for the site's own API (RFC 9068: `aud` the mini program's appid, `sub` the
    user's OIDC sub), verifiable through the JWKS. The owner's rules apply as to any login."""
    async with acquire(pool) as conn:
        async with conn.transaction():
            admitted = await access.admit(
                conn, registration=registration, scene=None, appid=appid, wx=wx,
                profile=Profile(None, None), avatar_url=None, address=address, now=now,
            )
        if admitted.refused is not None:
            raise REFUSALS[admitted.refused]()
        user = admitted.user
        assert user is not None
        sub = await grants.subject(conn, user.id)
        claims = {
            "iss": issuer, "sub": sub, "aud": appid, "client_id": appid,
            "iat": int(now.timestamp()), "exp": int((now + MINIPROGRAM_TOKEN_LIFETIME).timestamp()),
            "jti": grants.new_token(),
        }
        token = await identity.sign(conn, claims, now, typ="at+jwt")
    return token, user
