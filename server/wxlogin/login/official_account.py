"""The official account's way in: a follower scans the account's QR for a scene (a `subscribe`
or `SCAN` event), the scene is theirs (`scanned`), and the passive reply carries a single-use
link to a page where they confirm or decline, on the phone; the browser's long-poll finishes as
for any scene.

The person is the follower's openid under the account's appid, or their unionid when the
account is bound to an Open Platform account (then the same user as the mini program's).
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from ..errors import ApiError, SceneNotFound
from ..storage.db import acquire
from ..storage.grants import digest
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


@dataclass(frozen=True)
class Scanned:
    token: str  # for the confirm link (only its hash is kept)
    context: dict[str, Any]


def scene_of(event: str, event_key: str) -> str | None:
    """The scene a `subscribe` (`qrscene_SCENE`) or `SCAN` (`SCENE`) event names, if any."""
    key = event_key.removeprefix("qrscene_") if event == "subscribe" else event_key
    return key if scenes.valid_scene(key) else None


async def answer_event(
    login: Login, *, appid: str, from_user: str, created: int, scene: str | None,
    unionid: str | None, public_url: str,
    reply: Callable[[Scanned | ApiError | None], str | None],
) -> tuple[str | None, bool]:
    """The reply to a scan event, made at most once per (FromUserName, CreateTime): in one
    transaction the event is recorded, the scene claimed for the follower, their confirm link
    stored and the reply kept, so a timeout leaves nothing behind and a retry (in any process:
    it waits on the first attempt's row) gets the reply the first attempt made. Returns the
    reply, and whether this was the event's first delivery."""
    now = login.clock.now()
    claimant = user_key(appid, WxSession(from_user, unionid, b""))
    token = secrets.token_urlsafe(24)
    claimed = False
    async with acquire(login.pool) as conn, conn.transaction():
        first = await conn.fetchval(
            "INSERT INTO wxlogin.oa_events (from_user, create_time, received_at)"
            " VALUES ($1, $2, $3) ON CONFLICT DO NOTHING RETURNING true",
            from_user, created, now,
        )
        if not first:
            kept: str | None = await conn.fetchval(
                "SELECT reply FROM wxlogin.oa_events WHERE from_user = $1 AND create_time = $2",
                from_user, created,
            )
            return kept, False
        outcome: Scanned | ApiError | None = None
        if scene is not None:
            try:
                moved = await scenes.transition(conn, scene, "scan", claimant=claimant, now=now)
            except ApiError as refused:  # expired, taken, unknown: a polite reply
                outcome = refused
            else:
                await conn.execute(
                    "INSERT INTO wxlogin.oa_confirms (token_hash, scene, openid, unionid,"
                    " created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6)",
                    digest(token), scene, from_user, unionid, now,
                    min(now + CONFIRM_LIFETIME, moved.expires_at),
                )
                outcome, claimed = Scanned(token, scan_context(moved, public_url, now)), True
        text = reply(outcome)
        await conn.execute(
            "UPDATE wxlogin.oa_events SET reply = $3 WHERE from_user = $1 AND create_time = $2",
            from_user, created, text,
        )
    if claimed and scene is not None:  # after the commit: the browser reads a settled row
        login.hub.wake(scene)
        login.counted("scanned")
    return text, True


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
