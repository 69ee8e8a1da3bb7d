"""The owner's actions, the same from a terminal (`wxlogin users|invite|clients`) and from the
owner's page (`/admin`): each is one transaction that makes the change and writes its audit row.

`actor` says who acted ("cli", or "user:ID" on the page); `address` whence, when known.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ..errors import ApiError
from ..storage import audit, invitations, oidc_clients, queries
from ..storage.db import Conn


class NoSuchUser(ApiError):
    status = 404
    code = "not_found"
    default_message = "There is no such user."


class NoSuchInvitation(ApiError):
    status = 404
    code = "not_found"
    default_message = "There is no such invitation, or it was revoked already."


class NoSuchClient(ApiError):
    status = 404
    code = "not_found"
    default_message = "There is no such confidential client in the database."


@dataclass(frozen=True)
class Actor:
    who: str  # "cli" or "user:ID"
    address: str = ""


STATUS_ACTIONS = {"approve": "active", "enable": "active", "disable": "disabled"}


async def set_status(conn: Conn, actor: Actor, user_id: int, action: str,
                     now: datetime) -> int:
    """approve (a pending account) or enable (a disabled one): active; disable. Disabling ends
    every session and OIDC token of theirs at once; returns how many sessions ended. The row
    lock orders this with a login of the same person (login/access.py holds it too)."""
    status = STATUS_ACTIONS[action]
    async with conn.transaction():
        before = await conn.fetchval(
            "SELECT status FROM wxlogin.users WHERE id = $1 FOR UPDATE", user_id
        )
        if before is None:
            raise NoSuchUser()
        await conn.execute("UPDATE wxlogin.users SET status = $2 WHERE id = $1", user_id, status)
        ended = 0
        if status == "disabled":
            ended = len(await conn.fetch(
                "DELETE FROM wxlogin.sessions WHERE user_id = $1 RETURNING 1", user_id
            ))
            await conn.execute(
                "UPDATE wxlogin.oidc_tokens SET revoked_at = $2 WHERE user_id = $1"
                " AND revoked_at IS NULL", user_id, now,
            )
        await audit.record(conn, at=now, actor=actor.who, action=action,
                           subject=f"user:{user_id}", detail={"was": before},
                           address=actor.address)
    return ended


async def set_group(conn: Conn, actor: Actor, user_id: int, group: str, member: bool,
                    now: datetime) -> None:
    async with conn.transaction():
        if not await queries.set_group(conn, user_id, group, member, now):
            raise NoSuchUser()
        await audit.record(conn, at=now, actor=actor.who,
                           action="group_add" if member else "group_remove",
                           subject=f"user:{user_id}", detail={"group": group},
                           address=actor.address)


async def invite(conn: Conn, actor: Actor, *, groups: list[str], uses: int, days: float,
                 note: str, now: datetime) -> tuple[invitations.Invitation, str]:
    """A new invitation and its token (for the link, shown once)."""
    async with conn.transaction():
        made, token = await invitations.create(
            conn, groups=groups, uses=uses, days=days, note=note, created_by=actor.who, now=now
        )
        await audit.record(conn, at=now, actor=actor.who, action="invite",
                           subject=f"invitation:{made.id}",
                           detail={"groups": list(made.groups), "uses": uses, "days": days,
                                   "note": note}, address=actor.address)
    return made, token


async def revoke_invitation(conn: Conn, actor: Actor, invitation_id: int,
                            now: datetime) -> None:
    async with conn.transaction():
        if await invitations.revoke(conn, invitation_id, now) is None:
            raise NoSuchInvitation()
        await audit.record(conn, at=now, actor=actor.who, action="invite_revoke",
                           subject=f"invitation:{invitation_id}", address=actor.address)


async def add_client(conn: Conn, actor: Actor, *, name: str, redirect_uris: list[str],
                     post_logout_redirect_uris: list[str], public: bool, email: str | None,
                     allowed_groups: list[str], now: datetime) -> tuple[str, str | None]:
    """A new OIDC client: its id and secret (None for a public one), shown once."""
    async with conn.transaction():
        client_id, secret = await oidc_clients.add(
            conn, name=name, redirect_uris=redirect_uris,
            post_logout_redirect_uris=post_logout_redirect_uris, public=public, email=email,
            allowed_groups=allowed_groups, now=now,
        )
        await audit.record(conn, at=now, actor=actor.who, action="client_add",
                           subject=f"client:{client_id}",
                           detail={"redirect_uris": redirect_uris, "public": public},
                           address=actor.address)
    return client_id, secret


async def remove_client(conn: Conn, actor: Actor, client_id: str, now: datetime) -> bool:
    async with conn.transaction():
        gone = await oidc_clients.remove(conn, client_id, now)
        if gone:
            await audit.record(conn, at=now, actor=actor.who, action="client_remove",
                               subject=f"client:{client_id}", address=actor.address)
    return gone


async def rotate_client_secret(conn: Conn, actor: Actor, client_id: str, now: datetime) -> str:
    async with conn.transaction():
        secret = await oidc_clients.rotate_secret(conn, client_id)
        if secret is None:
            raise NoSuchClient()
        await audit.record(conn, at=now, actor=actor.who, action="client_rotate_secret",
                           subject=f"client:{client_id}", address=actor.address)
    return secret
