"""`wxlogin keys list|rotate`: the OpenID Connect signing keys, as the owner sees them."""

from __future__ import annotations

from datetime import datetime

import asyncpg

from ..storage import signing
from ..storage.migrations import migrate


def describe(key: signing.SigningKey) -> str:
    when = {
        "next": f"published {key.created_at:%Y-%m-%d %H:%M}, signs after the next rotation",
        "current": f"signing since {key.signing_since or key.created_at:%Y-%m-%d %H:%M}",
        "retired": f"retired {key.retired_at or key.created_at:%Y-%m-%d %H:%M}, published until"
                   f" {(key.retired_at or key.created_at) + signing.RETIRED_KEPT:%Y-%m-%d %H:%M}",
    }[key.state]
    return f"{key.alg}  {key.state:<8} {key.kid}  {when}"


async def run(url: str, action: str, now: datetime, *, force: bool = False) -> list[str]:
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        await signing.ensure(conn, now)
        if action == "rotate":
            try:
                promoted = await signing.rotate(conn, now, force=force)
            except signing.TooSoon as soon:
                raise SystemExit(
                    f"wxlogin: the next {soon.alg} key was published too recently for every"
                    f" relying party to have it; rotate after {soon.ready_at:%Y-%m-%d %H:%M} UTC"
                    " (or with --force, if tokens may fail to verify for a while)"
                ) from None
            lines = [f"now signing with {key.alg} {key.kid}" for key in promoted]
            return [*lines, "", *map(describe, await signing.every_key(conn))]
        return [describe(key) for key in await signing.every_key(conn)]
    finally:
        await conn.close()
