"""`wxlogin clients add|list|remove|rotate-secret`: OpenID Connect clients kept in the database.

A secret is printed once, when it is made (add, rotate-secret), and kept only as its hash.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import asyncpg

from ..clients import absolute_url
from ..login import owner
from ..storage import oidc_clients
from ..storage.migrations import migrate

CLI = owner.Actor("cli")


class ClientProblem(Exception):
    pass


def described(client: Any) -> dict[str, Any]:
    return {
        "client_id": client.client_id, "name": client.name, "public": client.public,
        "redirect_uris": list(client.redirect_uris),
        "post_logout_redirect_uris": list(client.post_logout_redirect_uris),
        "email": client.email, "allowed_groups": list(client.allowed_groups),
    }


async def run(url: str, action: str, args: Any, now: datetime) -> str:
    """What to print (JSON); ClientProblem for something the owner must fix."""
    conn = await asyncpg.connect(url)
    try:
        await migrate(conn)
        if action == "add":
            uris = args.redirect_uri or []
            logout = args.post_logout_redirect_uri or []
            if not uris or not all(map(absolute_url, [*uris, *logout])):
                raise ClientProblem("give at least one --redirect-uri; every URI must be an "
                                    "absolute http(s) URL without a fragment")
            client_id, secret = await owner.add_client(
                conn, CLI, name=args.name, redirect_uris=uris, post_logout_redirect_uris=logout,
                public=args.public, email="substitute" if args.email_substitute else None,
                allowed_groups=args.allowed_group or [], now=now,
            )
            made: dict[str, Any] = {"client_id": client_id}
            if secret is not None:
                made["client_secret"] = secret
            return json.dumps(made)
        if action == "list":
            return json.dumps([described(c) for c in await oidc_clients.every(conn)], indent=2)
        if action == "remove":
            if not await owner.remove_client(conn, CLI, args.name, now):
                raise ClientProblem(f"there is no client {args.name} in the database")
            return json.dumps({"removed": args.name})
        try:
            secret = await owner.rotate_client_secret(conn, CLI, args.name, now)
        except owner.NoSuchClient:
            raise ClientProblem(
                f"there is no confidential client {args.name} in the database"
            ) from None
        return json.dumps({"client_id": args.name, "client_secret": secret})
    finally:
        await conn.close()
