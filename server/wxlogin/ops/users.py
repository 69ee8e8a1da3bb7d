"""`wxlogin users list|show|approve|disable|enable|groups`: the owner's view of who has logged
in, and the owner's say on it (the changes go through login/owner.py, which audits them)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import asyncpg

from ..login import owner
from ..storage import queries
from ..storage.db import Conn

NoSuchUser = owner.NoSuchUser
CLI = owner.Actor("cli")


LIST = (
    "SELECT u.id, u.nickname, u.avatar_url, u.unionid IS NOT NULL AS has_unionid, u.status,"
    " u.created_at, u.last_login_at,"
    " (SELECT count(*) FROM wxlogin.sessions s WHERE s.user_id = u.id) AS sessions,"
    " (SELECT coalesce(array_agg(g.name ORDER BY g.name), '{}') FROM wxlogin.user_groups g"
    " WHERE g.user_id = u.id) AS groups"
    " FROM wxlogin.users u ORDER BY u.status = 'pending' DESC, u.id DESC LIMIT $1"
)


async def list_users(conn: Conn, limit: int = 100) -> list[str]:
    rows = await conn.fetch(LIST, limit)
    lines = [f"{'id':>6}  {'nickname':<24} {'unionid':<7} {'sessions':>8}  {'state':<8} created"
             "           groups"]
    for row in rows:
        lines.append(
            f"{row['id']:>6}  {row['nickname'] or '—':<24.24} "
            f"{'yes' if row['has_unionid'] else 'no':<7} {row['sessions']:>8}  "
            f"{row['status']:<8} {row['created_at']:%Y-%m-%d %H:%M}"
            f"  {','.join(row['groups']) or '—'}"
        )
    return lines


async def list_json(conn: Conn, limit: int | None = None) -> list[str]:
    """The contract's shape: `{"id", "nickname", "status", "groups", …}` per user; every user
    (it is for scripts), pending first."""
    rows = await conn.fetch(LIST, limit)
    return [json.dumps([{
        "id": str(row["id"]), "nickname": row["nickname"], "avatar_url": row["avatar_url"],
        "status": row["status"], "groups": list(row["groups"]),
        "sessions": row["sessions"], "created_at": row["created_at"].isoformat(),
        "last_login_at": row["last_login_at"].isoformat() if row["last_login_at"] else None,
    } for row in rows], ensure_ascii=False, indent=2)]


async def show_user(conn: Conn, user_id: int) -> list[str]:
    row = await conn.fetchrow("SELECT * FROM wxlogin.users WHERE id = $1", user_id)
    if row is None:
        raise NoSuchUser()
    identities = await conn.fetch(
        "SELECT appid, openid, created_at FROM wxlogin.identities WHERE user_id = $1 ORDER BY"
        " created_at",
        user_id,
    )
    sessions = await conn.fetchval(
        "SELECT count(*) FROM wxlogin.sessions WHERE user_id = $1", user_id
    )
    lines = [
        f"id:         {row['id']}",
        f"nickname:   {row['nickname'] or '—'}",
        f"avatar:     {row['avatar_url'] or '—'}",
        f"unionid:    {row['unionid'] or '—'}",
        f"state:      {row['status']}",
        f"phone:      {row['phone_masked'] or '—'}",
        f"last login: {row['last_login_at'] or '—'}",
        f"created:    {row['created_at']:%Y-%m-%d %H:%M:%S %Z}",
        f"sessions:   {sessions}",
        f"groups:     {', '.join(await groups_of(conn, user_id)) or '—'}",
    ]
    lines += [f"identity:   {i['appid']} / {i['openid']}" for i in identities]
    return lines


async def groups_of(conn: Conn, user_id: int) -> list[str]:
    rows = await conn.fetch(
        "SELECT name FROM wxlogin.user_groups WHERE user_id = $1 ORDER BY name", user_id
    )
    return [row["name"] for row in rows]


class BadGroup(Exception):
    pass


async def run(
    url: str, action: str, user_id: int | None, *, as_json: bool = False,
    change: str | None = None, group: str | None = None, now: datetime | None = None,
) -> list[str]:
    now = now or datetime.now(UTC)
    conn = await asyncpg.connect(url)
    try:
        if action == "list":
            return await (list_json(conn) if as_json else list_users(conn))
        assert user_id is not None
        if action == "show":
            return await show_user(conn, user_id)
        if action == "groups":
            if change is None:
                return await groups_of(conn, user_id)
            if group is None or not queries.GROUP.fullmatch(group):
                raise BadGroup(group)
            await owner.set_group(conn, CLI, user_id, group, change == "add", now)
            return await groups_of(conn, user_id)
        ended = await owner.set_status(conn, CLI, user_id, action, now)
        if action == "disable":
            return [f"user {user_id} disabled; {ended} session(s) ended, OIDC tokens revoked"]
        return [f"user {user_id} {'approved' if action == 'approve' else 'enabled'}"]
    finally:
        await conn.close()
