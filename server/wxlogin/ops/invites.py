"""`wxlogin invite` (a link that lets people in, with groups), its list and revocation, and
`wxlogin audit`."""

from __future__ import annotations

import json
from datetime import datetime

import asyncpg

from ..login import owner
from ..storage import audit, invitations
from ..storage.migrations import migrate

CLI = owner.Actor("cli")


def link(public_url: str, prefix: str, token: str) -> str:
    return f"{public_url}{prefix}/invite/{token}"


async def run_invite(url: str, public_url: str, *, prefix: str = "", groups: list[str],
                     uses: int, days: float, note: str, revoke: int | None, listing: bool,
                     now: datetime) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if revoke is not None:
            await owner.revoke_invitation(conn, CLI, revoke, now)
            return [f"invitation {revoke} revoked"]
        if listing:
            return [f"{'id':>5}  {'state':<8} {'used':>9}  {'expires':<16}  groups / note"] + [
                f"{i.id:>5}  {i.state(now):<8} {f'{i.used}/{i.uses}':>9}  "
                f"{i.expires_at:%Y-%m-%d %H:%M}  {','.join(i.groups) or '—'}"
                + (f" / {i.note}" if i.note else "")
                for i in await invitations.every(conn)
            ]
        made, token = await owner.invite(conn, CLI, groups=groups, uses=uses, days=days,
                                         note=note, now=now)
        return [
            f"invitation {made.id}: {made.uses} use(s), until {made.expires_at:%Y-%m-%d %H:%M %Z}"
            + (f", groups {', '.join(made.groups)}" if made.groups else ""),
            "open this link in the browser that is to log in (it is shown only now):",
            link(public_url, prefix, token),
        ]
    finally:
        await conn.close()


async def run_audit(url: str, *, limit: int, as_json: bool) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        entries = await audit.recent(conn, limit)
    finally:
        await conn.close()
    if as_json:
        return [json.dumps([e.described() for e in entries], ensure_ascii=False, indent=2)]
    return [
        f"{e.at:%Y-%m-%d %H:%M:%S}  {e.actor:<16.40} {e.action:<20} {e.subject:<20} "
        f"{json.dumps(e.detail, ensure_ascii=False) if e.detail else ''}"
        f"{'  from ' + e.address if e.address else ''}"
        for e in entries
    ]
