"""The login attempt as an explicit state machine.

Stored statuses: pending -> scanned -> confirmed | denied. `expired` is never stored; it is derived
from `expires_at` against the injected clock by `Scene.state`, which every reader uses. Each
transition is one conditional UPDATE ... RETURNING, so of any number of concurrent attempts exactly
one wins; the losers read the row once to learn which error applies.
"""

from __future__ import annotations

import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

from ..errors import (
    SceneAlreadyClaimed,
    SceneAlreadyConfirmed,
    SceneDenied,
    SceneExpired,
    SceneNotFound,
    SceneNotScanned,
)
from ..storage.db import Conn

ALPHABET = string.digits + string.ascii_letters
# 24 base-62 characters carry 142 bits, inside WeChat's 32-character scene limit.
SCENE_LENGTH = 24
OPEN = ("pending", "scanned")
STATUSES = ("pending", "scanned", "confirmed", "denied", "expired")

COLUMNS = (
    "scene, owner, status, appid, claimant, user_id, browser_agent, browser_ip, browser_place,"
    " code_type, login_nonce, deny_reason, entry, created_at, expires_at"
)


def new_scene() -> str:
    # One draw below 62**24, written in base 62: uniform like 24 secrets.choice calls, at one
    # read of the system's randomness instead of 24 (it showed in the profile of POST /api/scenes).
    number = secrets.randbelow(len(ALPHABET) ** SCENE_LENGTH)
    digits = []
    for _ in range(SCENE_LENGTH):
        number, digit = divmod(number, len(ALPHABET))
        digits.append(ALPHABET[digit])
    return "".join(digits)


def valid_scene(value: str) -> bool:
    """WeChat's scene is 1-32 characters; ours use letters and digits only."""
    return 0 < len(value) <= 32 and all(c in ALPHABET for c in value) and value.isascii()


@dataclass(frozen=True)
class Scene:
    scene: str
    owner: str
    status: str
    appid: str
    claimant: str | None
    user_id: int | None
    browser_agent: str
    browser_ip: str
    browser_place: str
    code_type: str | None
    login_nonce: bytes | None
    deny_reason: str | None  # why the owner's rules refused it (a person's decline has none)
    entry: int | None  # how the person arrived in the mini program (WeChat's scene value)
    created_at: datetime
    expires_at: datetime

    def state(self, now: datetime) -> str:
        if self.status in OPEN and self.expires_at <= now:
            return "expired"
        return self.status

    def seconds_left(self, now: datetime) -> float:
        if self.state(now) not in OPEN:
            return 0.0
        return max(0.0, (self.expires_at - now).total_seconds())

    def expires_in(self, now: datetime) -> int:
        return int(self.seconds_left(now))


def _scene(row: asyncpg.Record | None) -> Scene | None:
    return None if row is None else Scene(**dict(row))


async def create(
    conn: Conn,
    *,
    owner: str,
    appid: str,
    browser_agent: str,
    browser_ip: str,
    browser_place: str,
    now: datetime,
    expires_at: datetime,
) -> Scene:
    row = await conn.fetchrow(
        "INSERT INTO wxlogin.scenes (scene, owner, appid, browser_agent, browser_ip,"
        " browser_place,"
        f" created_at, updated_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $7, $8)"
        f" RETURNING {COLUMNS}",
        new_scene(), owner, appid, browser_agent, browser_ip, browser_place, now, expires_at,
    )
    scene = _scene(row)
    assert scene is not None
    return scene


