"""Invitations: links that let a browser's next login in (and into groups), a set number of times.

The link carries a random token; only its hash is kept. Opening the link binds the invitation to
the browser's key (the owner of its scenes); the login that follows redeems it: one conditional
UPDATE (`used < uses`, not expired, not revoked), so of many browsers racing for the last use
exactly one wins.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from .db import Conn
from .grants import digest

COLUMNS = "id, groups, uses, used, note, created_by, created_at, expires_at, revoked_at"


@dataclass(frozen=True)
class Invitation:
    id: int
    groups: tuple[str, ...]
    uses: int
    used: int
    note: str
    created_by: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None

    def state(self, now: datetime) -> str:
        """live, used (up), expired or revoked."""
        if self.revoked_at is not None:
            return "revoked"
        if self.used >= self.uses:
            return "used"
        return "expired" if self.expires_at <= now else "live"

    def described(self, now: datetime) -> dict[str, object]:
        return {
            "id": self.id, "groups": list(self.groups), "uses": self.uses, "used": self.used,
            "note": self.note, "created_by": self.created_by,
            "created_at": self.created_at.isoformat(), "expires_at": self.expires_at.isoformat(),
            "state": self.state(now),
        }


def _invitation(row: object) -> Invitation:
    fields = dict(row)  # type: ignore[call-overload]
    fields["groups"] = tuple(fields["groups"])
    return Invitation(**fields)


async def create(
    conn: Conn, *, groups: list[str], uses: int, days: float, note: str, created_by: str,
    now: datetime,
) -> tuple[Invitation, str]:
    """A new invitation and its token (shown once: only the hash is kept)."""
    token = secrets.token_urlsafe(24)
    row = await conn.fetchrow(
        f"INSERT INTO wxlogin.invitations (token_hash, groups, uses, note, created_by,"
        f" created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {COLUMNS}",
        digest(token), sorted(set(groups)), uses, note, created_by, now,
        now + timedelta(days=days),
    )
    return _invitation(row), token


async def live(conn: Conn, token: str, now: datetime) -> Invitation | None:
    """The invitation of this token while it can still let someone in."""
    row = await conn.fetchrow(
        f"SELECT {COLUMNS} FROM wxlogin.invitations WHERE token_hash = $1"
        f" AND revoked_at IS NULL AND used < uses AND expires_at > $2",
        digest(token), now,
    )
    return None if row is None else _invitation(row)


async def bind(conn: Conn, invitation: Invitation, owner: str, now: datetime) -> None:
    """Bind a live invitation (`live`) to the browser `owner`: its next login redeems it, if it
    is live still then. A browser holds one invitation: the latest."""
    await conn.execute(
        "INSERT INTO wxlogin.invitation_browsers (owner, invitation_id, bound_at)"
        " VALUES ($1, $2, $3) ON CONFLICT (owner) DO UPDATE"
        " SET invitation_id = EXCLUDED.invitation_id, bound_at = EXCLUDED.bound_at",
        owner, invitation.id, now,
    )


async def redeem(conn: Conn, scene: str, now: datetime) -> Invitation | None:
    """Spend one use of the invitation bound to the browser that owns `scene`, if it is still
    live; the binding is used up either way. Call inside the login's transaction, so that a
    login that fails gives the use back."""
    row = await conn.fetchrow(
        f"WITH b AS (DELETE FROM wxlogin.invitation_browsers b USING wxlogin.scenes s"
        f" WHERE s.scene = $1 AND b.owner = s.owner RETURNING b.invitation_id)"
        f" UPDATE wxlogin.invitations SET used = used + 1 FROM b"
        f" WHERE id = b.invitation_id AND revoked_at IS NULL AND used < uses AND expires_at > $2"
        f" RETURNING {COLUMNS}",
        scene, now,
    )
    return None if row is None else _invitation(row)


async def revoke(conn: Conn, invitation_id: int, now: datetime) -> Invitation | None:
    row = await conn.fetchrow(
        f"UPDATE wxlogin.invitations SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL"
        f" RETURNING {COLUMNS}",
        invitation_id, now,
    )
    return None if row is None else _invitation(row)


async def every(conn: Conn, limit: int = 100) -> list[Invitation]:
    rows = await conn.fetch(
        f"SELECT {COLUMNS} FROM wxlogin.invitations ORDER BY id DESC LIMIT $1", limit
    )
    return [_invitation(row) for row in rows]
