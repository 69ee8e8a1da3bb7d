"""The official account's way in: a follower scans the account's QR for a scene (a `subscribe`
or `SCAN` event), the scene is theirs (`scanned`), and the passive reply carries a single-use
link to a page where they confirm or decline, on the phone; the browser's long-poll finishes as
for any scene.

The person is the follower's openid under the account's appid, or their unionid when the
account is bound to an Open Platform account (then the same user as the mini program's).
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import ApiError, SceneNotFound
from ..storage.db import acquire
from ..wechat.client import WxSession
from ..wechat.crypto import Profile
from . import operations, scenes
from .context import scan_context
from .operations import Login
from .steps import user_key

CONFIRM_LIFETIME = timedelta(minutes=5)


class ConfirmLinkInvalid(ApiError):
    status = 410
    code = "confirm_link_invalid"
    default_message = (
        "This confirm link was used already, has expired, or is not yours; scan the code on the "
        "computer again."
    )


def digest(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


@dataclass(frozen=True)
class Scanned:
    token: str  # for the confirm link (only its hash is kept)
    context: dict[str, Any]


def scene_of(event: str, event_key: str) -> str | None:
    """The scene a `subscribe` (`qrscene_SCENE`) or `SCAN` (`SCENE`) event names, if any."""
    key = event_key.removeprefix("qrscene_") if event == "subscribe" else event_key
    return key if scenes.valid_scene(key) else None


async def scan(login: Login, scene: str, *, appid: str, openid: str, unionid: str | None,
               public_url: str) -> Scanned:
    """Claim the scene for the follower, and a confirm link for them alone; one transaction,
    so a claim never lacks its link. Refusals are the scene's own errors (SceneExpired, …)."""
    now = login.clock.now()
    claimant = user_key(appid, WxSession(openid, unionid, b""))
    token = secrets.token_urlsafe(24)
    async with acquire(login.pool) as conn, conn.transaction():
        moved = await scenes.transition(conn, scene, "scan", claimant=claimant, now=now)
        await conn.execute(
            "INSERT INTO wxlogin.oa_confirms (token_hash, scene, openid, unionid, created_at,"
            " expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
            digest(token), scene, openid, unionid, now,
            min(now + CONFIRM_LIFETIME, moved.expires_at),
        )
    login.hub.wake(scene)
    login.counted("scanned")
    return Scanned(token, scan_context(moved, public_url, now))


@dataclass(frozen=True)
class Pending:
    scene: str
    openid: str
    unionid: str | None
    context: dict[str, Any]


async def pending(login: Login, token: str, public_url: str) -> Pending:
    """What a confirm link asks about, while it can still be used."""
    now = login.clock.now()
    async with acquire(login.pool) as conn:
        row = await conn.fetchrow(
            "SELECT scene, openid, unionid FROM wxlogin.oa_confirms WHERE token_hash = $1"
            " AND used_at IS NULL AND expires_at > $2",
            digest(token), now,
        )
        found = await scenes.get(conn, row["scene"]) if row is not None else None
    if row is None or found is None or found.state(now) != "scanned":
        raise ConfirmLinkInvalid()
    return Pending(row["scene"], row["openid"], row["unionid"],
                   scan_context(found, public_url, now))


async def decide(login: Login, token: str, *, confirm: bool, appid: str,
                 address: str) -> None:
    """Spend the link (one conditional UPDATE: of any number of taps, one acts) and confirm or
    decline its scene as its follower."""
    now = login.clock.now()
    async with acquire(login.pool) as conn:
        row = await conn.fetchrow(
            "UPDATE wxlogin.oa_confirms SET used_at = $2 WHERE token_hash = $1"
            " AND used_at IS NULL AND expires_at > $2 RETURNING scene, openid, unionid",
            digest(token), now,
        )
    if row is None:
        raise ConfirmLinkInvalid()
    wx = WxSession(row["openid"], row["unionid"], b"")
    try:
        if confirm:
            await operations.confirm(
                login, row["scene"], appid=appid, wx=wx, profile=Profile(None, None),
                avatar_link=lambda avatar_id: "", address=address,
            )
        else:
            await operations.deny(login, row["scene"], user_key(appid, wx))
    except SceneNotFound:
        raise ConfirmLinkInvalid() from None