async def live_pending(conn: Conn, owner: str, now: datetime, fresh_for: float,
                       appid: str) -> Scene | None:
    """The owner's newest pending scene for `appid` (the mini program or the official account
    whose code it shows) with at least `fresh_for` seconds left, if any."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM wxlogin.scenes WHERE owner = $1 AND status = 'pending'"
        " AND expires_at > $2 AND appid = $3 ORDER BY created_at DESC LIMIT 1",
        owner, now + timedelta(seconds=fresh_for), appid,
    )
    return _scene(row)


async def get(conn: Conn, scene: str) -> Scene | None:
    row = await conn.fetchrow(f"SELECT {COLUMNS} FROM wxlogin.scenes WHERE scene = $1", scene)
    return _scene(row)


async def get_owned(conn: Conn, scene: str, owner: str | None) -> Scene:
    """The scene if this browser owns it; a foreign scene is indistinguishable from none."""
    found = await get(conn, scene) if owner else None
    if found is None or not secrets.compare_digest(found.owner, owner or ""):
        raise SceneNotFound()
    return found


def refuse(found: Scene | None, now: datetime) -> Exception:
    """The error for a scene that cannot take a phone-side step (a failed transition)."""
    if found is None:
        return SceneNotFound()
    state = found.state(now)
    if state == "expired":
        return SceneExpired()
    if state == "confirmed":
        return SceneAlreadyConfirmed()
    if state == "denied":
        return SceneDenied()
    if state == "pending":
        return SceneNotScanned()  # only `deny` fails on a pending scene
    return SceneAlreadyClaimed()


# The phone-side transitions: target status, and whether it may start from `pending` (claiming
# the scene in the same step). Each may start from `scanned` by the same claimant, which makes a
# re-scan harmless. Declining needs a claimant: only whoever scanned may decline. A refusal is
# the confirm that the owner's rules turned away: denied, with a reason.
TARGETS = {
    "scan": ("scanned", True), "confirm": ("confirmed", True), "deny": ("denied", False),
    "refuse": ("denied", True),
}


async def transition(
    conn: Conn,
    scene: str,
    step: str,
    *,
    claimant: str,
    now: datetime,
    user_id: int | None = None,
    reason: str | None = None,
    entry: int | None = None,
) -> Scene:
    target, from_pending = TARGETS[step]
    # The NOTIFY rides in RETURNING, evaluated for the moved row only; it is sent at commit.
    row = await conn.fetchrow(
        f"UPDATE wxlogin.scenes SET status = $2, claimant = $3, user_id = COALESCE($4, user_id),"
        f" updated_at = $5, deny_reason = $7, entry = COALESCE($8, entry)"
        f" WHERE scene = $1 AND expires_at > $5"
        f" AND ((status = 'pending' AND $6) OR (status = 'scanned' AND claimant = $3))"
        f" RETURNING {COLUMNS}, pg_notify('wxlogin_scenes', scene)::text AS notified",
        scene, target, claimant, user_id, now, from_pending, reason, entry,
    )
    if row is None:
        raise refuse(await get(conn, scene), now)
    fields = dict(row)
    del fields["notified"]
    return Scene(**fields)


async def open_login_gate(
    conn: Conn, scene: str, owner: str, nonce: bytes, now: datetime
) -> Scene | None:
    """The single-use gate that turns a confirmed scene into a logged-in browser."""
    return _scene(
        await conn.fetchrow(
            f"UPDATE wxlogin.scenes SET login_nonce = $3, updated_at = $4"
            f" WHERE scene = $1 AND owner = $2 AND status = 'confirmed' AND login_nonce IS NULL"
            f" RETURNING {COLUMNS}",
            scene, owner, nonce, now,
        )
    )


async def moved(conn: Conn, watched: list[tuple[str, str]], now: datetime) -> list[tuple[str, str]]:
    """Of the (scene, status seen) pairs, those whose scene now has another state (or is gone).

    Compared in SQL so that thousands of watched scenes cost one small answer rather than a row
    object per scene: at 10,000 waiting polls those objects brought on full GC passes. The CASE
    is `Scene.state` in SQL: keep the two the same.
    """
    rows = await conn.fetch(
        "SELECT w.scene, w.since FROM unnest($1::text[], $2::text[]) AS w(scene, since)"
        " LEFT JOIN wxlogin.scenes s ON s.scene = w.scene"
        " WHERE s.scene IS NULL OR w.since IS DISTINCT FROM CASE"
        " WHEN s.status IN ('pending', 'scanned') AND s.expires_at <= $3 THEN 'expired'"
        " ELSE s.status END",
        [scene for scene, _ in watched], [since for _, since in watched], now,
    )
    return [(row[0], row[1]) for row in rows]
